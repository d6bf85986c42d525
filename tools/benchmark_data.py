"""Time data loading on a list: bare torchcodec, read_frames, the loader, VideoDataset, pytorchvideo.

    python tools/benchmark_data.py --list data_lists/k400/val.csv --prefix /data/k400 \
        [--classes data_lists/k400/classes.txt] [--max-videos 16] [--backends pyav torchcodec auto]
        [--pytorchvideo pyav decord] [--repeats 1] [--threads 1]

--backends defaults to every backend that runs here; pytorchvideo rows need the bench extra
(pip install -e '.[bench]'). CPU ms/clip is the process's CPU time per clip: compare rows by it on
a shared machine; the last lines give each loader's CPU per clip over bare torchcodec's. Videos
prepared by tools/prepare_videos.py carry their stored index, which spares the loader its demux
pass. See docs/data.md and docs/performance.md.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from videovit.cli import run_tool
from videovit.data.decoding import BACKENDS, available_backends


def _run(args: argparse.Namespace) -> None:
    import torch

    from videovit.bench.data import benchmark_list, format_table, overhead_lines

    torch.set_num_threads(args.threads)
    classes = args.classes or args.list.parent / "classes.txt"
    rows = benchmark_list(args.list, classes, args.prefix, args.separator, args.num_frames, tuple(args.backends),
                          tuple(args.pytorchvideo), args.max_videos, args.repeats)
    print(f"{len(rows[0].seconds) // args.repeats} videos of {args.list} x {args.repeats} repeat(s), uniform "
          f"{args.num_frames}-frame clips, {args.threads} torch thread(s)")
    print(format_table(rows))
    for line in overhead_lines(rows):
        print(line)


def main(argv: list[str] | None = None) -> int:
    """Parse the command line, run the benchmark and print its table; 2 on a usage error."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n".join(__doc__.splitlines()[2:]))
    parser.add_argument("--list", required=True, type=Path, help="list file (<path><sep><label> lines)")
    parser.add_argument("--classes", type=Path, default=None, help="classes.txt (default: next to the list)")
    parser.add_argument("--prefix", default="", help="folder the list's paths are relative to")
    parser.add_argument("--separator", default=" ", help="path/label separator of the list")
    parser.add_argument("--num-frames", type=int, default=8, help="frames per clip (uniform sampling)")
    parser.add_argument("--max-videos", type=int, default=None, help="only the first N videos")
    parser.add_argument("--backends", nargs="+", choices=sorted(BACKENDS), default=available_backends())
    parser.add_argument("--pytorchvideo", nargs="*", default=[], choices=["pyav", "decord"],
                        help="pytorchvideo decoders to compare (needs the bench extra; default: none)")
    parser.add_argument("--repeats", type=int, default=1, help="passes over the videos")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1: one core)")
    args = parser.parse_args(argv)
    return run_tool(lambda: _run(args))


if __name__ == "__main__":
    sys.exit(main())
