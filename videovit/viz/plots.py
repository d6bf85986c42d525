"""PNG plots of a run: training curves from stats.jsonl, confusion matrix and per-class accuracy.

Inputs are the engine's own files: ``OUTPUT_DIR/stats.jsonl`` (one JSON object per line with a
``kind`` — "train", "train_epoch", "val", "val_ema", "test" — and the ``global_step``; see
``videovit.engine.run_log``) and ``predictions.csv`` of the multi-view test (``label`` is a class
index, ``pred_1`` the top-1 class *name*; see ``videovit.evaluation.views``), whose ``label`` /
``label_name`` columns name the classes (a ``classes.txt`` may be given to keep classes without
videos). Figures are drawn with matplotlib's object API on the Agg canvas (no display, no pyplot
state), in a constrained layout with legends outside the data.
"""
from __future__ import annotations

import csv
import json
import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from videovit.errors import InputPathError, UsageError

LABELLED_TICKS_MAX = 60   # above this many classes, axes carry no class names (unreadable)
CELL_TEXT_MAX = 15        # up to this many classes, confusion cells show their value
MOST_CONFUSED_SHOWN = 30  # classes in the confusion plot when there are too many to label
PAIRS_SHOWN = 20          # most confused pairs printed by tools/plot.py
DPI = 110


# ---------------------------------------------------------------------------- reading

def read_stats(path: str | Path) -> dict[str, list[dict]]:
    """stats.jsonl records grouped by kind, in step order; a step logged twice keeps its last record
    (a resumed run repeats the steps after its last checkpoint)."""
    path = Path(path)
    if not path.is_file():
        raise InputPathError(f"{path} does not exist; pass the stats.jsonl of a run's OUTPUT_DIR")
    latest: dict[str, dict[int, dict]] = defaultdict(dict)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise UsageError(f"{path} is not a stats.jsonl: not UTF-8 text ({err})") from None
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise UsageError(f"{path}:{number}: not a JSON line ({err})") from err
        if not isinstance(record, dict) or "kind" not in record or "global_step" not in record:
            raise UsageError(f"{path}:{number}: a stats record needs 'kind' and 'global_step'")
        latest[record["kind"]][record["global_step"]] = record
    return {kind: [records[step] for step in sorted(records)] for kind, records in latest.items()}


def read_predictions(path: str | Path,
                     class_names: Sequence[str] | None = None) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """``(true, predicted, class_names)`` of every scored video in a test predictions.csv.

    Without ``class_names`` the names come from the file: class ``label`` is ``label_name``; a class
    only ever predicted (never a true label) gets the next free index, and indices no row names are
    "class <i>". With ``class_names`` (the run's classes.txt) every row must agree with it.
    """
    path = Path(path)
    if not path.is_file():
        raise InputPathError(f"{path} does not exist; pass the predictions.csv of a test run")
    rows = []
    with path.open(newline="", encoding="utf-8") as stream:
        try:
            for number, row in enumerate(csv.DictReader(stream), start=2):
                try:
                    rows.append((number, int(row["label"]), row["label_name"], row["pred_1"]))
                except (KeyError, TypeError, ValueError) as err:
                    raise UsageError(f"{path}:{number}: not a videovit predictions row ({err!r})") from err
        except UnicodeDecodeError as err:
            raise UsageError(f"{path} is not a predictions.csv: not UTF-8 text ({err})") from None
    if not rows:
        raise UsageError(f"{path} holds no scored video")
    names = list(class_names) if class_names is not None else _names_from_rows(rows)
    index = {name: i for i, name in enumerate(names)}
    true, predicted = [], []
    for number, label, label_name, top1 in rows:
        if not 0 <= label < len(names) or names[label] != label_name or top1 not in index:
            raise UsageError(f"{path}:{number}: class {label} {label_name!r} / prediction {top1!r} do not "
                             "match the classes file; pass the classes.txt the run used")
        true.append(label)
        predicted.append(index[top1])
    return np.array(true, dtype=np.int64), np.array(predicted, dtype=np.int64), names


def _names_from_rows(rows: list[tuple[int, int, str, str]]) -> list[str]:
    known = {label: name for _, label, name, _ in rows}
    names = [known.get(i, f"class {i}") for i in range(max(known) + 1)]
    for _, _, _, top1 in rows:
        if top1 not in names:
            names.append(top1)
    return names


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


@dataclass(frozen=True)
class ConfusedPair:
    """Videos of class ``true`` given the top-1 label ``predicted``, and their share of ``true``'s videos."""

    true: str
    predicted: str
    count: int
    fraction_of_true: float


def most_confused_pairs(true: np.ndarray, predicted: np.ndarray, class_names: Sequence[str],
                        top: int | None = None) -> list[ConfusedPair]:
    """Off-diagonal (true, predicted) class pairs by count, most frequent first."""
    counts = confusion_matrix(true, predicted, len(class_names))
    totals = counts.sum(axis=1)
    off = counts.copy()
    np.fill_diagonal(off, 0)
    rows, cols = np.nonzero(off)
    order = np.lexsort((cols, rows, -off[rows, cols]))[:top]
    return [ConfusedPair(class_names[rows[i]], class_names[cols[i]], int(off[rows[i], cols[i]]),
                         float(off[rows[i], cols[i]] / totals[rows[i]])) for i in order]


def write_pairs_csv(pairs: Sequence[ConfusedPair], out: str | Path) -> Path:
    """The ``most_confused_pairs`` as a CSV table."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="", encoding="utf-8") as stream:
        writer = csv.writer(stream)
        writer.writerow(["true", "predicted", "count", "fraction_of_true"])
        writer.writerows([pair.true, pair.predicted, pair.count, f"{pair.fraction_of_true:.4f}"] for pair in pairs)
    return out


def most_confused_classes(true: np.ndarray, predicted: np.ndarray, num_classes: int, count: int) -> np.ndarray:
    """The ``count`` classes with the most errors (videos of the class given another label plus videos
    of other classes given this label), most first."""
    counts = confusion_matrix(true, predicted, num_classes)
    np.fill_diagonal(counts, 0)
    errors = counts.sum(axis=0) + counts.sum(axis=1)
    return np.argsort(-errors, kind="stable")[:count]


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


def _legend_below(axes: Axes) -> None:
    """The legend under the axes, where it cannot hide a curve."""
    axes.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2, fontsize=8, frameon=False)


def _no_data(axes: Axes, text: str) -> None:
    axes.text(0.5, 0.5, text, ha="center", va="center", transform=axes.transAxes, color="grey")


def plot_curves(stats: dict[str, list[dict]], out: str | Path) -> Path:
    """Training/validation loss and learning rate against the optimiser step, and clip-level
    validation top-1/top-5 against the epoch, side by side in one PNG."""
    train = stats.get("train", [])
    if not train:
        raise UsageError("the stats hold no 'train' record: nothing to plot (did training log a step?)")
    figure = Figure(figsize=(16, 4.8), layout="constrained")
    loss_axes, lr_axes, acc_axes = figure.subplots(1, 3)

    loss_axes.plot(*_series(train, "global_step", "loss"), label="train (mean over the log period)")
    loss_axes.plot(*_series(stats.get("val", []), "global_step", "loss"), "o-", label="val (clip-level)")
    loss_axes.set(title="loss", xlabel="optimiser step", ylabel="cross-entropy")
    _legend_below(loss_axes)

    lr_axes.plot(*_series(train, "global_step", "lr"))
    lr_axes.set(title="learning rate", xlabel="optimiser step", ylabel="lr", yscale="log")

    for kind, style in (("val", "-"), ("val_ema", "--")):
        records = stats.get(kind, [])
        for metric in ("clip_top1", "clip_top5"):
            epochs, values = _series(records, "epoch", metric)
            if values:
                acc_axes.plot(epochs, values, "o" + style, label=f"{kind} {metric.removeprefix('clip_')}")
    if acc_axes.lines:
        _legend_below(acc_axes)
    else:
        _no_data(acc_axes, "no validation records")
    acc_axes.set(title="clip-level validation accuracy (one clip per video)", xlabel="epoch",
                 ylabel="accuracy (%)", ylim=(0, 100))
    acc_axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    for axes in (loss_axes, lr_axes, acc_axes):
        axes.grid(alpha=0.3)
    return _save(figure, out)


def _label_class_axis(axes: Axes, axis: str, class_names: Sequence[str], positions: Sequence[int] | np.ndarray) -> None:
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
    """Row-normalised confusion matrix (row = true class); blank rows for classes without videos.

    Above LABELLED_TICKS_MAX classes only the MOST_CONFUSED_SHOWN most confused classes are drawn
    (labelled, in class order; cells still normalised by each true class's videos, so rows need not sum to 1).
    """
    count = len(class_names)
    matrix = row_normalised(confusion_matrix(true, predicted, count))
    shown = (np.arange(count) if count <= LABELLED_TICKS_MAX
             else np.sort(most_confused_classes(true, predicted, count, MOST_CONFUSED_SHOWN)))
    matrix = matrix[np.ix_(shown, shown)]
    side = min(4 + 0.3 * len(shown), 30)
    figure = Figure(figsize=(side + 1.5, side), layout="constrained")
    axes = figure.subplots()
    image = axes.imshow(matrix, cmap="Blues", vmin=0.0, vmax=1.0, interpolation="nearest")
    figure.colorbar(image, ax=axes, fraction=0.046, pad=0.04, label="fraction of the true class's videos")
    if len(shown) <= CELL_TEXT_MAX:
        for (row, col), value in np.ndenumerate(matrix):
            if value > 0:
                axes.text(col, row, f"{value:.2f}", ha="center", va="center", fontsize=7,
                          color="white" if value > 0.5 else "black")
    _label_class_axis(axes, "x", class_names, shown)
    _label_class_axis(axes, "y", class_names, shown)
    what = (f"confusion matrix, normalised per true class ({len(true)} videos)" if len(shown) == count else
            f"the {len(shown)} most confused of {count} classes ({len(true)} videos),\nnormalised per true class")
    axes.set(xlabel="predicted class (top-1)", ylabel="true class", title=what)
    return _save(figure, out)


def plot_per_class(true: np.ndarray, predicted: np.ndarray, class_names: Sequence[str],
                   out: str | Path) -> tuple[Path, np.ndarray]:
    """Bar chart of per-class top-1 accuracy, best class first, with each class's video count;
    returns the PNG path and the accuracies (percent, NaN for classes without videos) in class order."""
    accuracy = per_class_accuracy(true, predicted, len(class_names))
    videos = np.bincount(true, minlength=len(class_names))
    present = np.flatnonzero(~np.isnan(accuracy))
    order = present[np.argsort(-accuracy[present], kind="stable")]
    mean = float(np.mean(accuracy[present]))
    if len(order) <= LABELLED_TICKS_MAX:
        figure = Figure(figsize=(8, 1.5 + 0.25 * len(order)), layout="constrained")
        axes = figure.subplots()
        axes.barh(range(len(order)), accuracy[order], color="tab:blue")
        axes.invert_yaxis()
        labels = [f"{class_names[i]} ({videos[i]})" for i in order]
        axes.set_yticks(range(len(order)), labels, fontsize=8)
        axes.set(xlim=(0, 100), xlabel="top-1 accuracy (%)", ylabel="class (videos)")
        axes.axvline(mean, color="tab:red", linestyle="--", label=f"mean class accuracy {mean:.1f}%")
    else:
        figure = Figure(figsize=(14, 5), layout="constrained")
        axes = figure.subplots()
        axes.bar(range(len(order)), accuracy[order], width=1.0, color="tab:blue", label="top-1 accuracy")
        axes.set(ylim=(0, 100), ylabel="top-1 accuracy (%)", xlabel="classes, sorted by accuracy")
        axes.axhline(mean, color="tab:red", linestyle="--", label=f"mean class accuracy {mean:.1f}%")
        count_axes = axes.twinx()
        count_axes.plot(range(len(order)), videos[order], color="black", linewidth=0.8, drawstyle="steps-mid",
                        label="videos of the class")
        count_axes.set(ylabel="videos of the class", ylim=(0, 1.15 * max(int(videos.max()), 1)))
        figure.legend(loc="outside lower center", ncol=3, frameon=False)
    if len(order) <= LABELLED_TICKS_MAX:
        figure.legend(loc="outside lower center", frameon=False)
    missing = len(class_names) - len(order)
    note = f"; {missing} classes without videos left out" if missing else ""
    axes.set_title(f"per-class accuracy ({len(true)} videos, {len(order)} classes{note})")
    return _save(figure, out), accuracy


__all__ = ["ConfusedPair", "confusion_matrix", "most_confused_classes", "most_confused_pairs", "per_class_accuracy",
           "plot_confusion", "plot_curves", "plot_per_class", "read_predictions", "read_stats", "row_normalised",
           "write_pairs_csv"]
