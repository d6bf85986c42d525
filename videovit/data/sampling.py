"""Which frames of a video make a clip (docs/data.md, "Sampling and views"). Pure functions returning frame indices.

- ``uniform`` (TSN / the RegionViT protocol): the video is cut into T equal segments (real-valued
  length ``n / T``). Training takes a random frame in each segment; test view k of N takes the
  frame at offset ``seg * (k + 1) / (N + 1)`` in each segment (N = 1: the segment centres). For a
  video with fewer than T frames a segment is shorter than a frame, so frames repeat in order.
- ``dense``: T frames ``stride`` apart at ``target_fps`` (``stride * video_fps / target_fps`` video
  frames apart). Training starts anywhere the clip fits; test view k of N starts at
  ``last_start * k / (N - 1)`` (N = 1: the centred clip). A video shorter than the clip starts at
  0 and repeats its last frame.

Indices are floored and never exceed ``num_video_frames - 1``.
"""
from __future__ import annotations

import math

import torch

SAMPLING_METHODS = ("uniform", "dense")


def uniform_indices(num_video_frames: int, num_frames: int, train: bool, view: int = 0,
                    num_views: int = 1, generator: torch.Generator | None = None) -> list[int]:
    """TSN segment sampling: one frame per segment, random (train) or at view ``view`` of ``num_views``."""
    _check_counts(num_video_frames, num_frames, view, num_views)
    if train:
        segment = num_video_frames / num_frames
        offsets = torch.rand(num_frames, generator=generator, dtype=torch.float64).tolist()
        return [_clamp(math.floor(segment * (i + offsets[i])), num_video_frames) for i in range(num_frames)]
    # floor(n / T * (i + (view + 1) / (N + 1))) in exact integer arithmetic; always < n
    denominator = num_frames * (num_views + 1)
    return [num_video_frames * (i * (num_views + 1) + view + 1) // denominator for i in range(num_frames)]


def dense_indices(num_video_frames: int, num_frames: int, stride: int, train: bool, view: int = 0,
                  num_views: int = 1, video_fps: float | None = None, target_fps: float | None = None,
                  generator: torch.Generator | None = None) -> list[int]:
    """``num_frames`` frames ``stride`` apart at ``target_fps``; random (train) or spread (test) start.

    ``video_fps`` or ``target_fps`` None/0 means the stride is in the video's own frames.
    """
    _check_counts(num_video_frames, num_frames, view, num_views)
    if stride < 1:
        raise ValueError(f"dense sampling needs a stride >= 1, got {stride}; set DATA.SAMPLING_RATE")
    step = stride * video_fps / target_fps if video_fps and target_fps else float(stride)
    last_start = max(0.0, num_video_frames - 1 - (num_frames - 1) * step)
    if train:
        start = float(torch.rand(1, generator=generator, dtype=torch.float64)) * last_start
    elif num_views == 1:
        start = last_start / 2
    else:
        start = last_start * view / (num_views - 1)
    return [_clamp(math.floor(start + i * step), num_video_frames) for i in range(num_frames)]


def sample_indices(method: str, num_video_frames: int, num_frames: int, train: bool, view: int = 0,
                   num_views: int = 1, generator: torch.Generator | None = None, stride: int = 8,
                   video_fps: float | None = None, target_fps: float | None = None) -> list[int]:
    """Dispatch to ``uniform_indices`` or ``dense_indices`` by DATA.SAMPLING ``method``."""
    if method == "uniform":
        return uniform_indices(num_video_frames, num_frames, train, view, num_views, generator)
    if method == "dense":
        return dense_indices(num_video_frames, num_frames, stride, train, view, num_views,
                             video_fps, target_fps, generator)
    raise ValueError(f"unknown sampling method {method!r}; set DATA.SAMPLING to one of {SAMPLING_METHODS}")


def _check_counts(num_video_frames: int, num_frames: int, view: int, num_views: int) -> None:
    if num_video_frames < 1:
        raise ValueError(f"cannot sample from a video with {num_video_frames} frames")
    if num_frames < 1:
        raise ValueError(f"a clip needs at least one frame, got num_frames={num_frames}")
    if num_views < 1 or not 0 <= view < num_views:
        raise ValueError(f"view {view} of {num_views} is invalid; need 0 <= view < num_views")


def _clamp(index: int, num_video_frames: int) -> int:
    return min(index, num_video_frames - 1)


__all__ = ["SAMPLING_METHODS", "dense_indices", "sample_indices", "uniform_indices"]
