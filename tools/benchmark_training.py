"""Measure the training loop: optimiser steps per second and host syncs per step (see docs/engine.md).

    python tools/benchmark_training.py [--cfg configs/demo/synthetic_regionvit.yaml] [--epochs 3]
        [--clips-per-class 16] [--data DIR] [KEY VALUE ...]

Trains the configured model through ``videovit.engine.run`` (validation, test and TensorBoard off)
on a small synthetic motion dataset written to ``--data`` (a temporary folder by default), while
every call that copies a tensor to the host or waits for the device (``Tensor.item``, ``.tolist``,
``.cpu``, ``.numpy``, ``bool()``/``float()``/``int()`` of a tensor, ``torch.cuda.synchronize``) is
counted by call site and grouped by the part of the run making them (only the training loop's
calls wait for the device on a GPU: the optimiser's step counters are CPU tensors there, the data
pipeline works on host tensors). Steps/s comes from the epochs after the first (the first warms up); the
counts cover the whole run, divided by its optimiser steps. On CPU these calls cost little; on a
GPU each one stalls the pipeline, which is why the loop is meant to make at most one per step.
"""
from __future__ import annotations

import argparse
import collections
import json
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import Any

import torch

from videovit.cli import run_tool
from videovit.config import add_config_arguments, config_from_args
from videovit.prep.annotations import build_k400_lists
from videovit.prep.synthetic import generate_synthetic_kinetics

DEMO_CONFIG = Path(__file__).resolve().parents[1] / "configs" / "demo" / "synthetic_regionvit.yaml"
SYNC_METHODS = ("item", "tolist", "cpu", "numpy", "__bool__", "__float__", "__int__")
CALL_KINDS = (
    ("videovit/engine/", "training loop (engine): device syncs on a GPU"),
    ("torch/optim/", "optimiser step counters (CPU tensors on a GPU too: no device sync)"),
    ("videovit/data/", "data pipeline (host tensors, in loader workers when NUM_WORKERS > 0)"),
    ("torch/utils/data/", "data loader (host tensors)"),
    ("torch/nn/init.py", "model initialisation (once per run)"),
)
OWN_FILES = ("torch/_tensor.py", "torch/cuda/__init__.py", __file__)


class SyncCounter:
    """Counts host-sync calls by the first caller outside torch's tensor wrappers and this file."""

    def __init__(self) -> None:
        self.calls: collections.Counter[str] = collections.Counter()
        self._originals: list[tuple[Any, str, Any]] = []

    def _wrap(self, owner: Any, name: str) -> None:
        original = getattr(owner, name)

        def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls[f"{name} at {_call_site()}"] += 1
            return original(*args, **kwargs)

        self._originals.append((owner, name, original))
        setattr(owner, name, counted)

    def __enter__(self) -> SyncCounter:
        for name in SYNC_METHODS:
            self._wrap(torch.Tensor, name)
        self._wrap(torch.cuda, "synchronize")
        return self

    def __exit__(self, *exc: object) -> None:
        for owner, name, original in reversed(self._originals):
            setattr(owner, name, original)


def _call_site() -> str:
    frame: FrameType | None = sys._getframe(2)
    while frame is not None and frame.f_code.co_filename.endswith(OWN_FILES):
        frame = frame.f_back
    if frame is None:
        return "?"
    return f"{_short(frame.f_code.co_filename)}:{frame.f_lineno} ({frame.f_code.co_name})"


def _short(path: str) -> str:
    for marker in ("site-packages/", "videovit/", "tools/"):
        if marker in path:
            return path[path.index(marker):]
    return path


def write_dataset(root: Path, clips_per_class: int, cfg_frames: int) -> tuple[Path, Path]:
    """A small synthetic motion dataset (32 px, 16 frames) and its lists; returns (lists, videos)."""
    videos, lists = root / "videos", root / "lists"
    if not (root / "annotations" / "train.csv").is_file():
        generate_synthetic_kinetics(root, clips_per_class, 1, 1, size=(32, 32), num_frames=max(16, cfg_frames),
                                    workers=1)
    build_k400_lists(root / "annotations", videos, lists)
    return lists, videos


def train_records(output_dir: Path) -> Iterator[dict]:
    """The stats.jsonl records of a run."""
    for line in (output_dir / "stats.jsonl").read_text().splitlines():
        yield json.loads(line)


def measure(args: argparse.Namespace) -> None:
    """Write the data, train with the sync counter on, print the figures."""
    from videovit.engine import run

    data = Path(args.data) if args.data else Path(tempfile.mkdtemp(prefix="benchmark_training_"))
    probe = config_from_args(args)
    lists, videos = write_dataset(data, args.clips_per_class, probe.DATA.NUM_FRAMES)
    output_dir = data / "run"
    args.opts = list(args.opts) + [
        "DATA.PATH_TO_DATA_DIR", str(lists), "DATA.PATH_PREFIX", str(videos), "OUTPUT_DIR", str(output_dir),
        "TRAIN.EPOCHS", str(args.epochs), "TRAIN.EVAL_PERIOD", "0", "TEST.ENABLE", "False",
        "TRAIN.CHECKPOINT_FILE_PATH", "", "TRAIN.AUTO_RESUME", "False", "TENSORBOARD", "False",
        "SOLVER.WARMUP_EPOCHS", "0.0"]
    cfg = config_from_args(args)
    if output_dir.exists():
        (output_dir / "stats.jsonl").unlink(missing_ok=True)
    start = time.perf_counter()
    with SyncCounter() as counter:
        run(cfg)
    wall = time.perf_counter() - start
    records = list(train_records(output_dir))
    epochs = [r for r in records if r["kind"] == "train_epoch"]
    steps = max(r["global_step"] for r in records)
    clips_per_step = cfg.TRAIN.BATCH_SIZE * cfg.TRAIN.ACCUM_STEPS
    timed = epochs[1:] or epochs
    steps_per_s = sum(r["clips_per_s"] for r in timed) / len(timed) / clips_per_step
    print(f"{cfg.MODEL.NAME} {cfg.DATA.NUM_FRAMES}x{cfg.DATA.TRAIN_CROP_SIZE}px, batch {cfg.TRAIN.BATCH_SIZE} x "
          f"accumulation {cfg.TRAIN.ACCUM_STEPS}, {torch.get_num_threads()} threads, {steps} optimiser steps in "
          f"{len(epochs)} epochs, {wall:.0f} s wall")
    print(f"training steps/s (epochs 2+, mean of epoch clips/s / clips per step): {steps_per_s:.2f}")
    total = sum(counter.calls.values())
    print(f"host-read calls: {total} in {steps} steps = {total / steps:.2f} per optimiser step")
    by_kind: collections.Counter[str] = collections.Counter()
    for site, count in counter.calls.items():
        by_kind[_kind(site)] += count
    for kind, count in by_kind.most_common():
        print(f"  {count / steps:8.2f}/step  {kind}")
    print("by call site:")
    for site, count in counter.calls.most_common():
        print(f"  {count / steps:8.2f}/step  {count:6d}  {site}")


def _kind(site: str) -> str:
    """Which part of a run a call site belongs to, and whether it waits for a GPU there."""
    for marker, kind in CALL_KINDS:
        if marker in site:
            return kind
    return "other"


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and measure; 2 on a user's mistake."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_config_arguments(parser)
    parser.add_argument("--epochs", type=int, default=3, help="training epochs (the first is not timed)")
    parser.add_argument("--clips-per-class", type=int, default=16, help="training clips per class")
    parser.add_argument("--data", default="", help="folder for the synthetic data and the run (default: temporary)")
    args = parser.parse_args(argv)
    if not args.cfg:
        args.cfg = [str(DEMO_CONFIG)]
    return run_tool(lambda: measure(args))


if __name__ == "__main__":
    sys.exit(main())
