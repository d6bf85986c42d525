"""A timeline PNG of a long video: the top classes' probabilities window by window.

Each window is drawn as a horizontal segment over its time span at its probability (windows may
overlap), joined through the window centres, one colour per class, with a strip below naming the
top-1 class of each window. Drawn with matplotlib's object API (no pyplot state); see
docs/deployment.md.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np
from matplotlib.figure import Figure

from videovit.errors import UsageError

DPI = 110


class TimeSpan(Protocol):
    """Seconds ``[start, end)`` of a window."""

    start: float
    end: float


class WindowScore(Protocol):
    """What the timeline needs of a scored window (``videovit.deploy.windows.WindowScore`` has it)."""

    window: TimeSpan
    probs: np.ndarray


def timeline_classes(scores: Sequence[WindowScore], top: int) -> list[int]:
    """Indices of the ``top`` classes with the highest peak probability over the windows."""
    peaks = np.max(np.stack([s.probs for s in scores]), axis=0)
    return [int(i) for i in np.argsort(-peaks, kind="stable")[:top]]


def plot_timeline(scores: Sequence[WindowScore], class_names: Sequence[str], out: str | Path,
                  top: int = 5, title: str = "") -> Path:
    """Write the timeline of ``scores`` to ``out`` (PNG) and return its path."""
    if not scores:
        raise UsageError("no window to plot: the video has no decodable frame")
    classes = timeline_classes(scores, min(top, len(class_names)))
    probs = np.stack([s.probs for s in scores])
    centres = np.array([(s.window.start + s.window.end) / 2 for s in scores])
    end = max(s.window.end for s in scores)
    figure = Figure(figsize=(10, 4.5))
    axes, strip = figure.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [5, 1]})
    colours = {}
    for cls in classes:
        line, = axes.plot(centres, probs[:, cls], marker="o", markersize=3, linewidth=1.2,
                          label=class_names[cls])
        colours[cls] = line.get_color()
        axes.hlines(probs[:, cls], [s.window.start for s in scores], [s.window.end for s in scores],
                    colors=line.get_color(), alpha=0.35, linewidth=3)
    axes.set_ylim(0, 1.02)
    axes.set_xlim(0, end)
    axes.set_ylabel("probability (views averaged)")
    axes.grid(alpha=0.3)
    axes.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, title=f"top {len(classes)} classes")
    axes.set_title(title or f"{len(scores)} windows")
    best = probs.argmax(axis=1)
    for score, cls in zip(scores, best, strict=True):
        strip.axvspan(score.window.start, score.window.end, ymin=0.1, ymax=0.9, alpha=0.5,
                      color=colours.get(int(cls), "grey"), linewidth=0)
    strip.set_yticks([])
    strip.set_ylabel("top-1", rotation=0, ha="right", va="center")
    strip.set_xlabel("time (s)")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, format="png", dpi=DPI, bbox_inches="tight")
    return out


__all__ = ["plot_timeline", "timeline_classes"]
