"""Training throughput per device with peak memory and MFU, or the training loop's host syncs.

    python tools/benchmark_training.py --cfg configs/K400/timesformer_b.yaml [--device auto|cpu|cuda]
        [--batch-size N] [--iters 10] [--warmup 3] [--nproc N] [--peak-tflops T] [KEY VALUE ...]
    python tools/benchmark_training.py --host-syncs [--cfg configs/demo/synthetic_regionvit.yaml]
        [--epochs 3] [--clips-per-class 16] [--data DIR] [KEY VALUE ...]

Throughput (default): training and inference clips/s of the configured model on random clips on the
device, through the run's own pieces (AMP, fused AdamW on CUDA, MODEL.COMPILE, DDP under torchrun),
one row per process; --nproc N starts N processes under torchrun (one per GPU, or gloo on CPU). MFU
needs the device's dense bf16 peak: looked up from the GPU's name, or --peak-tflops. What is measured:
videovit/bench/training.py. --host-syncs trains through the engine on a small synthetic dataset
written to --data (a temporary folder by default) and counts every call that waits for the device:
videovit/bench/host_syncs.py. Default config: configs/demo/synthetic_regionvit.yaml.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from videovit.cli import run_tool
from videovit.config import add_config_arguments, config_sources

DEMO_CONFIG = Path(__file__).resolve().parents[1] / "configs" / "demo" / "synthetic_regionvit.yaml"


def host_syncs(args: argparse.Namespace) -> None:
    """Write the data, train with the sync counter on, print the figures."""
    from videovit.bench.host_syncs import measure_host_syncs

    files, overrides = config_sources(args)
    data = Path(args.data) if args.data else Path(tempfile.mkdtemp(prefix="benchmark_training_"))
    report = measure_host_syncs(files or [DEMO_CONFIG], overrides, data, args.epochs, args.clips_per_class)
    print("\n".join(report.lines()))


def throughput(args: argparse.Namespace) -> None:
    """Measure this process's row; the first process prints every process's."""
    from videovit.bench.training import describe, gather_rows, measure_throughput, throughput_table
    from videovit.config import load_config
    from videovit.engine.preflight import check_run_config
    from videovit.runtime.distributed import init_distributed, shutdown_distributed

    files, overrides = config_sources(args)
    device = [] if args.device is None else ["DEVICE", args.device]
    cfg = check_run_config(load_config(files or [DEMO_CONFIG], [*overrides, *device]))
    ctx = init_distributed(cfg.DEVICE, cfg.DIST_BACKEND)
    try:
        batch = args.batch_size or cfg.TRAIN.BATCH_SIZE
        rows = gather_rows(measure_throughput(cfg, ctx, batch, args.warmup, args.iters, args.peak_tflops))
        if ctx.is_main:
            print(describe(cfg, ctx, args.iters, args.warmup))
            print(throughput_table(rows))
    finally:
        shutdown_distributed()


def run(args: argparse.Namespace, argv: list[str]) -> int | None:
    """The chosen measurement; with --nproc N (outside torchrun) the same command under torchrun."""
    if args.host_syncs:
        return host_syncs(args)
    from videovit.bench.training import run_under_torchrun, under_torchrun

    if args.nproc > 1 and not under_torchrun():
        return run_under_torchrun(__file__, argv, args.nproc)
    return throughput(args)


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and measure; 2 on a user's mistake."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n".join(__doc__.splitlines()[2:]))
    add_config_arguments(parser)
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default=None,
                        help="where to measure (default: the config's DEVICE)")
    parser.add_argument("--batch-size", type=int, default=0, help="clips per step (default: TRAIN.BATCH_SIZE)")
    parser.add_argument("--iters", type=int, default=10, help="timed steps of each kind")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps before timing (compilation included)")
    parser.add_argument("--nproc", type=int, default=1, help="processes under torchrun (one per GPU)")
    parser.add_argument("--peak-tflops", type=float, default=None,
                        help="the device's dense bf16 peak in TFLOPS for MFU (default: looked up for known GPUs)")
    parser.add_argument("--host-syncs", action="store_true",
                        help="count the training loop's host syncs instead (trains through the engine)")
    parser.add_argument("--epochs", type=int, default=3, help="--host-syncs: training epochs (the first is not timed)")
    parser.add_argument("--clips-per-class", type=int, default=16, help="--host-syncs: training clips per class")
    parser.add_argument("--data", default="", help="--host-syncs: folder for the synthetic data and the run")
    argv = sys.argv[1:] if argv is None else argv
    args = parser.parse_args(argv)
    return run_tool(lambda: run(args, argv))


if __name__ == "__main__":
    sys.exit(main())
