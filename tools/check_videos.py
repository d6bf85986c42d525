"""Scan the videos of a list file for undecodable and too-short ones, in parallel.

    python tools/check_videos.py --list data_lists/k400/train.csv --prefix /data/k400 \
        [--out problems.txt] [--min-frames 8] [--backend auto] [--workers N] [--timeout 60]
"""
from __future__ import annotations

import argparse
from pathlib import Path

from videovit.data.check import ScanSettings, check_list, write_problems


def main() -> None:
    """Parse the command line, scan the list, write the problem file and print the summary."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--list", required=True, type=Path, help="list file (<path><sep><label> lines)")
    parser.add_argument("--prefix", default="", help="folder the list's paths are relative to (DATA.PATH_PREFIX)")
    parser.add_argument("--separator", default=" ", help="path/label separator (DATA.PATH_LABEL_SEPARATOR)")
    parser.add_argument("--out", type=Path, default=None,
                        help="file for 'path<TAB>reason' lines (default: <list>.problems.txt)")
    parser.add_argument("--min-frames", type=int, default=8, help="fewer decodable frames = too short")
    parser.add_argument("--backend", default="auto", help="decoding backend: auto, pyav or decord")
    parser.add_argument("--workers", type=int, default=None, help="processes (default: all CPUs)")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per video before giving up")
    args = parser.parse_args()
    out = args.out or args.list.with_suffix(".problems.txt")
    report = check_list(args.list, args.prefix, args.separator,
                        ScanSettings(args.min_frames, args.backend, args.timeout), args.workers)
    write_problems(out, report.problems)
    print(report.summary(out))


if __name__ == "__main__":
    main()
