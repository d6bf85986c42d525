"""Frame-exact video decoding behind one interface: ``probe_video`` and ``read_frames``.

Backends: "pyav" (sequential decoding, seeking only to verified restart points; exact on every
format tested), "decord" (refuses the formats where it was measured inexact), "auto" (the fastest
exact backend: PyAV for every format measured, see ``api``). torchcodec is not offered: its wheel
needs a system FFmpeg (libavutil.so.56-61), which this environment does not have.
"""
from __future__ import annotations

from videovit.data.decoding.api import (
    BACKENDS,
    get_default_backend,
    probe_video,
    read_frames,
    set_default_backend,
)
from videovit.data.decoding.errors import DecodeError
from videovit.data.decoding.index import VideoInfo

__all__ = [
    "BACKENDS",
    "DecodeError",
    "VideoInfo",
    "get_default_backend",
    "probe_video",
    "read_frames",
    "set_default_backend",
]
