"""Scan the videos of a list file for undecodable, truncated and too-short ones, in parallel.

    python tools/check_videos.py --list data_lists/k400/train.csv --prefix /data/k400 \
        [--out problems.txt] [--write-clean-list train.clean.csv] [--min-frames 8] [--backend auto]
        [--workers N] [--timeout 60]

Videos the chosen backend refuses as not frame-exact but PyAV reads are listed in --out too, as
"not exact with BACKEND", and kept in the clean list. Exit status: 0 when every video is usable, 1
when some are broken (listed in --out), 2 for a usage error (bad arguments, a missing or malformed
list file), 130/143 after Ctrl-C/SIGTERM (nothing written).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from videovit.cli import run_tool
from videovit.data.decoding import BACKENDS
from videovit.errors import InputPathError


def _scan(args: argparse.Namespace) -> int:
    """Check the list, write the problem file (and the clean list), print the summary; 1 if videos are broken."""
    from videovit.prep.check import ScanSettings, check_list, write_clean_list, write_problems

    if args.prefix and not Path(args.prefix).is_dir():
        raise InputPathError(f"--prefix {args.prefix} is not a folder; pass the folder the list's paths "
                                f"are relative to (DATA.PATH_PREFIX)")
    out = args.out or args.list.with_suffix(".problems.txt")
    settings = ScanSettings(args.min_frames, args.backend, args.timeout)
    report = check_list(args.list, args.prefix, args.separator, settings, args.workers)
    write_problems(out, report.problems)
    print(report.summary(out))
    if args.write_clean_list is not None:
        kept = write_clean_list(args.write_clean_list, report, args.separator)
        print(f"wrote {kept} of {report.checked} videos (the unusable ones left out) to {args.write_clean_list}")
    return 1 if report.unusable else 0


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and scan; 0 all fine, 1 broken videos found, 2 usage error."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n".join(__doc__.splitlines()[2:]))
    parser.add_argument("--list", required=True, type=Path, help="list file (<path><sep><label> lines)")
    parser.add_argument("--prefix", default="", help="folder the list's paths are relative to (DATA.PATH_PREFIX)")
    parser.add_argument("--separator", default=" ", help="path/label separator (DATA.PATH_LABEL_SEPARATOR)")
    parser.add_argument("--out", type=Path, default=None,
                        help="file for 'path<TAB>reason' lines (default: <list>.problems.txt)")
    parser.add_argument("--write-clean-list", type=Path, default=None, metavar="PATH",
                        help="also write the list without the broken videos to PATH")
    parser.add_argument("--min-frames", type=int, default=8, help="fewer decodable frames = too short")
    parser.add_argument("--backend", default="auto", choices=sorted(BACKENDS), help="decoding backend")
    parser.add_argument("--workers", type=int, default=None, help="processes (default: all CPUs)")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per video before giving up")
    args = parser.parse_args(argv)
    if args.min_frames < 1 or (args.workers is not None and args.workers < 1):
        parser.error("--min-frames and --workers must be >= 1")
    return run_tool(lambda: _scan(args))


if __name__ == "__main__":
    sys.exit(main())
