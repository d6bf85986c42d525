"""torchcodec reader (PyTorch's FFmpeg decoder), used only where it was measured frame-exact.

torchcodec loads the system's FFmpeg shared libraries (major versions 4 to 9) at run time; without
them it imports but cannot decode, and this backend reports what to install. It is opened in
"exact" seek mode (one scan of the file names every frame) with one FFmpeg thread per reader.

The tests in ``tests/test_decoding.py`` found it exact for H.264 in MP4 and MKV (open-GOP and
edit-list files included) and VP9 in WebM, and wrong (off by one or more frames, silently) for
MPEG-4 part 2 in AVI and MPEG-2 program streams. It is trusted only on the exact formats and only
where every keyframe is a verified restart point (a keyframe that is not, as in one real MP4 of
docs/data.md, makes every seek-based reader return garbage) and no packet is damaged; its own frame
count must equal the packet count.

On ``device="cuda"`` the same checks pass first and the frames at the same indices are decoded by
torchcodec's GPU decoder (NVDEC), then copied back to host memory for the transforms. A file the
GPU decoder cannot take is decoded on the CPU after one warning per process
(``DecodeDeviceWarning``); ``decode_device_unavailable`` says where the GPU decoder cannot run at all.
"""
from __future__ import annotations

import functools
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from videovit.data.decoding.index import StreamIndex, VideoInfo, index_video
from videovit.errors import DecodeError

if TYPE_CHECKING:
    from torchcodec.decoders import VideoDecoder

# (FFmpeg demuxer name, decoder name) pairs where torchcodec returned exactly the frames asked for
# and where this package can verify restart points (see ``bitstream``).
TORCHCODEC_EXACT_FORMATS = {
    ("mov,mp4,m4a,3gp,3g2,mj2", "h264"),
    ("matroska,webm", "h264"),
    ("matroska,webm", "vp9"),
}
FFMPEG_PACKAGES_DEBIAN = ("libavcodec59 libavformat59 libavutil57 libswscale6 libswresample4 "
                          "libavdevice59 libavfilter8")


@functools.cache
def torchcodec_unavailable() -> str | None:
    """Why torchcodec cannot decode in this process (not installed, no FFmpeg), or None when it can."""
    try:
        import torchcodec.decoders  # noqa: F401
        from torchcodec._core import ops
    except ImportError as error:
        return f"torchcodec is not installed ({error}); run: pip install torchcodec"
    except (OSError, RuntimeError) as error:  # a wheel built for another torch version
        return f"torchcodec does not load ({error}); install the torchcodec release made for your torch"
    if not getattr(ops, "_FFMPEG_AVAILABLE", False):
        return ("torchcodec cannot load the FFmpeg shared libraries (major version 4 to 9); install them, "
                f"e.g. on Debian 12: apt-get install {FFMPEG_PACKAGES_DEBIAN}")
    return None


class DecodeDeviceWarning(UserWarning):
    """DATA.DECODE_DEVICE cuda could not be honoured: frames are decoded on the CPU."""


def decode_device_unavailable() -> str | None:
    """Why torchcodec's GPU decoder cannot run in this process, or None when it may (a file it cannot
    take still falls back to the CPU)."""
    unavailable = torchcodec_unavailable()
    if unavailable is not None:
        return unavailable
    import torch

    if not torch.cuda.is_available():
        return "PyTorch sees no GPU"
    return None


def torchcodec_refusal(index: StreamIndex) -> str | None:
    """Why torchcodec cannot be trusted to be frame-exact on this video, or None when it can."""
    return index.seek_refusal("torchcodec", TORCHCODEC_EXACT_FORMATS)


def _checked_index(path: Path, index: StreamIndex | None) -> StreamIndex:
    """The file's index, after making sure torchcodec can decode it exactly (DecodeError otherwise)."""
    unavailable = torchcodec_unavailable()
    if unavailable is not None:
        raise DecodeError(path, unavailable)
    index = index_video(path) if index is None else index
    refusal = torchcodec_refusal(index)
    if refusal is not None:
        raise DecodeError(path, f"{refusal}; use the 'pyav' or 'auto' backend")
    return index


def _open_decoder(path: Path, index: StreamIndex, device: str = "cpu") -> VideoDecoder:
    """An exact-mode decoder (single-threaded on the CPU) whose frame count matches the packet count."""
    from torchcodec.decoders import VideoDecoder

    try:
        decoder = VideoDecoder(str(path), seek_mode="exact", num_ffmpeg_threads=1, dimension_order="NHWC",
                               device=device)
    except (RuntimeError, ValueError) as error:
        raise DecodeError(path, f"torchcodec cannot open it ({error})") from error
    counted = decoder.metadata.num_frames
    if counted != index.info.num_frames:
        reason = f"torchcodec counts {counted} frames where the file holds {index.info.num_frames}"
        raise DecodeError(path, f"{reason}; use 'pyav' or 'auto'")
    return decoder


def read_with_torchcodec(path: Path, indices: Sequence[int], index: StreamIndex | None = None,
                         device: str = "cpu") -> np.ndarray:
    """Frames at ``indices`` (any order, repeats allowed) as (N, H, W, 3) uint8 RGB, decoded on ``device``."""
    index = _checked_index(path, index)
    wanted = sorted(set(indices))
    if wanted[-1] >= index.info.num_frames:
        raise DecodeError(path, f"frame {wanted[-1]} was asked but the video has {index.info.num_frames} frames")
    frames = _decode_on_gpu(path, index, wanted) if device == "cuda" else None
    if frames is None:
        decoder = _open_decoder(path, index)
        try:
            frames = decoder.get_frames_at(indices=wanted).data.numpy()
        except (RuntimeError, ValueError, IndexError) as error:
            raise DecodeError(path, f"torchcodec failed to decode frames ({error})") from error
    position = {frame: i for i, frame in enumerate(wanted)}
    return frames[[position[i] for i in indices]]


def _decode_on_gpu(path: Path, index: StreamIndex, wanted: list[int]) -> np.ndarray | None:
    """The frames decoded by the GPU decoder, in host memory; None (after one warning) where it fails."""
    try:
        decoder = _open_decoder(path, index, "cuda")
        return decoder.get_frames_at(indices=wanted).data.cpu().numpy()
    except (DecodeError, RuntimeError, ValueError, IndexError) as error:
        reason = error.reason if isinstance(error, DecodeError) else f"{type(error).__name__}: {error}"
        warnings.warn(f"torchcodec's GPU decoder failed on {path} ({reason}); decoding on the CPU where it does",
                      DecodeDeviceWarning, stacklevel=2)
        return None


def probe_with_torchcodec(path: Path) -> VideoInfo:
    """``VideoInfo`` of a video torchcodec reads exactly (DecodeError for the others).

    The decoder itself is opened (and its frame count compared) only when frames are read.
    """
    return _checked_index(path, None).info
