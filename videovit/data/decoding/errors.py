"""The file checks every decoding backend shares; the errors themselves are in ``videovit.errors``."""
from __future__ import annotations

from pathlib import Path

from videovit.errors import BackendChoiceError, DecodeError

__all__ = ["BackendChoiceError", "DecodeError", "check_video_file"]


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
