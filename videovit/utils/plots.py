"""PNG plots of a run: training curves from stats.jsonl, confusion matrix and per-class accuracy.

Inputs are the engine's own files: ``OUTPUT_DIR/stats.jsonl`` (one JSON object per line with a
``kind`` — "train", "train_epoch", "val", "val_ema", "test" — and the ``global_step``; see
``videovit.engine.run_log``) and ``predictions.csv`` of the multi-view test (``label`` is a class
index, ``pred_1`` the top-1 class *name*; see ``videovit.engine.evaluate``) with the run's
``classes.txt``. Figures are drawn with matplotlib's object API on the Agg canvas (no display, no
pyplot state).
"""
from __future__ import annotations

import csv
import json
import math
from collections import defaultdict
from pathlib import Path
from typing import Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

LABELLED_TICKS_MAX = 60   # above this many classes, axes carry no class names (unreadable)
CELL_TEXT_MAX = 15        # up to this many classes, confusion cells show their value
DPI = 110


# ---------------------------------------------------------------------------- reading

def read_stats(path: str | Path) -> dict[str, list[dict]]:
    """stats.jsonl records grouped by kind, in step order; a step logged twice keeps its last record
    (a resumed run repeats the steps after its last checkpoint)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist; pass the stats.jsonl of a run's OUTPUT_DIR")
    latest: dict[str, dict[int, dict]] = defaultdict(dict)
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise ValueError(f"{path}:{number}: not a JSON line ({err})") from err
        if not isinstance(record, dict) or "kind" not in record or "global_step" not in record:
            raise ValueError(f"{path}:{number}: a stats record needs 'kind' and 'global_step'")
        latest[record["kind"]][record["global_step"]] = record
    return {kind: [records[step] for step in sorted(records)] for kind, records in latest.items()}


def read_predictions(path: str | Path, class_names: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """``(true, predicted)`` class indices of every scored video in a test predictions.csv."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist; pass the predictions.csv of a test run")
    index = {name: i for i, name in enumerate(class_names)}
    true, predicted = [], []
    with path.open(newline="", encoding="utf-8") as stream:
        for number, row in enumerate(csv.DictReader(stream), start=2):
            try:
                label, label_name, top1 = int(row["label"]), row["label_name"], row["pred_1"]
            except (KeyError, TypeError, ValueError) as err:
                raise ValueError(f"{path}:{number}: not a videovit predictions row ({err!r})") from err
            if not 0 <= label < len(class_names) or class_names[label] != label_name or top1 not in index:
                raise ValueError(f"{path}:{number}: class {label} {label_name!r} / prediction {top1!r} do not "
                                 "match the classes file; pass the classes.txt the run used")
            true.append(label)
            predicted.append(index[top1])
    if not true:
        raise ValueError(f"{path} holds no scored video")
    return np.array(true, dtype=np.int64), np.array(predicted, dtype=np.int64)


# ---------------------------------------------------------------------------- numbers

def confusion_matrix(true: np.ndarray, predicted: np.ndarray, num_classes: int) -> np.ndarray:
    """``(K, K)`` counts: row = true class, column = predicted class."""
    counts = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(counts, (true, predicted), 1)
    return counts


def row_normalised(counts: np.ndarray) -> np.ndarray:
    """Each row divided by its sum (the fraction of a class's videos given each label); NaN rows for
    classes without videos."""
    totals = counts.sum(axis=1, keepdims=True).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(totals > 0, counts / totals, np.nan)


def per_class_accuracy(true: np.ndarray, predicted: np.ndarray, num_classes: int) -> np.ndarray:
    """Top-1 accuracy (percent) of every class; NaN for classes without videos."""
    return 100.0 * np.diag(row_normalised(confusion_matrix(true, predicted, num_classes)))


# ---------------------------------------------------------------------------- figures

def _save(figure: Figure, out: str | Path) -> Path:
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, format="png", dpi=DPI, bbox_inches="tight")
    return out


def _series(records: list[dict], x: str, y: str) -> tuple[list[float], list[float]]:
    """(x, y) of the records holding a finite number under ``y``."""
    points = [(r[x], r[y]) for r in records
              if isinstance(r.get(y), (int, float)) and math.isfinite(r[y]) and r.get(x) is not None]
    return [p[0] for p in points], [p[1] for p in points]


def _no_data(axes: Axes, text: str) -> None:
    axes.text(0.5, 0.5, text, ha="center", va="center", transform=axes.transAxes, color="grey")


def plot_curves(stats: dict[str, list[dict]], out: str | Path) -> Path:
    """Training/validation loss and learning rate against the optimiser step, and clip-level
    validation top-1/top-5 against the epoch, side by side in one PNG."""
    train = stats.get("train", [])
    if not train:
        raise ValueError("the stats hold no 'train' record: nothing to plot (did training log a step?)")
    figure = Figure(figsize=(15, 4.2))
    loss_axes, lr_axes, acc_axes = figure.subplots(1, 3)

    loss_axes.plot(*_series(train, "global_step", "loss"), label="train (mean over the log period)")
    loss_axes.plot(*_series(stats.get("val", []), "global_step", "loss"), "o-", label="val (clip-level)")
    loss_axes.set(title="loss", xlabel="optimiser step", ylabel="cross-entropy")
    loss_axes.legend()

    lr_axes.plot(*_series(train, "global_step", "lr"))
    lr_axes.set(title="learning rate", xlabel="optimiser step", ylabel="lr", yscale="log")

    for kind, style in (("val", "-"), ("val_ema", "--")):
        records = stats.get(kind, [])
        for metric in ("clip_top1", "clip_top5"):
            epochs, values = _series(records, "epoch", metric)
            if values:
                acc_axes.plot(epochs, values, "o" + style, label=f"{kind} {metric.removeprefix('clip_')}")
    if acc_axes.lines:
        acc_axes.legend()
    else:
        _no_data(acc_axes, "no validation records")
    acc_axes.set(title="clip-level validation accuracy (one clip per video)", xlabel="epoch",
                 ylabel="accuracy (%)", ylim=(0, 100))
    acc_axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    for axes in (loss_axes, lr_axes, acc_axes):
        axes.grid(alpha=0.3)
    return _save(figure, out)


def _label_class_axis(axes: Axes, axis: str, class_names: Sequence[str], positions: Sequence[int]) -> None:
    """Class names as tick labels on ``axis`` ("x" or "y") when there are few enough to read."""
    if len(positions) > LABELLED_TICKS_MAX:
        return
    names = [class_names[i] for i in positions]
    if axis == "x":
        axes.set_xticks(range(len(positions)), names, rotation=90, fontsize=8)
    else:
        axes.set_yticks(range(len(positions)), names, fontsize=8)


def plot_confusion(true: np.ndarray, predicted: np.ndarray, class_names: Sequence[str],
                   out: str | Path) -> Path:
    """Row-normalised confusion matrix (row = true class); blank rows for classes without videos."""
    count = len(class_names)
    matrix = row_normalised(confusion_matrix(true, predicted, count))
    side = min(4 + 0.3 * count, 30)
    figure = Figure(figsize=(side + 1.5, side))
    axes = figure.subplots()
    image = axes.imshow(matrix, cmap="Blues", vmin=0.0, vmax=1.0, interpolation="nearest")
    figure.colorbar(image, ax=axes, fraction=0.046, pad=0.04, label="fraction of the true class's videos")
    if count <= CELL_TEXT_MAX:
        for (row, col), value in np.ndenumerate(matrix):
            if value > 0:
                axes.text(col, row, f"{value:.2f}", ha="center", va="center", fontsize=7,
                          color="white" if value > 0.5 else "black")
    _label_class_axis(axes, "x", class_names, range(count))
    _label_class_axis(axes, "y", class_names, range(count))
    axes.set(xlabel="predicted class (top-1)", ylabel="true class",
             title=f"confusion matrix, normalised per true class ({len(true)} videos)")
    return _save(figure, out)


def plot_per_class(true: np.ndarray, predicted: np.ndarray, class_names: Sequence[str],
                   out: str | Path) -> tuple[Path, np.ndarray]:
    """Bar chart of per-class top-1 accuracy, best class first; returns the PNG path and the
    accuracies (percent, NaN for classes without videos) in class order."""
    accuracy = per_class_accuracy(true, predicted, len(class_names))
    present = np.flatnonzero(~np.isnan(accuracy))
    order = present[np.argsort(-accuracy[present], kind="stable")]
    mean = float(np.mean(accuracy[present]))
    if len(order) <= LABELLED_TICKS_MAX:
        figure = Figure(figsize=(8, 1.5 + 0.25 * len(order)))
        axes = figure.subplots()
        axes.barh(range(len(order)), accuracy[order], color="tab:blue")
        axes.invert_yaxis()
        _label_class_axis(axes, "y", class_names, order)
        axes.set(xlim=(0, 100), xlabel="top-1 accuracy (%)")
        axes.axvline(mean, color="tab:red", linestyle="--", label=f"mean class accuracy {mean:.1f}%")
    else:
        figure = Figure(figsize=(14, 5))
        axes = figure.subplots()
        axes.bar(range(len(order)), accuracy[order], width=1.0, color="tab:blue")
        axes.set(ylim=(0, 100), ylabel="top-1 accuracy (%)", xlabel="classes, sorted by accuracy")
        axes.axhline(mean, color="tab:red", linestyle="--", label=f"mean class accuracy {mean:.1f}%")
    axes.legend(loc="lower right")
    missing = len(class_names) - len(order)
    note = f"; {missing} classes without videos left out" if missing else ""
    axes.set_title(f"per-class accuracy ({len(true)} videos, {len(order)} classes{note})")
    return _save(figure, out), accuracy


__all__ = ["confusion_matrix", "per_class_accuracy", "plot_confusion", "plot_curves", "plot_per_class",
           "read_predictions", "read_stats", "row_normalised"]
