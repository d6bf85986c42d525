"""Public entry points and the backend registry.

Readers are opened per call and closed before returning, so nothing is shared between the
DataLoader worker processes that call these functions.
"""
from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from videovit.data.decoding.decord_backend import decord_unavailable, probe_with_decord, read_with_decord
from videovit.data.decoding.errors import check_video_file
from videovit.data.decoding.index import StreamIndex, VideoInfo, index_video
from videovit.data.decoding.pyav_backend import probe_with_pyav, read_with_pyav
from videovit.data.decoding.torchcodec_backend import (
    DecodeDeviceWarning,
    decode_device_unavailable,
    probe_with_torchcodec,
    read_with_torchcodec,
    torchcodec_refusal,
    torchcodec_unavailable,
)
from videovit.errors import BackendChoiceError, DecodeError


@dataclass(frozen=True)
class Backend:
    """A decoding backend: ``read(path, indices, index)`` and ``probe(path)``."""

    read: Callable[[Path, Sequence[int], StreamIndex | None], np.ndarray]
    probe: Callable[[Path], VideoInfo]


def read_with_auto(path: Path, indices: Sequence[int], index: StreamIndex | None = None,
                   device: str = "cpu") -> np.ndarray:
    """torchcodec (on ``device``) where it loads and is exact for the file, else PyAV (also when torchcodec fails)."""
    index = index_video(path) if index is None else index
    if torchcodec_unavailable() is None and torchcodec_refusal(index) is None:
        try:
            return read_with_torchcodec(path, indices, index, device)
        except DecodeError:
            pass  # PyAV's sequential decoding gives the definitive answer
    return read_with_pyav(path, indices, index)


BACKENDS: dict[str, Backend] = {
    "pyav": Backend(read=read_with_pyav, probe=probe_with_pyav),
    "decord": Backend(read=read_with_decord, probe=probe_with_decord),
    "torchcodec": Backend(read=read_with_torchcodec, probe=probe_with_torchcodec),
    # Measured with one core per clip on 340x256 H.264 (docs/data.md): torchcodec is the cheapest
    # exact reader where it is allowed; PyAV with verified seeks was never slower than decord.
    "auto": Backend(read=read_with_auto, probe=probe_with_pyav),
}

DEFAULT_BACKEND = "auto"
DECODE_DEVICES = ("cpu", "cuda")
GPU_DECODING_BACKENDS = {"torchcodec": read_with_torchcodec, "auto": read_with_auto}
# Why an optional backend cannot run here (None: it can).
_UNAVAILABLE: dict[str, Callable[[], str | None]] = {
    "decord": decord_unavailable, "torchcodec": lambda: torchcodec_unavailable(),
}


def backend_unavailable(name: str) -> str | None:
    """Why the backend ``name`` cannot run in this environment, or None when it can."""
    check = _UNAVAILABLE.get(name)
    return check() if check is not None else None


def available_backends() -> list[str]:
    """The backends that can run here, in registry order."""
    return [name for name in BACKENDS if backend_unavailable(name) is None]


def check_backend(name: str) -> str:
    """``name`` when that backend can run here; BackendChoiceError saying why not otherwise."""
    if name not in BACKENDS:
        raise BackendChoiceError(f"unknown decoding backend {name!r}; choose one of {sorted(BACKENDS)}")
    reason = backend_unavailable(name)
    if reason is not None:
        raise BackendChoiceError(f"decoding backend {name!r} is not available: {reason} (or use 'auto', "
                                 f"which needs neither)")
    return name


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


def probe_video(path: str | Path, backend: str = DEFAULT_BACKEND) -> VideoInfo:
    """Frame count (verified against the packets), fps, size, codec and container of ``path``.

    With ``backend="decord"`` or ``"torchcodec"`` it also fails (DecodeError) when that backend
    cannot read the file exactly.
    """
    return BACKENDS[check_backend(backend)].probe(check_video_file(path))


def resolve_decode_device(device: str, backend: str) -> str:
    """``device`` ("cpu" or "cuda", DATA.DECODE_DEVICE) where frames of ``backend`` can be decoded there;
    "cpu" after one ``DecodeDeviceWarning`` saying why not otherwise."""
    if device not in DECODE_DEVICES:
        raise ValueError(f"decode device {device!r} must be one of {DECODE_DEVICES}")
    if device == "cpu":
        return device
    reason = (f"the {backend!r} backend decodes on the CPU only; use 'auto' or 'torchcodec'"
              if backend not in GPU_DECODING_BACKENDS else decode_device_unavailable())
    if reason is None:
        return device
    warnings.warn(f"DATA.DECODE_DEVICE cuda: {reason}; decoding on the CPU", DecodeDeviceWarning, stacklevel=2)
    return "cpu"


def read_frames(path: str | Path, indices: Iterable[int], backend: str = DEFAULT_BACKEND,
                device: str = "cpu") -> np.ndarray:
    """Exactly the frames at the 0-based ``indices`` (any order, repeats allowed) of ``path``.

    Returns an (N, H, W, 3) uint8 RGB array. Indices at or past ``probe_video(path).num_frames``
    raise DecodeError (callers clamp them); so does any file that cannot be decoded. ``device``
    "cuda" decodes with torchcodec's GPU decoder where ``resolve_decode_device`` allows it (the
    caller resolves it once), with the same exactness checks.
    """
    wanted = _checked_indices(indices)
    name = check_backend(backend)
    if device == "cuda" and name in GPU_DECODING_BACKENDS:
        return GPU_DECODING_BACKENDS[name](check_video_file(path), wanted, None, device)
    return BACKENDS[name].read(check_video_file(path), wanted, None)
