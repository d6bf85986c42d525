"""The training loop's host syncs: optimiser steps per second and device waits per step (docs/engine.md).

Trains a configured model through ``videovit.engine.run`` (validation, test and TensorBoard off) on a
small synthetic motion dataset, while every call that copies a tensor to the host or waits for the
device (``Tensor.item``, ``.tolist``, ``.cpu``, ``.numpy``, ``bool()``/``float()``/``int()`` of a
tensor, ``torch.cuda.synchronize``) is counted by call site and grouped by the part of the run making
it. Only the training loop's calls wait for the device on a GPU: the optimiser's step counters are
CPU tensors there and the data pipeline works on host tensors. Steps/s comes from the epochs after
the first (the first warms up); the counts cover the whole run, divided by its optimiser steps.
"""
from __future__ import annotations

import collections
import json
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import torch

from videovit.config import load_config
from videovit.prep.annotations import build_k400_lists
from videovit.prep.synthetic import generate_synthetic_kinetics

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
        self._originals.clear()


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


def call_kind(site: str) -> str:
    """Which part of a run a call site belongs to, and whether it waits for a GPU there."""
    for marker, kind in CALL_KINDS:
        if marker in site:
            return kind
    return "other"


def write_dataset(root: Path, clips_per_class: int, num_frames: int) -> tuple[Path, Path]:
    """A small synthetic motion dataset (32 px, at least 16 frames) and its lists; returns (lists, videos).

    An existing dataset under ``root`` is reused."""
    videos, lists = root / "videos", root / "lists"
    if not (root / "annotations" / "train.csv").is_file():
        generate_synthetic_kinetics(root, clips_per_class, 1, 1, size=(32, 32), num_frames=max(16, num_frames),
                                    workers=1)
    build_k400_lists(root / "annotations", videos, lists)
    return lists, videos


def train_records(output_dir: Path) -> Iterator[dict]:
    """The stats.jsonl records of a run."""
    for line in (output_dir / "stats.jsonl").read_text().splitlines():
        yield json.loads(line)


@dataclass
class HostSyncReport:
    """What one measured run did: its shape, speed and host-sync calls by call site."""

    description: str
    steps: int
    steps_per_s: float
    calls: collections.Counter[str]

    def lines(self) -> list[str]:
        """The report as printed by tools/benchmark_training.py --host-syncs."""
        total = sum(self.calls.values())
        out = [self.description,
               f"training steps/s (epochs 2+, mean of epoch clips/s / clips per step): {self.steps_per_s:.2f}",
               f"host-read calls: {total} in {self.steps} steps = {total / self.steps:.2f} per optimiser step"]
        by_kind: collections.Counter[str] = collections.Counter()
        for site, count in self.calls.items():
            by_kind[call_kind(site)] += count
        out += [f"  {count / self.steps:8.2f}/step  {kind}" for kind, count in by_kind.most_common()]
        out.append("by call site:")
        out += [f"  {count / self.steps:8.2f}/step  {count:6d}  {site}" for site, count in self.calls.most_common()]
        return out


def measure_host_syncs(config_files: Sequence[str | Path], overrides: Sequence[str], data: Path, epochs: int,
                       clips_per_class: int) -> HostSyncReport:
    """Write the data under ``data`` (kept for a rerun), train ``epochs`` epochs with the counter on."""
    from videovit.engine import run

    probe = load_config(config_files, overrides)
    lists, videos = write_dataset(data, clips_per_class, probe.DATA.NUM_FRAMES)
    output_dir = data / "run"
    cfg = load_config(config_files, [
        *overrides, "DATA.PATH_TO_DATA_DIR", str(lists), "DATA.PATH_PREFIX", str(videos), "OUTPUT_DIR",
        str(output_dir), "TRAIN.EPOCHS", str(epochs), "TRAIN.EVAL_PERIOD", "0", "TEST.ENABLE", "False",
        "TRAIN.CHECKPOINT_FILE_PATH", "", "TRAIN.AUTO_RESUME", "False", "TENSORBOARD", "False",
        "SOLVER.WARMUP_EPOCHS", "0.0"])
    if output_dir.exists():
        (output_dir / "stats.jsonl").unlink(missing_ok=True)
    start = time.perf_counter()
    with SyncCounter() as counter:
        run(cfg)
    wall = time.perf_counter() - start
    records = list(train_records(output_dir))
    epoch_records = [r for r in records if r["kind"] == "train_epoch"]
    steps = max(r["global_step"] for r in records)
    clips_per_step = cfg.TRAIN.BATCH_SIZE * cfg.TRAIN.ACCUM_STEPS
    timed = epoch_records[1:] or epoch_records
    steps_per_s = sum(r["clips_per_s"] for r in timed) / len(timed) / clips_per_step
    description = (f"{cfg.MODEL.NAME} {cfg.DATA.NUM_FRAMES}x{cfg.DATA.TRAIN_CROP_SIZE}px, batch "
                   f"{cfg.TRAIN.BATCH_SIZE} x accumulation {cfg.TRAIN.ACCUM_STEPS}, {torch.get_num_threads()} "
                   f"threads, {steps} optimiser steps in {len(epoch_records)} epochs, {wall:.0f} s wall")
    return HostSyncReport(description, steps, steps_per_s, counter.calls)


__all__ = ["CALL_KINDS", "HostSyncReport", "SyncCounter", "call_kind", "measure_host_syncs", "train_records",
           "write_dataset"]
