"""Time data loading on a list: bare read_frames, VideoDataset and pytorchvideo, per backend.

    python tools/benchmark_data.py --list data_lists/k400/val.csv --prefix /data/k400 \
        [--classes data_lists/k400/classes.txt] [--max-videos 16] [--backends pyav decord auto]
        [--pytorchvideo pyav decord] [--threads 1]
"""
from __future__ import annotations

import argparse
from pathlib import Path

import torch

from videovit.data.benchmark import benchmark_list, format_table


def main() -> None:
    """Parse the command line, run the benchmark and print its table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--list", required=True, type=Path, help="list file (<path><sep><label> lines)")
    parser.add_argument("--classes", type=Path, default=None, help="classes.txt (default: next to the list)")
    parser.add_argument("--prefix", default="", help="folder the list's paths are relative to")
    parser.add_argument("--separator", default=" ", help="path/label separator of the list")
    parser.add_argument("--num-frames", type=int, default=8, help="frames per clip (uniform sampling)")
    parser.add_argument("--max-videos", type=int, default=None, help="only the first N videos")
    parser.add_argument("--backends", nargs="+", default=["pyav", "decord", "auto"])
    parser.add_argument("--pytorchvideo", nargs="*", default=["pyav", "decord"],
                        help="pytorchvideo decoders to compare (none: skip pytorchvideo)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1: one core, as DATA.md)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    classes = args.classes or args.list.parent / "classes.txt"
    rows = benchmark_list(args.list, classes, args.prefix, args.separator, args.num_frames, tuple(args.backends),
                          tuple(args.pytorchvideo), args.max_videos)
    print(f"{rows[0].clips} videos of {args.list}, uniform {args.num_frames}-frame clips, "
          f"{args.threads} torch thread(s)")
    print(format_table(rows))


if __name__ == "__main__":
    main()
