"""Measure the training loop: optimiser steps per second and host syncs per step (see docs/engine.md).

    python tools/benchmark_training.py [--cfg configs/demo/synthetic_regionvit.yaml] [--epochs 3]
        [--clips-per-class 16] [--data DIR] [KEY VALUE ...]

Trains the configured model through ``videovit.engine.run`` on a small synthetic motion dataset
written to ``--data`` (a temporary folder by default) and counts every call that copies a tensor to
the host or waits for the device, by call site; videovit/bench/host_syncs.py says what is counted.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from videovit.cli import run_tool
from videovit.config import add_config_arguments, config_sources

DEMO_CONFIG = Path(__file__).resolve().parents[1] / "configs" / "demo" / "synthetic_regionvit.yaml"


def measure(args: argparse.Namespace) -> None:
    """Write the data, train with the sync counter on, print the figures."""
    from videovit.bench.host_syncs import measure_host_syncs

    files, overrides = config_sources(args)
    data = Path(args.data) if args.data else Path(tempfile.mkdtemp(prefix="benchmark_training_"))
    report = measure_host_syncs(files or [DEMO_CONFIG], overrides, data, args.epochs, args.clips_per_class)
    print("\n".join(report.lines()))


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and measure; 2 on a user's mistake."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_config_arguments(parser)
    parser.add_argument("--epochs", type=int, default=3, help="training epochs (the first is not timed)")
    parser.add_argument("--clips-per-class", type=int, default=16, help="training clips per class")
    parser.add_argument("--data", default="", help="folder for the synthetic data and the run (default: temporary)")
    args = parser.parse_args(argv)
    return run_tool(lambda: measure(args))


if __name__ == "__main__":
    sys.exit(main())
