"""Evaluation: clip-level validation during training and the multi-view video-level test.

Clip-level validation scores one clip per video and is labelled "clip-level" everywhere: it is not
the test number. The test scores every video with N temporal x C spatial views, **averages the
views' softmax probabilities** per video, and reports video-level top-1, top-5 and mean per-class
accuracy over the videos whose views all decoded ("scored N of M videos"; failed videos are
excluded and listed, never replaced); when more than TEST.MAX_FAILED_SHARE of them failed, the run
fails once its results are written (``check_scored_share``). ``score_videos`` is the one scorer of
videos: the test, prediction, the demo and sliding windows all go through it. Under
DistributedSampler the views are gathered from every process and de-duplicated by (video_index,
view_index), which removes the sampler's padding so each video counts exactly once whatever the
number of processes.
"""
from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterable, Iterator, Sequence, Sized
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader

from videovit.errors import CheckFailedError, Interrupted
from videovit.runtime.distributed import DistContext, all_gather_objects, signal_on_any_process
from videovit.signals import raise_if_interrupted, signals_blocked, signals_deferred

PREDICTIONS_FILE = "predictions.csv"
PROBABILITIES_FILE = "probabilities.npy"
METRICS_FILE = "metrics.json"
FAILED_FILE = "failed_videos.csv"
TOP_K = 5
AVERAGING = "softmax probabilities averaged over the views of each video"


# ---------------------------------------------------------------------------- math

def topk_accuracy(probs: np.ndarray, labels: np.ndarray, k: int) -> float:
    """Percentage of rows whose label is among the ``k`` highest scores (k capped at #classes)."""
    if len(labels) == 0:
        return float("nan")
    k = min(k, probs.shape[1])
    top = np.argsort(-probs, axis=1, kind="stable")[:, :k]
    return float(100.0 * np.mean(np.any(top == labels[:, None], axis=1)))


def mean_class_accuracy(probs: np.ndarray, labels: np.ndarray) -> float:
    """Top-1 accuracy of each class present in ``labels``, averaged over those classes (percent)."""
    if len(labels) == 0:
        return float("nan")
    predicted = probs.argmax(axis=1)
    per_class = [np.mean(predicted[labels == c] == c) for c in np.unique(labels)]
    return float(100.0 * np.mean(per_class))


@dataclass
class ViewScores:
    """Softmax probabilities of scored views plus the views that failed to decode."""

    video_index: np.ndarray          # (N,) int64
    view_index: np.ndarray           # (N,) int64
    probs: np.ndarray                # (N, K) float32
    failures: list[tuple[int, str, str]] = field(default_factory=list)  # (video, path, reason)

    @classmethod
    def concatenate(cls, parts: Sequence[ViewScores], num_classes: int) -> ViewScores:
        """All ``parts`` in one, keeping the first score of each (video, view) pair seen."""
        video = np.concatenate([p.video_index for p in parts] + [np.zeros(0, np.int64)])
        view = np.concatenate([p.view_index for p in parts] + [np.zeros(0, np.int64)])
        probs = np.concatenate([p.probs for p in parts] + [np.zeros((0, num_classes), np.float32)])
        _, first = np.unique(np.stack([video, view], axis=1), axis=0, return_index=True)
        first = np.sort(first)
        failures = sorted({f for p in parts for f in p.failures})
        return cls(video[first], view[first], probs[first], failures)


@dataclass
class VideoScores:
    """Per-video averaged probabilities; rows of unscored videos are NaN."""

    probs: np.ndarray                # (M, K)
    scored: np.ndarray               # (M,) bool
    failed: dict[int, str]           # video index -> why it was not scored


def average_views(views: ViewScores, num_videos: int, views_per_video: int) -> VideoScores:
    """Mean softmax probability per video over its views; a video with a failed or missing view is
    left out (NaN row) so every scored video is scored by the full protocol."""
    num_classes = views.probs.shape[1]
    sums = np.zeros((num_videos, num_classes), dtype=np.float64)
    counts = np.zeros(num_videos, dtype=np.int64)
    np.add.at(sums, views.video_index, views.probs)
    np.add.at(counts, views.video_index, 1)
    failed = {video: reason for video, _, reason in views.failures}
    for video in np.flatnonzero(counts != views_per_video):
        if int(video) not in failed:
            failed[int(video)] = f"{counts[video]} of {views_per_video} views scored"
    scored = np.ones(num_videos, dtype=bool)
    scored[list(failed)] = False
    probs = np.full((num_videos, num_classes), np.nan, dtype=np.float32)
    probs[scored] = (sums[scored] / counts[scored, None]).astype(np.float32)
    return VideoScores(probs, scored, failed)


def top_classes(probs: np.ndarray, class_names: Sequence[str], top_k: int = TOP_K) -> list[tuple[str, float]]:
    """The ``top_k`` most probable classes of one row of probabilities as ``(name, probability)``, best first."""
    order = np.argsort(-probs, kind="stable")[:top_k]
    return [(class_names[i], float(probs[i])) for i in order]


def video_metrics(scores: VideoScores, labels: np.ndarray) -> dict[str, float | int]:
    """Video-level top-1, top-5 and mean per-class accuracy (percent) over the scored videos."""
    probs, truth = scores.probs[scores.scored], labels[scores.scored]
    return {"top1": topk_accuracy(probs, truth, 1), "top5": topk_accuracy(probs, truth, TOP_K),
            "mean_class_acc": mean_class_accuracy(probs, truth),
            "videos_scored": int(scores.scored.sum()), "videos_total": int(len(labels))}


def pair_accuracy(probs: np.ndarray, labels: np.ndarray, pair: tuple[int, int]) -> float:
    """Percentage of the videos of classes ``pair = (a, b)`` that score their own class above the
    other one of the pair (chance is 50%); rows that are NaN (unscored videos) are skipped."""
    first, second = pair
    rows = np.isin(labels, pair) & ~np.isnan(probs).any(axis=1)
    if not rows.any():
        return float("nan")
    own = probs[rows, labels[rows]]
    other = probs[rows, np.where(labels[rows] == first, second, first)]
    return float(100.0 * np.mean(own > other))


# ---------------------------------------------------------------------------- loops

def _batch_failures(batch: dict) -> list[tuple[int, str, str]]:
    """``(video_index, path, reason)`` of the views a test batch dropped (see ``collate_views``)."""
    return [(int(video), str(path), str(reason))
            for video, (path, reason) in zip(batch["failed_video_index"].tolist(), batch["failures"], strict=True)]


class _StopPoints:
    """Where an evaluation loop stops on a signal (``videovit.signals``): after any batch of a single
    process; under several processes after each batch that every process has (one small all-reduce),
    all together, so that none is left waiting in a collective."""

    def __init__(self, loader: Iterable[dict], ctx: DistContext) -> None:
        self.device = ctx.device
        self.shared_batches = min(all_gather_objects(len(cast(Sized, loader)))) if ctx.distributed else None

    def after_batch(self, number: int) -> None:
        """Raise ``Interrupted`` when a signal arrived (on any process) by the end of batch ``number``."""
        if self.shared_batches is None:
            raise_if_interrupted()
        elif number < self.shared_batches:
            signum = signal_on_any_process(self.device)
            if signum is not None:
                raise Interrupted(signum)


def _started(loader: Iterable[dict]) -> Iterator[dict]:
    """The loader's iterator, its workers started with SIGINT/SIGTERM blocked (``signals_blocked``). The
    loop holds the only reference: an exception ends the workers as it leaves the loop."""
    with signals_blocked():
        return iter(loader)


@torch.no_grad()
def score_views(model: nn.Module, loader: Iterable[dict], ctx: DistContext,
                autocast: Callable[[], AbstractContextManager], num_classes: int) -> ViewScores:
    """Softmax probabilities of every view this process sees (no gathering); a signal stops it at the
    next batch with ``Interrupted``."""
    model.eval()
    parts = []
    failures: list[tuple[int, str, str]] = []
    stops = _StopPoints(loader, ctx)
    with signals_deferred(raise_at_end=not ctx.distributed):
        for number, batch in enumerate(_started(loader)):
            failures.extend(_batch_failures(batch))
            if batch["clip"] is not None:
                with autocast():
                    logits = model(batch["clip"].to(ctx.device, non_blocking=True))
                parts.append(ViewScores(batch["video_index"].numpy().astype(np.int64),
                                        batch["view_index"].numpy().astype(np.int64),
                                        F.softmax(logits.float(), dim=1).cpu().numpy()))
            stops.after_batch(number)
    merged = ViewScores.concatenate(parts, num_classes)
    merged.failures = sorted(set(failures))
    return merged


def gather_views(local: ViewScores, num_classes: int) -> ViewScores:
    """Every process's views in one ``ViewScores``, duplicates (sampler padding) removed."""
    return ViewScores.concatenate(all_gather_objects(local), num_classes)


def score_videos(model: nn.Module, batches: Iterable[dict], ctx: DistContext,
                 autocast: Callable[[], AbstractContextManager], num_videos: int, views_per_video: int,
                 num_classes: int) -> VideoScores:
    """The one way videos are scored: the views of ``batches`` (this process's share, in the format of
    ``collate_views``) through ``score_views``, every process's views gathered, averaged per video.
    The multi-view test, prediction, the demo and sliding windows (a window is a video) all use it."""
    local = score_views(model, batches, ctx, autocast, num_classes)
    return average_views(gather_views(local, num_classes), num_videos, views_per_video)


def check_scored_share(scores: VideoScores, max_failed_share: float, what: str, where: str, fix: str) -> None:
    """``CheckFailedError`` when no video was scored, or more than ``max_failed_share`` of them were not
    (TEST.MAX_FAILED_SHARE): results over the rest would look complete but are not. Call it once the
    results are written; ``what`` names the videos ("test videos"), ``where`` the file listing the
    failures, ``fix`` what to check."""
    total, scored = len(scores.scored), int(scores.scored.sum())
    failed = total - scored
    if scored and failed <= max_failed_share * total:
        return
    first = next(iter(sorted(scores.failed.items())), (0, ""))[1]
    raise CheckFailedError(
        f"only {scored} of {total} {what} were scored: {failed} ({100 * failed / max(total, 1):.0f}%) failed, more "
        f"than TEST.MAX_FAILED_SHARE {max_failed_share:g} allows, so the results cover only the rest; see {where} "
        f"(first: {first}); {fix}, or raise TEST.MAX_FAILED_SHARE")


@torch.no_grad()
def validate_clips(model: nn.Module, loader: DataLoader, ctx: DistContext,
                   autocast: Callable[[], AbstractContextManager]) -> dict[str, Any]:
    """Clip-level top-1/top-5 (percent) and cross-entropy on one clip per validation video.

    ``clips`` counts the videos scored, ``videos`` those listed; ``failures`` lists ``(path, reason)``
    of the videos that could not be decoded (their replacement clips duplicate another video and are
    scored once, as that video). A signal stops it at the next batch with ``Interrupted``.
    """
    model.eval()
    index, hit1, hit5, losses = [], [], [], []
    failures: list[tuple[str, str]] = []
    stops = _StopPoints(loader, ctx)
    with signals_deferred(raise_at_end=not ctx.distributed):
        for number, batch in enumerate(_started(loader)):
            failures += [(str(path), str(reason)) for path, reason in batch["failures"]]
            labels = batch["label"].to(ctx.device)
            with autocast():
                logits = model(batch["clip"].to(ctx.device, non_blocking=True)).float()
            top = logits.topk(min(TOP_K, logits.shape[1]), dim=1).indices
            index.append(batch["video_index"].numpy())
            hit1.append((top[:, 0] == labels).cpu().numpy())
            hit5.append((top == labels[:, None]).any(dim=1).cpu().numpy())
            losses.append(F.cross_entropy(logits, labels, reduction="none").cpu().numpy())
            stops.after_batch(number)
        local = [np.concatenate(x) if x else np.zeros(0) for x in (index, hit1, hit5, losses)]
        everyone = all_gather_objects((local, failures))
    gathered = [np.concatenate(parts) for parts in zip(*(arrays for arrays, _ in everyone), strict=True)]
    _, first = np.unique(gathered[0], return_index=True)
    hits1, hits5, loss = (values[first] for values in gathered[1:])
    return {"clip_top1": float(100.0 * hits1.mean()), "clip_top5": float(100.0 * hits5.mean()),
            "loss": float(loss.mean()), "clips": int(len(first)), "videos": len(cast(Sized, loader.dataset)),
            "failed_videos": len({path for _, failed in everyone for path, _ in failed}),
            "failures": sorted({failure for _, failed in everyone for failure in failed})}


# ---------------------------------------------------------------------------- outputs

@dataclass(frozen=True)
class ListedVideos:
    """What the test knows about each listed video: path and label, in video-index order."""

    paths: list[str]
    labels: np.ndarray
    class_names: list[str]


def write_test_outputs(output_dir: Path, videos: ListedVideos, scores: VideoScores,
                       metrics: dict) -> None:
    """predictions.csv (scored videos), failed_videos.csv, probabilities.npy (M x K, NaN rows for
    unscored videos) and metrics.json in ``output_dir``; written whole even when a signal arrives
    meanwhile (the caller meets it at its next check)."""
    with signals_deferred(raise_at_end=False):
        output_dir.mkdir(parents=True, exist_ok=True)
        names = videos.class_names
        k = min(TOP_K, len(names))
        with (output_dir / PREDICTIONS_FILE).open("w", newline="", encoding="utf-8") as stream:
            writer = csv.writer(stream)
            writer.writerow(["video_index", "path", "label", "label_name", "correct"]
                            + [f"{kind}_{r}" for r in range(1, k + 1) for kind in ("pred", "prob")])
            for video in np.flatnonzero(scores.scored):
                top = top_classes(scores.probs[video], names, k)
                label = int(videos.labels[video])
                row = [int(video), videos.paths[video], label, names[label], int(top[0][0] == names[label])]
                writer.writerow(row + [cell for name, prob in top for cell in (name, f"{prob:.6f}")])
        with (output_dir / FAILED_FILE).open("w", newline="", encoding="utf-8") as stream:
            writer = csv.writer(stream)
            writer.writerow(["video_index", "path", "reason"])
            for index, reason in sorted(scores.failed.items()):
                writer.writerow([index, videos.paths[index], reason])
        np.save(output_dir / PROBABILITIES_FILE, scores.probs)
        (output_dir / METRICS_FILE).write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")


def format_metrics_table(metrics: dict) -> str:
    """A small text table of the headline video-level numbers."""
    rows = [("video top-1 (%)", f"{metrics['top1']:.2f}"), ("video top-5 (%)", f"{metrics['top5']:.2f}"),
            ("mean class acc (%)", f"{metrics['mean_class_acc']:.2f}"),
            ("videos scored", f"{metrics['videos_scored']} of {metrics['videos_total']}")]
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"  {name:<{width}}  {value}" for name, value in rows)


__all__ = ["AVERAGING", "FAILED_FILE", "METRICS_FILE", "PREDICTIONS_FILE", "PROBABILITIES_FILE", "ListedVideos",
           "VideoScores", "ViewScores", "average_views", "check_scored_share", "format_metrics_table", "gather_views",
           "mean_class_accuracy", "pair_accuracy", "score_videos", "score_views", "top_classes", "topk_accuracy",
           "validate_clips", "video_metrics", "write_test_outputs"]
