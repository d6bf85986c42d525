"""The error every decoding backend raises and the file checks shared by all of them."""
from __future__ import annotations

from pathlib import Path


class DecodeError(RuntimeError):
    """A video (or the frames asked of it) cannot be decoded; the message names the path and why."""

    def __init__(self, path: str | Path, reason: str) -> None:
        super().__init__(str(path), reason)  # both in args, so the error pickles across processes
        self.path = str(path)
        self.reason = reason

    def __str__(self) -> str:
        return f"cannot decode {self.path}: {self.reason}"


class BackendChoiceError(ValueError):
    """An unknown decoding backend was asked for, or one that cannot run in this environment."""


def check_video_file(path: str | Path) -> Path:
    """Fail early and clearly on a missing, non-regular or empty file; return the path."""
    path = Path(path)
    if not path.exists():
        raise DecodeError(path, "file not found (check the list file and DATA.PATH_PREFIX)")
    if not path.is_file():
        raise DecodeError(path, "not a regular file")
    if path.stat().st_size == 0:
        raise DecodeError(path, "file is empty (0 bytes); re-download or drop it from the list")
    return path
