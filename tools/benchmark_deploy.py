"""Measure deployment paths on CPU: ONNX export accuracy and speed, and torch.compile speed.

    python tools/benchmark_deploy.py onnx --models regionvit_s volo_d1 [--frames 8 --size 224]
    python tools/benchmark_deploy.py compile --models regionvit_ti [--frames 8 --size 224]

``onnx``: exports each model (random weights, full size), prints the largest |logit difference|
onnxruntime vs PyTorch and the seconds per clip of each (batch 1, after a warm-up run). ``compile``:
seconds per clip eager vs MODEL.COMPILE's torch.compile, and the compile time. The logic is
videovit/bench/deploy.py; figures depend on the machine and its load (docs/deployment.md).
"""
from __future__ import annotations

import argparse
import sys

from videovit.cli import run_tool


def run(args: argparse.Namespace) -> None:
    """Print the table of ``args.what`` row by row; an unknown model name is refused before any work."""
    from videovit.bench.deploy import benchmark_deployment

    for line in benchmark_deployment(args.what, args.models, args.frames, args.size, args.repeats, args.threads):
        print(line, flush=True)


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and print a markdown table; 2 for an unknown model name."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=("onnx", "compile"))
    parser.add_argument("--models", nargs="+", default=["regionvit_s", "volo_d1"])
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    args = parser.parse_args(argv)
    return run_tool(lambda: run(args))


if __name__ == "__main__":
    sys.exit(main())
