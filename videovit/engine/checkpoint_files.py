"""The checkpoint files of a training run: atomic, verified writes, rotation, finding the newest good one.

(Checkpoints from elsewhere, to start from, are read by ``videovit.checkpoint``; see docs/checkpoints.md.)
Layout in ``OUTPUT_DIR/checkpoints/``: ``checkpoint_latest.pyth`` is rewritten after every epoch
(and every TRAIN.CHECKPOINT_EVERY_STEPS optimiser steps within an epoch when that is set, and when a
signal or TRAIN.MAX_STEPS stops the run); every TRAIN.CHECKPOINT_PERIOD epochs (and after the last)
it is also kept as ``checkpoint_epoch_EEEEE.pyth`` (a hard link when the file system allows it, else
a copy), and only the newest TRAIN.CHECKPOINT_KEEP of those stay. Files are written to a temporary
name, fsynced and renamed (``videovit.files.atomic_write``), so a crash never leaves a half-written
checkpoint under a real name; the temporary file of a write that a crash interrupted is removed by the
next run (``remove_unfinished_writes``). Every file carries the SHA-256 of its contents
(``videovit.checkpoint.checksum``), checked whenever it is read: a resumed run takes the newest one
that verifies. What a checkpoint holds is listed in docs/engine.md ("Checkpoints").
"""
from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO, cast

import torch

from videovit.checkpoint.checksum import save_sealed, verify_checksum
from videovit.checkpoint.formats import load_torch_file
from videovit.errors import CheckpointError, StorageError
from videovit.files import atomic_write, fsync_directory, temporary_path, writing

CHECKPOINT_SUBDIR = "checkpoints"
LATEST_NAME = "checkpoint_latest.pyth"
_PERIODIC = re.compile(r"checkpoint_epoch_(\d+)\.pyth$")
_UNFINISHED_PATTERN = ".*.tmp"  # temporary names of videovit.files.temporary_path
REQUIRED_KEYS = ("model", "optimizer", "epoch", "global_step")


def periodic_name(epoch: int) -> str:
    """File name of the checkpoint kept after ``epoch`` completed epochs."""
    return f"checkpoint_epoch_{epoch:05d}.pyth"


# ---------------------------------------------------------------------------- files

def atomic_save(payload: dict[str, Any], path: Path) -> None:
    """``torch.save`` ``payload`` to ``path`` through ``atomic_write``, sealed with its SHA-256."""
    # torch.save only writes to the stream it is given: the hashing writer is all it needs
    atomic_write(path, lambda stream: save_sealed(stream, lambda writer: torch.save(payload, cast(BinaryIO, writer))))


def _link_or_copy(source: Path, target: Path) -> None:
    """Make ``target`` hold ``source``'s bytes: a hard link, else an atomic copy."""
    temp = temporary_path(target)
    try:
        os.link(source, temp)
    except OSError:  # no hard links on this file system (a storage failure fails the copy too)
        atomic_write(target, lambda stream: _copy_into(source, stream))
        return
    with writing(target):
        try:
            os.replace(temp, target)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
        fsync_directory(target.parent)


def _copy_into(source: Path, stream: BinaryIO) -> None:
    with source.open("rb") as original:
        shutil.copyfileobj(original, stream)


def read_training_checkpoint(path: Path, note: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Load one of this project's checkpoints safely (checksum, ``weights_only=True``), checking its keys;
    a file without checksum loads with a note to ``note``."""
    payload = load_torch_file(path, note=note)
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
        the epoch says so (a mid-epoch save only replaces the latest). A storage failure raises
        ``StorageError`` naming the file, the previous checkpoints untouched."""
        atomic_save(payload, self.latest_path)
        if not mid_epoch and (epoch % self.period == 0 or final):
            _link_or_copy(self.latest_path, self.folder / periodic_name(epoch))
            for old in self.periodic_paths()[self.keep:]:
                old.unlink(missing_ok=True)
        return self.latest_path

    def storage_failure(self, error: StorageError) -> StorageError:
        """``error`` saying which checkpoint is intact (the newest whose checksum holds) and that a rerun of
        the same command resumes from it once the storage is fixed."""
        for path in self.candidates():
            try:
                verify_checksum(path)
            except CheckpointError:
                continue
            intact = ("its previous version, the last good checkpoint, is intact" if str(path) == error.path
                      else f"the last good checkpoint {path} is intact")
            return error.with_consequence(intact, f"{error.remedy}, then rerun the same command to resume from it")
        return error.with_consequence("no checkpoint of this run was saved yet",
                                      f"{error.remedy}, then rerun the same command")

    def remove_unfinished_writes(self, warn: Callable[[str], None]) -> None:
        """Delete the temporary files of saves that a crash interrupted (call before this run saves)."""
        for temp in sorted(self.folder.glob(_UNFINISHED_PATTERN)):
            temp.unlink(missing_ok=True)
            warn(f"removed {temp}: a checkpoint write that never finished (the previous run stopped while "
                 f"saving); the complete checkpoints are untouched")

    def newest_loadable(self, warn: Callable[[str], None]) -> tuple[Path, dict[str, Any]] | None:
        """The newest checkpoint that verifies and loads, with its contents; the others are reported
        (which and why) and skipped; a file without checksum loads with a warning saying so."""
        for path in self.candidates():
            try:
                return path, read_training_checkpoint(path, note=warn)
            except CheckpointError as err:
                warn(f"skipping {path.name}, trying an older checkpoint: {err}")
        return None


__all__ = ["CHECKPOINT_SUBDIR", "CheckpointManager", "LATEST_NAME", "atomic_save", "periodic_name",
           "read_training_checkpoint"]
