"""The checkpoint files of a training run: atomic writes, rotation, finding the newest loadable one.

(Checkpoints from elsewhere, to start from, are read by ``videovit.checkpoint``; see docs/checkpoints.md.)
Layout in ``OUTPUT_DIR/checkpoints/``: ``checkpoint_latest.pyth`` is rewritten after every epoch
(and every TRAIN.CHECKPOINT_EVERY_STEPS optimiser steps within an epoch when that is set, and when a
signal or TRAIN.MAX_STEPS stops the run); every TRAIN.CHECKPOINT_PERIOD epochs (and after the last)
it is also kept as ``checkpoint_epoch_EEEEE.pyth`` (a hard link when the file system allows it, else
a copy), and only the newest TRAIN.CHECKPOINT_KEEP of those stay. Files are written to a temporary
name, fsynced and renamed, so a crash never leaves a half-written checkpoint under a real name; the
temporary file of a write that a crash interrupted is removed by the next run
(``remove_unfinished_writes``). What a checkpoint holds is listed in docs/engine.md ("Checkpoints").
"""
from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import torch

from videovit.errors import CheckpointError

CHECKPOINT_SUBDIR = "checkpoints"
LATEST_NAME = "checkpoint_latest.pyth"
_PERIODIC = re.compile(r"checkpoint_epoch_(\d+)\.pyth$")
_UNFINISHED_PATTERN = ".*.tmp"  # temporary names used by atomic_write and _link_or_copy
REQUIRED_KEYS = ("model", "optimizer", "epoch", "global_step")


def periodic_name(epoch: int) -> str:
    """File name of the checkpoint kept after ``epoch`` completed epochs."""
    return f"checkpoint_epoch_{epoch:05d}.pyth"


# ---------------------------------------------------------------------------- files

def atomic_save(payload: dict[str, Any], path: Path) -> None:
    """``torch.save`` ``payload`` to ``path`` through ``atomic_write``."""
    atomic_write(path, lambda stream: torch.save(payload, stream))


def atomic_write(path: Path, write: Callable[[BinaryIO], Any]) -> None:
    """``write`` into a temporary file in ``path``'s folder, fsync, then rename over ``path``: readers
    see the old file or the new one, never a half-written one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with temp.open("wb") as stream:
            write(stream)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    _fsync_directory(path.parent)


def _fsync_directory(folder: Path) -> None:
    """Make a rename durable (POSIX); silently skipped where directories cannot be opened."""
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _link_or_copy(source: Path, target: Path) -> None:
    """Make ``target`` hold ``source``'s bytes: a hard link, else an atomic copy."""
    temp = target.with_name(f".{target.name}.tmp")
    temp.unlink(missing_ok=True)
    try:
        os.link(source, temp)
    except OSError:
        shutil.copyfile(source, temp)
    os.replace(temp, target)
    _fsync_directory(target.parent)


def read_training_checkpoint(path: Path) -> dict[str, Any]:
    """Load one of this project's checkpoints safely (``weights_only=True``), checking its keys."""
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # a truncated or foreign file can fail in many ways
        raise CheckpointError(f"{path} is not a loadable checkpoint ({type(err).__name__}: {err})") from err
    missing = [key for key in REQUIRED_KEYS
               if not isinstance(payload, dict) or key not in payload]
    if missing:
        raise CheckpointError(f"{path} is not a videovit training checkpoint (no {', '.join(missing)})")
    return payload


class CheckpointManager:
    """Saves, rotates and finds the training checkpoints of one OUTPUT_DIR."""

    def __init__(self, output_dir: str | Path, period: int, keep: int) -> None:
        self.folder = Path(output_dir) / CHECKPOINT_SUBDIR
        self.period = period
        self.keep = keep

    @property
    def latest_path(self) -> Path:
        """The checkpoint rewritten after every epoch."""
        return self.folder / LATEST_NAME

    def periodic_paths(self) -> list[Path]:
        """Kept periodic checkpoints, newest first."""
        found = [(int(m.group(1)), p) for p in self.folder.glob("checkpoint_epoch_*.pyth")
                 if (m := _PERIODIC.search(p.name))]
        return [path for _, path in sorted(found, reverse=True)]

    def candidates(self) -> list[Path]:
        """Every checkpoint, newest first (the latest file is always written before the periodic)."""
        latest = [self.latest_path] if self.latest_path.is_file() else []
        return latest + self.periodic_paths()

    def save(self, payload: dict[str, Any], epoch: int, final: bool = False, mid_epoch: bool = False) -> Path:
        """Write ``payload`` as the latest checkpoint; at an epoch's end also keep it as periodic when
        the epoch says so (a mid-epoch save only replaces the latest)."""
        atomic_save(payload, self.latest_path)
        if not mid_epoch and (epoch % self.period == 0 or final):
            _link_or_copy(self.latest_path, self.folder / periodic_name(epoch))
            for old in self.periodic_paths()[self.keep:]:
                old.unlink(missing_ok=True)
        return self.latest_path

    def remove_unfinished_writes(self, warn: Callable[[str], None]) -> None:
        """Delete the temporary files of saves that a crash interrupted (call before this run saves)."""
        for temp in sorted(self.folder.glob(_UNFINISHED_PATTERN)):
            temp.unlink(missing_ok=True)
            warn(f"removed {temp}: a checkpoint write that never finished (the previous run stopped while "
                 f"saving); the complete checkpoints are untouched")

    def newest_loadable(self, warn: Callable[[str], None]) -> tuple[Path, dict[str, Any]] | None:
        """The newest checkpoint that loads, with its contents; unreadable ones are reported and skipped."""
        for path in self.candidates():
            try:
                return path, read_training_checkpoint(path)
            except CheckpointError as err:
                warn(f"skipping unusable checkpoint: {err}")
        return None


__all__ = ["CHECKPOINT_SUBDIR", "CheckpointManager", "LATEST_NAME", "atomic_save", "atomic_write", "periodic_name",
           "read_training_checkpoint"]
