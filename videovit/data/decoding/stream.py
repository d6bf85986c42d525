"""Decode a whole video once, front to back, one frame at a time, with each frame's timestamp.

For work that visits every frame (annotating a copy, sliding windows over a long video): memory
holds one frame, not the video. Frame i is the i-th frame in display order, counted as
``read_frames`` counts it (corrupt packets skipped), so indices from ``sample_indices`` fit both.
Times are in seconds from the first frame, read from the source timestamps (variable frame rates
included; see docs/deployment.md).
"""
from __future__ import annotations

from collections.abc import Container, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from videovit.data.decoding.index import LARGE_FRAME_PIXELS, index_video, open_video
from videovit.errors import DecodeError


@dataclass(frozen=True)
class FrameTimes:
    """When each frame starts (seconds from the first frame, display order) and when the last ends."""

    starts: np.ndarray  # (num_frames,) float64, non-decreasing
    duration: float     # end of the last frame: its start plus the typical frame duration
    fps: float          # the stream's average rate (frames / duration when it declares none)


def frame_times(path: str | Path) -> FrameTimes:
    """Frame start times from one demux pass (no decoding): cheap even for a long video."""
    index = index_video(path)
    count = index.info.num_frames
    with open_video(path) as (_, stream):
        time_base = Fraction(stream.time_base) if stream.time_base else None
    fps = index.info.fps if index.info.fps > 0 else 25.0
    if index.frame_pts is not None and time_base is not None:
        pts = np.asarray(index.frame_pts[:count], dtype=np.float64)
        starts = (pts - pts[0]) * float(time_base)
    else:
        starts = np.arange(count, dtype=np.float64) / fps
    step = float(np.median(np.diff(starts))) if count > 1 else 1.0 / fps
    return FrameTimes(starts, float(starts[-1] + step), fps)


def stream_frames(path: str | Path, stop: int | None = None,
                  only: Container[int] | None = None) -> Iterator[tuple[int, float, np.ndarray]]:
    """``(index, seconds from the first frame, (H, W, 3) uint8 RGB)`` for frames ``0 .. stop - 1``.

    ``stop`` None: every frame. ``only``: yield just these indices (the others are decoded but not
    converted to RGB, which costs about as much as decoding). DecodeError when the file cannot be decoded.
    """
    position = -1
    with open_video(path) as (container, stream):
        if stream.codec_context.width * stream.codec_context.height >= LARGE_FRAME_PIXELS:
            stream.thread_type = "AUTO"
        first_pts: int | None = None
        fps = float(stream.average_rate or stream.guessed_rate or 25)
        try:
            for packet in container.demux(stream):
                if packet.is_corrupt:
                    continue
                for frame in packet.decode():
                    position += 1
                    if stop is not None and position >= stop:
                        return
                    if first_pts is None and frame.pts is not None:
                        first_pts = frame.pts
                    if only is not None and position not in only:
                        continue
                    seconds = (float((frame.pts - first_pts) * frame.time_base)
                               if frame.pts is not None and first_pts is not None and frame.time_base
                               else position / fps)
                    yield position, seconds, frame.to_ndarray(format="rgb24")
        except av.FFmpegError as error:
            raise DecodeError(Path(path), f"decoding failed after {position + 1} frames ({error})") from error


__all__ = ["FrameTimes", "frame_times", "stream_frames"]
