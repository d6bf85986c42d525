"""Writing files safely (the bottom layer: standard library only; design in docs/architecture.md, "Files").

- ``atomic_write(path, write)``: readers see the old file or the new one, never half of one; a crash
  leaves at most a temporary file named ``.NAME.PID-XXXXXX.tmp`` (unique per process) beside it.
- ``writing(path)``: inside the block, a write the storage refuses (no space, quota, permission, a
  read-only folder, a file size limit, an I/O error), also when a library wraps that ``OSError`` in
  its own exception (torch.save does), becomes one ``StorageError`` naming ``path``. Other errors pass
  untouched: they are bugs.
- ``DigestWriter`` and ``sha256_of_file``: SHA-256 checksums computed while writing and when reading.
"""
from __future__ import annotations

import errno
import hashlib
import os
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO

from videovit.errors import StorageError

# errno -> what to do about it. Any OSError with one of these numbers is the storage's refusal.
STORAGE_REMEDIES = {
    errno.ENOSPC: "free space on that file system",
    errno.EDQUOT: "free space or raise your disk quota",
    errno.EFBIG: "raise the file size limit (ulimit -f) or write to another file system",
    errno.EACCES: "make the folder writable for you or choose another one",
    errno.EPERM: "make the folder writable for you or choose another one",
    errno.EROFS: "choose a folder on a writable file system",
    errno.EIO: "check the disk or network file system (the kernel log says more)",
}
_CHUNK = 8 * 2**20  # bytes read at a time when hashing a file


def storage_failure(error: BaseException | None) -> OSError | None:
    """The storage's refusal (an ``OSError`` with an errno of ``STORAGE_REMEDIES``) that caused ``error``,
    found along its chain of causes and contexts; None when ``error`` is something else."""
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, OSError) and error.errno in STORAGE_REMEDIES:
            return error
        error = error.__cause__ or error.__context__
    return None


def storage_error(path: str | Path, failure: OSError) -> StorageError:
    """The ``StorageError`` for ``failure`` (an errno of ``STORAGE_REMEDIES``) while writing ``path``."""
    number = failure.errno if failure.errno is not None else errno.EIO
    reason = f"{os.strerror(number).lower()} ({errno.errorcode.get(number, number)})"
    return StorageError(path, reason, STORAGE_REMEDIES.get(number, STORAGE_REMEDIES[errno.EIO]))


@contextmanager
def writing(path: str | Path) -> Iterator[None]:
    """Turn the storage's refusal of a write inside the block into a ``StorageError`` naming ``path``."""
    try:
        yield
    except StorageError:
        raise
    except Exception as err:  # only re-raised as a StorageError when the storage caused it
        failure = storage_failure(err)
        if failure is None:
            raise
        raise storage_error(path, failure) from err


def temporary_path(path: Path) -> Path:
    """A name beside ``path`` that no other process (or host) writing the same file uses."""
    return path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(3)}.tmp")


def atomic_write(path: str | Path, write: Callable[[BinaryIO], Any]) -> None:
    """``write`` into a temporary file beside ``path``, fsync, then rename it over ``path``.

    Readers see the old file or the new one, never a half-written one; on any failure the temporary
    file is removed and the old file is untouched. Storage failures raise ``StorageError`` naming ``path``.
    """
    path = Path(path)
    with writing(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        temp = temporary_path(path)
        try:
            with temp.open("wb") as stream:
                write(stream)
                stream.flush()
                os.fsync(stream.fileno())
            os.replace(temp, path)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
        fsync_directory(path.parent)


def fsync_directory(folder: Path) -> None:
    """Make a rename in ``folder`` durable (POSIX); skipped where folders cannot be opened."""
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


class DigestWriter:
    """A binary stream that passes every write on to ``stream`` and hashes it (SHA-256); it also keeps
    the last ``keep_tail`` bytes written."""

    def __init__(self, stream: BinaryIO, keep_tail: int = 0) -> None:
        self.stream = stream
        self.keep_tail = keep_tail
        self.tail = b""
        self._hash = hashlib.sha256()

    def write(self, data: Any) -> int:
        """Hash and write ``data`` (any bytes-like object); the count the stream reports."""
        view = memoryview(data).cast("B")
        self._hash.update(view)
        if self.keep_tail:
            self.tail = (self.tail + bytes(view[-self.keep_tail:]))[-self.keep_tail:]
        return self.stream.write(view)

    def flush(self) -> None:
        """Flush the stream."""
        self.stream.flush()

    def hexdigest(self) -> str:
        """SHA-256 of everything written so far."""
        return self._hash.hexdigest()


def sha256_of_file(path: str | Path, length: int | None = None, then: bytes = b"") -> str:
    """SHA-256 (hex) of the first ``length`` bytes of ``path`` (all of them by default), followed by ``then``."""
    digest = hashlib.sha256()
    left = float("inf") if length is None else length
    with Path(path).open("rb") as stream:
        while left > 0:
            chunk = stream.read(int(min(_CHUNK, left)))
            if not chunk:
                break
            digest.update(chunk)
            left -= len(chunk)
    digest.update(then)
    return digest.hexdigest()


__all__ = ["DigestWriter", "STORAGE_REMEDIES", "atomic_write", "fsync_directory", "sha256_of_file", "storage_error",
           "storage_failure", "temporary_path", "writing"]
