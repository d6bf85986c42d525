"""videovit.files: atomic writes, SHA-256 while writing and reading, and the storage's refusals (no space,
quota, permission, read-only, file size limit) turned into one StorageError naming the file.

The refusals are real: ``/dev/full`` answers every write with ENOSPC, without privileges.
"""
from __future__ import annotations

import errno
import hashlib
import io
import os
from pathlib import Path

import pytest
import torch

from videovit.errors import StorageError
from videovit.files import DigestWriter, atomic_write, sha256_of_file, storage_error, temporary_path, writing

DEV_FULL = Path("/dev/full")
needs_dev_full = pytest.mark.skipif(not DEV_FULL.exists(), reason="no /dev/full on this system")


def test_atomic_write_replaces_the_file_or_leaves_it_untouched(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "file.bin"
    atomic_write(path, lambda stream: stream.write(b"first"))
    assert path.read_bytes() == b"first"

    def fail(stream) -> None:
        stream.write(b"half of the second")
        raise ValueError("a bug in the writer")

    with pytest.raises(ValueError, match="a bug in the writer"):  # not a storage failure: passes untouched
        atomic_write(path, fail)
    assert path.read_bytes() == b"first" and sorted(p.name for p in path.parent.iterdir()) == ["file.bin"]


def test_temporary_names_differ_per_call_and_name_the_process(tmp_path: Path) -> None:
    names = {temporary_path(tmp_path / "x.pyth").name for _ in range(20)}
    assert len(names) == 20 and all(name.startswith(f".x.pyth.{os.getpid()}-") and name.endswith(".tmp")
                                    for name in names)


def test_digests_while_writing_and_of_files_agree_with_hashlib(tmp_path: Path) -> None:
    data = os.urandom(3 * 2**20 + 17)
    sink = io.BytesIO()
    writer = DigestWriter(sink, keep_tail=5)
    for start in range(0, len(data), 100_000):
        writer.write(memoryview(data)[start:start + 100_000])
    assert sink.getvalue() == data and writer.tail == data[-5:]
    assert writer.hexdigest() == hashlib.sha256(data).hexdigest()
    (tmp_path / "data").write_bytes(data)
    assert sha256_of_file(tmp_path / "data") == hashlib.sha256(data).hexdigest()
    assert sha256_of_file(tmp_path / "data", 1000, then=b"!") == hashlib.sha256(data[:1000] + b"!").hexdigest()


@needs_dev_full
def test_a_full_device_is_one_storage_error_naming_the_file(tmp_path: Path) -> None:
    named = tmp_path / "predictions.csv"
    with pytest.raises(StorageError) as caught, writing(named), DEV_FULL.open("w") as stream:
        stream.write("video,label\n")
    assert str(caught.value) == (f"cannot write {named}: no space left on device (ENOSPC); free space on that file "
                                 "system")
    assert caught.value.status == 1


@needs_dev_full
def test_torch_wrapping_the_disk_full_error_is_seen_through(tmp_path: Path) -> None:
    """torch.save turns ENOSPC into "RuntimeError: [enforce fail at inline_container.cc] . unexpected pos"."""
    named = tmp_path / "checkpoint.pyth"
    with pytest.raises(StorageError, match=rf"^cannot write {named}: no space left on device \(ENOSPC\)"), \
            writing(named), DEV_FULL.open("wb") as stream:
        torch.save({"w": torch.zeros(2**20)}, stream)


def test_other_errors_pass_through_untouched(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError), writing(tmp_path / "x"):
        (tmp_path / "missing" / "x").open("rb")  # not the storage's refusal of a write: a bug or a wrong path
    with pytest.raises(RuntimeError, match="unexpected"), writing(tmp_path / "x"):
        raise RuntimeError("unexpected")


@pytest.mark.parametrize("number,said", [
    (errno.ENOSPC, "no space left on device (ENOSPC); free space on that file system"),
    (errno.EDQUOT, "disk quota exceeded (EDQUOT); free space or raise your disk quota"),
    (errno.EFBIG, "file too large (EFBIG); raise the file size limit (ulimit -f) or write to another file system"),
    (errno.EACCES, "permission denied (EACCES); make the folder writable for you or choose another one"),
    (errno.EROFS, "read-only file system (EROFS); choose a folder on a writable file system"),
])
def test_each_refusal_says_what_happened_and_what_to_do(number: int, said: str) -> None:
    error = storage_error("/out/stats.jsonl", OSError(number, os.strerror(number)))
    assert str(error) == f"cannot write /out/stats.jsonl: {said}"
    resumable = error.with_consequence("the last good checkpoint /out/c.pyth is intact",
                                       f"{error.remedy}, then rerun the same command to resume from it")
    assert str(resumable) == (f"cannot write /out/stats.jsonl: {said.split('; ')[0]}; the last good checkpoint "
                              f"/out/c.pyth is intact; {said.split('; ')[1]}, then rerun the same command to resume "
                              "from it")
