"""Public entry points and the backend registry.

Readers are opened per call and closed before returning, so nothing is shared between the
DataLoader worker processes that call these functions.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from videovit.data.decoding.decord_backend import probe_with_decord, read_with_decord
from videovit.data.decoding.errors import check_video_file
from videovit.data.decoding.index import StreamIndex, VideoInfo
from videovit.data.decoding.pyav_backend import probe_with_pyav, read_with_pyav


@dataclass(frozen=True)
class Backend:
    """A decoding backend: ``read(path, indices, index)`` and ``probe(path)``."""

    read: Callable[[Path, Sequence[int], StreamIndex | None], np.ndarray]
    probe: Callable[[Path], VideoInfo]


BACKENDS: dict[str, Backend] = {
    "pyav": Backend(read=read_with_pyav, probe=probe_with_pyav),
    "decord": Backend(read=read_with_decord, probe=probe_with_decord),
    # "auto" would pick, per file, the fastest backend that is exact there. Measured on 2 shared cores
    # (H.264 340x256 and 1280x720, keyframes every 60 or 250 frames, 300 and 1500 frames; VP9 340x256;
    # 8 uniform frames, 8x8 and 8x4 dense clips), PyAV with verified seeks was never slower than decord
    # on the files decord reads exactly (e.g. 300 H.264 frames, 8 uniform: 74 vs 83 ms; 1500 frames:
    # 207 vs 235 ms), and decord is exact on no file PyAV cannot read, so "auto" resolves to PyAV.
    "auto": Backend(read=read_with_pyav, probe=probe_with_pyav),
}
# Backends deliberately not offered, with the reason given to a user who asks for one.
UNAVAILABLE_BACKENDS = {
    "torchcodec": "its wheel loads FFmpeg from the system (libavutil.so.56 to .61) and none is installed "
    "(PyAV bundles its own copy under names torchcodec cannot find)",
}

_default_backend = "auto"


def _backend_name(name: str | None) -> str:
    """``name``, or the configured default when None; ValueError for an unknown name."""
    name = _default_backend if name is None else name
    if name in UNAVAILABLE_BACKENDS:
        reason = UNAVAILABLE_BACKENDS[name]
        raise ValueError(f"decoding backend {name!r} is not available: {reason}; use 'auto'")
    if name not in BACKENDS:
        raise ValueError(f"unknown decoding backend {name!r}; choose one of {sorted(BACKENDS)}")
    return name


def set_default_backend(name: str) -> None:
    """Backend used when ``backend=None`` (the datasets set it from DATA.DECODING_BACKEND)."""
    global _default_backend
    _default_backend = _backend_name(name)


def get_default_backend() -> str:
    """Name of the backend used when ``backend=None``."""
    return _default_backend


def _checked_indices(indices: Iterable[int]) -> list[int]:
    """Indices as a non-empty list of non-negative Python ints (ValueError otherwise)."""
    checked = []
    for value in indices:
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
            raise ValueError(f"frame indices must be integers, got {value!r}")
        if value < 0:
            raise ValueError(f"frame indices are 0-based and non-negative, got {value}")
        checked.append(int(value))
    if not checked:
        raise ValueError("ask for at least one frame index")
    return checked


def probe_video(path: str | Path, backend: str | None = None) -> VideoInfo:
    """Frame count (verified against the packets), fps, size, codec and container of ``path``.

    With ``backend="decord"`` it also fails (DecodeError) when decord cannot read the file exactly.
    """
    return BACKENDS[_backend_name(backend)].probe(check_video_file(path))


def read_frames(path: str | Path, indices: Iterable[int], backend: str | None = None) -> np.ndarray:
    """Exactly the frames at the 0-based ``indices`` (any order, repeats allowed) of ``path``.

    Returns an (N, H, W, 3) uint8 RGB array. Indices at or past ``probe_video(path).num_frames``
    raise DecodeError (callers clamp them); so does any file that cannot be decoded.
    """
    wanted = _checked_indices(indices)
    return BACKENDS[_backend_name(backend)].read(check_video_file(path), wanted, None)
