"""Verified checkpoints: every checkpoint a run writes carries its SHA-256, checked whenever it is read.

A damaged checkpoint (the issue's case: 4 KB zeroed in its middle, which torch.load alone reads without
a word) is one error naming the file when it is given explicitly, and skipped with the reason when a
run looks for the newest one to resume; files written before checksums still load, with a note.
"""
from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

import pytest
import torch
from saved_models import save_checkpoint, zero_four_kilobytes

from videovit.checkpoint import read_checkpoint
from videovit.checkpoint.checksum import COMMENT_PREFIX, saved_digest, verify_checksum
from videovit.engine.checkpoint_files import CheckpointManager, atomic_save, periodic_name, read_training_checkpoint
from videovit.errors import CheckpointError, StorageError
from videovit.files import sha256_of_file


def payload(step: int) -> dict:
    """A small training-checkpoint payload (what the engine's resume reads) whose tensors depend on ``step``."""
    weights = {"layer.weight": torch.full((64, 256), float(step)), "layer.bias": torch.arange(64.0)}
    state = {"state": {0: {"exp_avg_sq": torch.full((64, 256), 0.5 + step)}}, "param_groups": []}
    return {"model": weights, "optimizer": state, "epoch": step, "global_step": step, "config": "MODEL: {}\n"}


def zero_middle(path: Path) -> None:
    """``zero_four_kilobytes`` in place (a new inode: the periodic copy may be a hard link of the same bytes)."""
    damaged = zero_four_kilobytes(path.read_bytes())
    path.unlink()
    path.write_bytes(damaged)


def test_a_sealed_checkpoint_is_an_ordinary_zip_and_torch_file(tmp_path: Path) -> None:
    path = tmp_path / "checkpoint.pyth"
    atomic_save(payload(3), path)
    with zipfile.ZipFile(path) as archive:
        assert archive.comment.startswith(COMMENT_PREFIX) and archive.testzip() is None
    assert torch.load(path, weights_only=True)["global_step"] == 3
    digest = saved_digest(path)
    comment_and_length = len(archive.comment) + 2
    unsealed = path.read_bytes()[:-comment_and_length] + b"\0\0"  # the archive exactly as torch wrote it
    assert digest == hashlib.sha256(unsealed).hexdigest() == sha256_of_file(path, len(unsealed) - 2, b"\0\0")
    assert verify_checksum(path) is True


def test_four_kilobytes_zeroed_in_the_middle_is_one_error_naming_the_file(tmp_path: Path) -> None:
    path, state = save_checkpoint(tmp_path)
    zero_middle(path)
    unverified = torch.load(path, weights_only=True)  # what happened before: torch loads it without a word
    assert any(not torch.equal(unverified["model"][key], value) for key, value in state.items())
    with pytest.raises(CheckpointError) as caught:
        read_checkpoint(path)
    message = str(caught.value)
    assert message.startswith(f"{path} is damaged: its contents do not match the SHA-256 checksum saved in it")
    assert "\n" not in message and "TRUST_CHECKPOINT" not in message


def test_resume_takes_the_newest_checkpoint_that_verifies_and_says_which_it_skipped(tmp_path: Path) -> None:
    manager = CheckpointManager(tmp_path, period=1, keep=3)
    for epoch in (1, 2):
        manager.save(payload(epoch), epoch)
    manager.save(payload(3), 2, mid_epoch=True)  # the latest, a step after epoch 2's periodic copy
    zero_middle(manager.latest_path)
    warnings: list[str] = []

    path, contents = manager.newest_loadable(warnings.append)

    assert path.name == periodic_name(2) and contents["global_step"] == 2
    assert warnings == [f"skipping checkpoint_latest.pyth, trying an older checkpoint: {manager.latest_path} is "
                        "damaged: its contents do not match the SHA-256 checksum saved in it, so the file changed "
                        "after it was written (a faulty disk, an interrupted copy, a full quota); use another copy "
                        "of it"]


def test_a_checkpoint_written_before_checksums_still_loads_with_a_note(tmp_path: Path, caplog) -> None:
    old = tmp_path / "checkpoints" / "checkpoint_latest.pyth"
    old.parent.mkdir()
    torch.save(payload(5), old)  # no checksum: how every checkpoint was written before
    notes: list[str] = []
    assert read_training_checkpoint(old, note=notes.append)["global_step"] == 5
    assert notes == [f"{old} carries no checksum (saved before videovit wrote checksums, or by another program): "
                     "its contents could not be verified"]
    with caplog.at_level("INFO", logger="videovit"):
        assert read_checkpoint(old)["epoch"] == 5
    assert "could not be verified" in caplog.text
    found = CheckpointManager(tmp_path, period=1, keep=3).newest_loadable(notes.append)
    assert found is not None and found[0] == old and notes[-1].endswith("its contents could not be verified")


def test_a_storage_failure_names_the_intact_checkpoint(tmp_path: Path) -> None:
    manager = CheckpointManager(tmp_path, period=1, keep=3)
    failure = StorageError(manager.latest_path, "no space left on device (ENOSPC)", "free space on that file system")
    assert str(manager.storage_failure(failure)) == (
        f"cannot write {manager.latest_path}: no space left on device (ENOSPC); no checkpoint of this run was saved "
        "yet; free space on that file system, then rerun the same command")
    manager.save(payload(1), 1)
    assert str(manager.storage_failure(failure)) == (
        f"cannot write {manager.latest_path}: no space left on device (ENOSPC); its previous version, the last good "
        "checkpoint, is intact; free space on that file system, then rerun the same command to resume from it")
    zero_middle(manager.latest_path)  # a damaged latest is not called intact: the periodic copy is
    assert f"the last good checkpoint {tmp_path / 'checkpoints' / periodic_name(1)} is intact" in str(
        manager.storage_failure(failure))

