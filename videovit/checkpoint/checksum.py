"""The SHA-256 checksum inside this project's checkpoint files, checked on every load (docs/engine.md,
"Verified checkpoints").

A checkpoint is a zip archive (torch.save's format). Its SHA-256 is computed while torch writes it and
then stored as the archive's comment, ``videovit-sha256:<64 hex digits>``, the file's last bytes. The
digest covers the archive exactly as torch wrote it (with an empty comment). Zip readers, torch.load
included, skip the comment, so a sealed checkpoint is an ordinary one to every other program.
"""
from __future__ import annotations

import os
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

from videovit.errors import CheckpointError
from videovit.files import DigestWriter, sha256_of_file

COMMENT_PREFIX = b"videovit-sha256:"
COMMENT_LENGTH = len(COMMENT_PREFIX) + 64
_END_RECORD = b"PK\x05\x06"  # a zip archive's end-of-central-directory record: 22 bytes, then the comment
_END_RECORD_SIZE = 22


def save_sealed(stream: BinaryIO, save: Callable[[DigestWriter], Any]) -> str:
    """``save(writer)`` a zip archive into ``stream`` (a new, seekable file), then append its SHA-256 as
    the archive's comment; returns the digest."""
    writer = DigestWriter(stream, keep_tail=_END_RECORD_SIZE)
    save(writer)
    end = writer.tail
    if len(end) != _END_RECORD_SIZE or not end.startswith(_END_RECORD) or end[-2:] != b"\0\0":
        raise ValueError("save_sealed: what was written does not end like a zip archive without comment")
    digest = writer.hexdigest()
    stream.seek(-2, os.SEEK_END)
    stream.write(struct.pack("<H", COMMENT_LENGTH) + COMMENT_PREFIX + digest.encode("ascii"))
    return digest


def saved_digest(path: Path) -> str | None:
    """The SHA-256 a sealed file carries, or None when it carries none (written before checksums, or by
    another program)."""
    size = path.stat().st_size
    if size < _END_RECORD_SIZE + COMMENT_LENGTH:
        return None
    with path.open("rb") as stream:
        stream.seek(size - _END_RECORD_SIZE - COMMENT_LENGTH)
        end = stream.read()
    record, comment = end[:_END_RECORD_SIZE], end[_END_RECORD_SIZE:]
    if (not record.startswith(_END_RECORD) or record[-2:] != struct.pack("<H", COMMENT_LENGTH)
            or not comment.startswith(COMMENT_PREFIX)):
        return None
    return comment[len(COMMENT_PREFIX):].decode("ascii", errors="replace")


def verify_checksum(path: Path) -> bool:
    """True when ``path`` carries a checksum and its contents match it; False when it carries none.

    A mismatch raises ``CheckpointError``: the file changed after it was written.
    """
    expected = saved_digest(path)
    if expected is None:
        return False
    covered = path.stat().st_size - COMMENT_LENGTH - 2  # the comment and its length field
    if sha256_of_file(path, covered, then=b"\0\0") != expected:
        raise CheckpointError(
            f"{path} is damaged: its contents do not match the SHA-256 checksum saved in it, so the file changed "
            "after it was written (a faulty disk, an interrupted copy, a full quota); use another copy of it")
    return True


__all__ = ["COMMENT_PREFIX", "save_sealed", "saved_digest", "verify_checksum"]
