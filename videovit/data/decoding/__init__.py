"""Frame-exact video decoding behind one interface: ``probe_video`` and ``read_frames``.

Backends: "pyav" (sequential decoding, seeking only to verified restart points; exact on every
format tested), "torchcodec" and "decord" (each refuses the files where it was measured inexact),
"auto" (torchcodec where it loads and is exact for the file, else PyAV). See docs/data.md.
"""
from __future__ import annotations

from videovit.data.decoding.api import (
    BACKENDS,
    DECODE_DEVICES,
    DEFAULT_BACKEND,
    DecodeDeviceWarning,
    available_backends,
    backend_unavailable,
    check_backend,
    probe_video,
    read_frames,
    resolve_decode_device,
)
from videovit.data.decoding.index import VideoInfo

__all__ = [
    "BACKENDS",
    "DECODE_DEVICES",
    "DEFAULT_BACKEND",
    "DecodeDeviceWarning",
    "VideoInfo",
    "available_backends",
    "backend_unavailable",
    "check_backend",
    "probe_video",
    "read_frames",
    "resolve_decode_device",
]
