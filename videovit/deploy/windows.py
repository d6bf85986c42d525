"""Classify a long video window by window: a timeline of actions instead of one label.

Windows of ``window`` seconds start every ``stride`` seconds; the last one is aligned to the end of
the video so that every frame is covered (a video shorter than a window is one window). Each
window is treated as a video of its own: its frames are sampled by the model's test protocol
(DATA.SAMPLING, TEST.NUM_TEMPORAL_VIEWS x TEST.NUM_SPATIAL_CROPS views) and the views' softmax
probabilities are averaged. Frames are decoded once, front to back, and only the frames some
unfinished window still needs are kept, so memory does not grow with the video's length
(see docs/deployment.md).
"""
from __future__ import annotations

import csv
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from yacs.config import CfgNode

from videovit.data.decoding.stream import FrameTimes, frame_times, stream_frames
from videovit.data.sampling import sample_indices
from videovit.data.transforms import build_view_transform
from videovit.deploy.inference import views_probabilities
from videovit.errors import UsageError


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


@torch.no_grad()
def predict_windows(model: nn.Module, cfg: CfgNode, path: str | Path, window: float, stride: float,
                    progress: Callable[[int, int], None] | None = None) -> list[WindowScore]:
    """Probabilities of every window of the video at ``path``; ``progress(done, total)`` after each."""
    model.eval()
    times = frame_times(path)
    windows = plan_windows(times, window, stride)
    wanted = [window_frame_indices(cfg, w, times.fps) for w in windows]
    transform = build_view_transform(cfg, cfg.TEST.NUM_SPATIAL_CROPS)
    needed = {index for views in wanted for view in views for index in view}
    last_needed = [max(index for view in views for index in view) for views in wanted]
    kept: dict[int, np.ndarray] = {}
    scores: list[WindowScore] = []
    if progress is not None:
        progress(0, len(windows))
    for position, _, frame in stream_frames(path, stop=max(last_needed) + 1, only=needed):
        kept[position] = frame
        while len(scores) < len(windows) and last_needed[len(scores)] <= position:
            current = len(scores)
            views = [transform(np.stack([kept[i] for i in indices]), crop)
                     for indices in wanted[current] for crop in range(cfg.TEST.NUM_SPATIAL_CROPS)]
            scores.append(WindowScore(windows[current], views_probabilities(model, cfg, torch.stack(views)).numpy()))
            _forget_frames_before(kept, wanted[current + 1:])
            if progress is not None:
                progress(len(scores), len(windows))
    if len(scores) < len(windows):
        raise RuntimeError(f"{path} ended after fewer frames than its index lists; "
                           "check it with tools/check_videos.py")
    return scores


def _forget_frames_before(kept: dict[int, np.ndarray], remaining: Sequence[list[list[int]]]) -> None:
    """Drop the kept frames no remaining window uses (windows are in start order)."""
    keep_from = min((min(view) for views in remaining for view in views), default=None)
    for index in [i for i in kept if keep_from is None or i < keep_from]:
        del kept[index]


def top_classes(probs: np.ndarray, class_names: Sequence[str], top_k: int) -> list[tuple[str, float]]:
    """The ``top_k`` most probable classes as ``(name, probability)``, best first."""
    order = np.argsort(-probs, kind="stable")[:top_k]
    return [(class_names[i], float(probs[i])) for i in order]


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


__all__ = ["ProgressBar", "Window", "WindowScore", "caption_at", "plan_windows", "predict_windows",
           "top_classes", "window_frame_indices", "write_windows_csv"]
