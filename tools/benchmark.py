"""Benchmark a configured model (clips/s, peak memory) and R2L vs global attention memory.

    python tools/benchmark.py --cfg configs/K400/regionvit_ti.yaml [--batch-size N] [--amp bf16|fp16]
        [--channels-last] [--compile] [--iters 10] [--warmup 3] [--threads N]
        [--attention-sizes 56 112 224 320] [--no-attention] [KEY VALUE ...]

The batch is the config's TRAIN.BATCH_SIZE unless --batch-size is given. Each table row is measured
in a fresh process; videovit/bench/models.py says what the memory numbers mean. The attention
comparison uses the configured RegionViT's first-stage width, heads and window (RegionViT-Ti's for
other models), on one image at each input size. Side-by-side comparisons with other libraries:
tools/benchmark_compare.py.
"""
from __future__ import annotations

import argparse
import sys

from videovit.cli import run_tool
from videovit.config import add_config_arguments, config_from_args

DEFAULT_ATTENTION_SIZES = (56, 112, 224, 320)


def run_benchmarks(args: argparse.Namespace) -> None:
    """Both benchmarks for the parsed command line, their tables printed."""
    cfg = config_from_args(args)
    from videovit.bench.models import BenchmarkSettings, benchmark_report

    batch_size = args.batch_size if args.batch_size is not None else cfg.TRAIN.BATCH_SIZE
    settings = BenchmarkSettings(batch_size, args.iters, args.warmup, args.channels_last, args.compile, args.threads)
    for block in benchmark_report(cfg, settings, args.amp, () if args.no_attention else args.attention_sizes):
        print(block, flush=True)


def main(argv: list[str] | None = None) -> int:
    """Parse the command line, run both benchmarks and print their tables; 2 on configuration errors."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_config_arguments(parser)
    parser.add_argument("--batch-size", type=int, default=None,
                        help="clips per iteration (default: the config's TRAIN.BATCH_SIZE)")
    parser.add_argument("--amp", choices=("bf16", "fp16"), default=None, help="autocast dtype (default: the config's)")
    parser.add_argument("--channels-last", action="store_true", help="convert the model to channels_last")
    parser.add_argument("--compile", action="store_true", help="run the model through torch.compile")
    parser.add_argument("--iters", type=int, default=10, help="timed iterations per row")
    parser.add_argument("--warmup", type=int, default=3, help="untimed iterations before timing")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    parser.add_argument("--attention-sizes", type=int, nargs="+", default=list(DEFAULT_ATTENTION_SIZES),
                        metavar="PIXELS", help="input resolutions of the attention comparison")
    parser.add_argument("--no-attention", action="store_true", help="skip the attention comparison")
    args = parser.parse_args(argv)
    return run_tool(lambda: run_benchmarks(args))


if __name__ == "__main__":
    sys.exit(main())
