"""Classify a long video window by window: a timeline of actions instead of one label.

Windows of ``window`` seconds start every ``stride`` seconds; the last one is aligned to the end of
the video so that every frame is covered (a video shorter than a window is one window). Each
window is treated as a video of its own: its frames are sampled by the model's test protocol
(DATA.SAMPLING, TEST.NUM_TEMPORAL_VIEWS x TEST.NUM_SPATIAL_CROPS views), and ``window_batches`` hands
its views to the test's scorer (``VideoClassifier.windows``), which averages their softmax
probabilities. Frames are decoded once, front to back, and only the frames some unfinished window
still needs are kept, so memory does not grow with the video's length (see docs/deployment.md).
"""
from __future__ import annotations

import csv
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from yacs.config import CfgNode

from videovit.data.datasets import collate_views, make_sample
from videovit.data.decoding.stream import FrameTimes, stream_frames
from videovit.data.lists import UNLABELLED
from videovit.data.sampling import sample_indices
from videovit.data.transforms import build_view_transform
from videovit.errors import DecodeError, UsageError
from videovit.evaluation.views import top_classes


@dataclass(frozen=True)
class Window:
    """A stretch of the video: ``[start, end)`` seconds, frames ``first .. first + count - 1``."""

    start: float
    end: float
    first: int
    count: int


@dataclass(frozen=True)
class WindowScore:
    """A window and its class probabilities (views averaged)."""

    window: Window
    probs: np.ndarray  # (K,) float32


def plan_windows(times: FrameTimes, window: float, stride: float) -> list[Window]:
    """Windows of ``window`` s every ``stride`` s, the last one ending at the video's end."""
    if window <= 0 or stride <= 0:
        raise UsageError(f"--window and --stride must be positive seconds, got {window} and {stride}")
    duration = times.duration
    if duration <= window:
        starts = [0.0]
    else:
        starts = list(np.arange(0.0, duration - window + 1e-9, stride))
        if starts[-1] + window < duration - 1e-9:
            starts.append(duration - window)
    windows = []
    for start in starts:
        end = min(start + window, duration)
        first = int(np.searchsorted(times.starts, start - 1e-9, side="left"))
        stop = int(np.searchsorted(times.starts, end - 1e-9, side="left"))
        if stop > first:
            windows.append(Window(float(start), float(end), first, stop - first))
    return windows


def window_frame_indices(cfg: CfgNode, window: Window, fps: float) -> list[list[int]]:
    """Video frame indices of each temporal test view of ``window`` (the model's protocol)."""
    data, views = cfg.DATA, cfg.TEST.NUM_TEMPORAL_VIEWS
    return [[window.first + i for i in sample_indices(data.SAMPLING, window.count, data.NUM_FRAMES, train=False,
                                                      view=view, num_views=views, stride=data.SAMPLING_RATE,
                                                      video_fps=fps, target_fps=data.TARGET_FPS)]
            for view in range(views)]


def window_batches(cfg: CfgNode, path: str | Path, times: FrameTimes, windows: Sequence[Window],
                   progress: Callable[[int, int], None] | None = None) -> Iterator[dict[str, Any]]:
    """Batches of every window's test views (``collate_views``' format; a window is a video whose index is
    the window's), TEST.BATCH_SIZE views at most, decoding the video once, front to back, and keeping only
    the frames an unfinished window needs. ``progress(done, total)`` runs once a window's views are taken."""
    wanted = [window_frame_indices(cfg, w, times.fps) for w in windows]
    crops = cfg.TEST.NUM_SPATIAL_CROPS
    transform = build_view_transform(cfg, crops)
    needed = {index for views in wanted for view in views for index in view}
    last_needed = [max(index for view in views for index in view) for views in wanted]
    kept: dict[int, np.ndarray] = {}
    done = 0
    if progress is not None:
        progress(0, len(windows))
    for position, _, frame in stream_frames(path, stop=max(last_needed) + 1, only=needed):
        kept[position] = frame
        while done < len(windows) and last_needed[done] <= position:
            views = [make_sample(transform(np.stack([kept[i] for i in indices]), crop), UNLABELLED, done,
                                 temporal * crops + crop, str(path), [])
                     for temporal, indices in enumerate(wanted[done]) for crop in range(crops)]
            for start in range(0, len(views), cfg.TEST.BATCH_SIZE):
                yield collate_views(views[start:start + cfg.TEST.BATCH_SIZE])
            done += 1
            _forget_frames_before(kept, wanted[done:])
            if progress is not None:
                progress(done, len(windows))
    if done < len(windows):
        raise DecodeError(path, f"it ended after fewer frames than its index lists ({max(last_needed) + 1}); "
                          "check it with tools/check_videos.py")


def _forget_frames_before(kept: dict[int, np.ndarray], remaining: Sequence[list[list[int]]]) -> None:
    """Drop the kept frames no remaining window uses (windows are in start order)."""
    keep_from = min((min(view) for views in remaining for view in views), default=None)
    for index in [i for i in kept if keep_from is None or i < keep_from]:
        del kept[index]


def write_windows_csv(path: str | Path, scores: Sequence[WindowScore], class_names: Sequence[str],
                      top_k: int) -> None:
    """One row per window: start and end seconds, then the top-k classes and probabilities."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    k = min(top_k, len(class_names))
    with path.open("w", newline="", encoding="utf-8") as stream:
        writer = csv.writer(stream)
        writer.writerow(["start", "end"] + [f"{kind}_{r}" for r in range(1, k + 1) for kind in ("pred", "prob")])
        for score in scores:
            row: list[str] = [f"{score.window.start:.3f}", f"{score.window.end:.3f}"]
            for name, prob in top_classes(score.probs, class_names, k):
                row += [name, f"{prob:.6f}"]
            writer.writerow(row)


def caption_at(scores: Sequence[WindowScore], class_names: Sequence[str]) -> Callable[[float], str]:
    """``seconds -> "top-1 class  p%"`` of the window whose centre is nearest (labels follow the windows)."""
    centres = np.array([(s.window.start + s.window.end) / 2 for s in scores])
    captions = []
    for score in scores:
        (name, prob), = top_classes(score.probs, class_names, 1)
        captions.append(f"{name} {100 * prob:.1f}%")

    def caption(seconds: float) -> str:
        return captions[int(np.argmin(np.abs(centres - seconds)))]
    return caption


class ProgressBar:
    """``windows 12/60 [####      ] 20% elapsed 0:05 ETA 0:20`` on one rewritten line of ``stream``."""

    def __init__(self, label: str, stream, width: int = 30) -> None:
        self.label, self.stream, self.width = label, stream, width
        self.started = time.monotonic()

    def __call__(self, done: int, total: int) -> None:
        elapsed = time.monotonic() - self.started
        fraction = done / total if total else 1.0
        eta = _clock(elapsed / done * (total - done)) if done else "?"
        bar = "#" * round(self.width * fraction)
        self.stream.write(f"\r{self.label} {done}/{total} [{bar:<{self.width}}] {100 * fraction:3.0f}% "
                          f"elapsed {_clock(elapsed)} ETA {eta}")
        if done == total:
            self.stream.write("\n")
        self.stream.flush()


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(round(seconds)), 60)
    return f"{minutes // 60}:{minutes % 60:02d}:{secs:02d}" if minutes >= 60 else f"{minutes}:{secs:02d}"


__all__ = ["ProgressBar", "Window", "WindowScore", "caption_at", "plan_windows", "window_batches",
           "window_frame_indices", "write_windows_csv"]
