"""decord reader, used only where it was measured frame-exact; it refuses every other file.

decord seeks to container keyframes and counts frames from there. The tests in
``tests/test_decoding.py`` found it exact for H.264 (MP4, MKV) whose keyframes are all IDR and for
VP9 in WebM, and wrong (off by one or more frames, silently) for H.264 open-GOP keyframes, HEVC,
MPEG-4 part 2 in AVI, MPEG-2 program streams and MP4 edit lists that drop frames; it cannot open
Ogg at all. Its own frame count is also checked against the packet count (a header promising a
frame that is not there makes decord repeat the previous frame without a word).

decord is an optional dependency (``pip install 'videovit[decord]'`` installs the maintained fork
decord2, imported as ``decord``; docs/data.md says why). It is imported only when this backend is
used: decord 0.6.0 loads its library with RTLD_GLOBAL, so its bundled (older) libvpx then shadows
PyAV's and PyAV can no longer encode VP8/VP9 in that process (decord2 does not).
"""
from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from videovit.data.decoding.index import StreamIndex, VideoInfo, index_video
from videovit.errors import DecodeError

if TYPE_CHECKING:
    import decord

# (FFmpeg demuxer name, decoder name) pairs where decord returned exactly the frames asked for.
DECORD_EXACT_FORMATS = {
    ("mov,mp4,m4a,3gp,3g2,mj2", "h264"),
    ("matroska,webm", "h264"),
    ("matroska,webm", "vp9"),
}


def decord_unavailable() -> str | None:
    """Why decord cannot be used here (not installed), or None; it is looked up, not imported."""
    if importlib.util.find_spec("decord") is None:
        return "decord is not installed; run: pip install 'videovit[decord]' (the maintained fork decord2)"
    return None


def decord_refusal(index: StreamIndex) -> str | None:
    """Why decord cannot be trusted to be frame-exact on this video, or None when it can."""
    refusal = index.seek_refusal("decord", DECORD_EXACT_FORMATS)
    if refusal is not None:
        return refusal
    if index.discarded_packets:
        return f"an edit list discards {index.discarded_packets} packets"
    if index.header_frames and index.header_frames != index.packet_frames:
        return f"the header declares {index.header_frames} frames but the file holds {index.packet_frames}"
    return None


def _open_reader(path: Path, index: StreamIndex) -> decord.VideoReader:
    """A single-threaded CPU reader whose frame count matches the packet count."""
    import decord  # on first use only, see the module docstring

    try:
        reader = decord.VideoReader(str(path), ctx=decord.cpu(0), num_threads=1)
    except decord.DECORDError as error:
        raise DecodeError(path, f"decord cannot open it ({error})") from error
    if len(reader) != index.info.num_frames:
        reason = f"decord counts {len(reader)} frames where the file holds {index.info.num_frames}"
        raise DecodeError(path, f"{reason}; use 'pyav' or 'auto'")
    return reader


def _checked_index(path: Path, index: StreamIndex | None) -> StreamIndex:
    """The file's index, after making sure decord is exact on it (DecodeError otherwise)."""
    index = index_video(path) if index is None else index
    refusal = decord_refusal(index)
    if refusal is not None:
        raise DecodeError(path, f"{refusal}; use the 'pyav' or 'auto' backend")
    return index


def read_with_decord(path: Path, indices: Sequence[int], index: StreamIndex | None = None) -> np.ndarray:
    """Frames at ``indices`` (any order, repeats allowed) as (N, H, W, 3) uint8 RGB."""
    import decord  # on first use only, see the module docstring

    index = _checked_index(path, index)
    last = max(indices)
    if last >= index.info.num_frames:
        raise DecodeError(path, f"frame {last} was asked but the video has {index.info.num_frames} frames")
    reader = _open_reader(path, index)
    try:
        return reader.get_batch(list(indices)).asnumpy()  # np.asarray on a decord NDArray is wrong
    except decord.DECORDError as error:
        raise DecodeError(path, f"decord failed to decode frames ({error})") from error


def probe_with_decord(path: Path) -> VideoInfo:
    """``VideoInfo`` of a video decord reads exactly (DecodeError for the others)."""
    index = _checked_index(path, None)
    _open_reader(path, index)
    return index.info
