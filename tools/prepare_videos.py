"""Re-encode every video under --src into --out for cheap, exact reading (H.264, IDR every N frames).

    python tools/prepare_videos.py --src /data/k400/videos --out /data/k400_prepared \
        [--short-side 320] [--keyframe-interval 16] [--fps 30] [--workers N] \
        [--lists data_lists/k400/train.csv data_lists/k400/val.csv [--lists-out DIR]]

Each output keeps the source's relative path (suffix .mp4) and timing (--fps forces a constant
rate); it is written under a temporary name, verified and renamed, so a rerun skips finished
videos and a killed run leaves no half file. --lists writes copies of list files whose paths point
at the prepared videos (into --lists-out, default <out>/lists); set DATA.PATH_PREFIX to --out and
DATA.PATH_TO_DATA_DIR to that folder. Ctrl-C or SIGTERM stops within a second, keeps the finished
videos and leaves no partial file (the workers die with the tool, even on SIGKILL). Exit status: 0
all prepared, 1 some failed (listed in <out>/prepare_failures.txt), 2 usage error, 130/143 after
a signal. See docs/data.md.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from videovit.cli import run_tool
from videovit.errors import InputPathError, UsageError
from videovit.prep.prepare import DEFAULT_KEYFRAME_INTERVAL, DEFAULT_SHORT_SIDE

FAILURES_FILE = "prepare_failures.txt"


class ProgressBar:
    """``[####......] done/total pct rate ETA`` on stderr, redrawn at most once a second."""

    def __init__(self, width: int = 30) -> None:
        self.width, self.start, self.last_draw = width, time.monotonic(), 0.0
        self.interactive = sys.stderr.isatty()
        self.open_line = False  # a redrawn line waits for its newline

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if done < total and now - self.last_draw < (1.0 if self.interactive else 30.0):
            return
        self.last_draw = now
        elapsed = now - self.start
        rate = done / elapsed if elapsed > 0 else 0.0
        eta = (total - done) / rate if rate > 0 else 0.0
        filled = self.width * done // max(total, 1)
        line = (f"[{'#' * filled}{'.' * (self.width - filled)}] {done}/{total} {100 * done / max(total, 1):3.0f}% "
                f"{rate:.2f} videos/s ETA {int(eta) // 60}m{int(eta) % 60:02d}s")
        end = "\n" if done == total or not self.interactive else ""
        print(f"\r{line}" if self.interactive else line, end=end, file=sys.stderr, flush=True)
        self.open_line = not end

    def close(self) -> None:
        """End a redrawn line, so that what follows (an interruption's line) starts on its own."""
        if self.open_line:
            print(file=sys.stderr, flush=True)


def _check_usage(args: argparse.Namespace):
    """The encoding settings, after checking the folders and list files."""
    from videovit.data.lists import read_list
    from videovit.prep.prepare import PrepareSettings, check_roots

    settings = PrepareSettings(args.short_side, args.keyframe_interval, args.fps, args.crf, args.preset)
    check_roots(args.src, args.out)
    if len({path.name for path in args.lists}) != len(args.lists):
        raise UsageError("--lists names two files with the same name; rewrite them in separate runs with "
                         "different --lists-out folders")
    missing = [str(path) for path in args.lists if not path.is_file()]
    if missing:
        raise InputPathError(f"list file {missing[0]} does not exist")
    for list_file in args.lists:
        read_list(list_file, args.separator)  # a malformed list fails now, not after hours of encoding
    return settings


def _run(args: argparse.Namespace) -> int:
    """Prepare the tree, write the failure report and the rewritten lists, print the summary; 1 if some failed."""
    settings = _check_usage(args)
    from videovit.prep.prepare import prepare_tree, rewrite_list

    progress = ProgressBar()
    try:
        report = prepare_tree(args.src, args.out, settings, args.workers, progress)
    finally:
        progress.close()
    failures_file = args.out / FAILURES_FILE
    failures_file.write_text("".join(f"{source}\t{reason}\n" for source, reason in report.failures),
                             encoding="utf-8")
    print(report.summary(failures_file))
    lists_out = args.lists_out or args.out / "lists"
    for list_file in args.lists:
        written, kept, listed = rewrite_list(list_file, lists_out, args.out, args.separator)
        print(f"wrote {written}: {kept} of {listed} videos ({listed - kept} without a prepared copy left out)")
    if args.lists:
        print(f"train on them with DATA.PATH_TO_DATA_DIR {lists_out} DATA.PATH_PREFIX {args.out}")
    return 1 if report.failures else 0


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and prepare; 0 all prepared, 1 some failed, 2 usage error."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n".join(__doc__.splitlines()[2:]))
    parser.add_argument("--src", required=True, type=Path, help="folder of source videos (only read)")
    parser.add_argument("--out", required=True, type=Path, help="folder for the prepared videos")
    parser.add_argument("--short-side", type=int, default=DEFAULT_SHORT_SIDE, help="output short side (even)")
    parser.add_argument("--keyframe-interval", type=int, default=DEFAULT_KEYFRAME_INTERVAL,
                        help="frames between IDR keyframes (docs/data.md has the size / read-cost table)")
    parser.add_argument("--fps", type=float, default=None, help="force this constant rate (default: the source's)")
    parser.add_argument("--crf", type=int, default=23, help="x264 quality (lower = better, larger)")
    parser.add_argument("--preset", default="medium", help="x264 speed preset")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="processes (default: all CPUs)")
    parser.add_argument("--lists", type=Path, nargs="*", default=[], help="list files to rewrite for the outputs")
    parser.add_argument("--lists-out", type=Path, default=None, help="folder for the rewritten lists")
    parser.add_argument("--separator", default=" ", help="path/label separator of the lists")
    args = parser.parse_args(argv)
    if args.workers < 1:
        parser.error("--workers must be >= 1")
    return run_tool(lambda: _run(args), interrupted="the prepared videos are kept; rerun the same command to finish")


if __name__ == "__main__":
    sys.exit(main())
