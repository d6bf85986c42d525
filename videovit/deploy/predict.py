"""Predict the classes of unlabelled videos (e.g. the official K400 test set) with the test protocol.

The videos go through the multi-view test's own pieces: the test dataset (every video expanded into
TEST.NUM_TEMPORAL_VIEWS x TEST.NUM_SPATIAL_CROPS views), the sharded evaluation loader, view scoring,
gathering across the processes of a torchrun job with the duplicates removed, and the per-video
softmax average. A video with a view that fails to decode is listed as failed, never replaced:
"predicted N of M". See docs/deployment.md.
"""
from __future__ import annotations

import csv
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from torch import nn
from yacs.config import CfgNode

from videovit.data.datasets import build_dataset
from videovit.data.lists import ListEntry, read_text, write_classes, write_list
from videovit.engine.loaders import eval_loader
from videovit.errors import InputPathError, UsageError
from videovit.evaluation.views import VideoScores, average_views, gather_views, score_views
from videovit.runtime.distributed import DistContext
from videovit.runtime.precision import autocast_factory

VIDEO_SUFFIXES = (".mp4", ".avi", ".mkv", ".webm", ".mov", ".m4v", ".mpg", ".mpeg")


@dataclass(frozen=True)
class Predictions:
    """Per-video averaged probabilities of ``paths`` (NaN rows and a reason for the failed ones)."""

    paths: list[str]
    scores: VideoScores

    @property
    def num_predicted(self) -> int:
        """Videos whose every view was scored."""
        return int(self.scores.scored.sum())


def videos_in_list(list_file: str | Path, prefix: str | Path = "") -> list[str]:
    """One video path per non-blank line of ``list_file``, joined to ``prefix`` when relative."""
    list_file = Path(list_file)
    if not list_file.is_file():
        raise InputPathError(f"video list {list_file} does not exist")
    paths = [str(Path(prefix) / line.strip()) for line in read_text(list_file).splitlines() if line.strip()]
    if not paths:
        raise UsageError(f"{list_file} lists no video; write one video path per line")
    return paths


def videos_in_folder(folder: str | Path) -> list[str]:
    """Every video file (by extension, see VIDEO_SUFFIXES) under ``folder``, recursively, sorted."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputPathError(f"video folder {folder} does not exist")
    paths = sorted(str(p) for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES)
    if not paths:
        raise UsageError(f"{folder} holds no video file ({', '.join(VIDEO_SUFFIXES)})")
    return paths


def predict_videos(model: nn.Module, cfg: CfgNode, paths: Sequence[str], class_names: Sequence[str],
                   ctx: DistContext) -> Predictions:
    """Score ``paths`` by the test protocol, this process's shard of them; every process gets all results."""
    with tempfile.TemporaryDirectory(prefix="videovit_predict_") as folder:
        # The test dataset reads a list with labels and a classes file: the labels (0) are never used.
        separator = cfg.DATA.PATH_LABEL_SEPARATOR
        write_list(Path(folder) / "test.csv", [ListEntry(str(Path(p).absolute()), 0) for p in paths], separator)
        write_classes(Path(folder) / "classes.txt", list(class_names))
        list_cfg = cfg.clone()
        list_cfg.defrost()
        list_cfg.DATA.PATH_TO_DATA_DIR, list_cfg.DATA.PATH_PREFIX, list_cfg.TEST.SPLIT = folder, "", "test"
        list_cfg.freeze()
        dataset = build_dataset(list_cfg, "test")
    num_classes = len(class_names)
    model.to(ctx.device).eval()
    local = score_views(model, eval_loader(cfg, dataset, ctx), ctx, autocast_factory(cfg, ctx.device), num_classes)
    scores = average_views(gather_views(local, num_classes), dataset.num_videos, dataset.views_per_video)
    return Predictions(list(paths), scores)


def write_predictions(out: str | Path, predictions: Predictions, class_names: Sequence[str],
                      top_k: int = 5) -> Path:
    """``out``: one row per predicted video (path, top-k classes and probabilities); the failed videos
    go to ``<out stem>_failed.csv`` (path, reason), which is returned."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    k = min(top_k, len(class_names))
    scores = predictions.scores
    with out.open("w", newline="", encoding="utf-8") as stream:
        writer = csv.writer(stream)
        writer.writerow(["path"] + [f"{kind}_{r}" for r in range(1, k + 1) for kind in ("pred", "prob")])
        for video in np.flatnonzero(scores.scored):
            probs = scores.probs[video]
            row = [predictions.paths[video]]
            for cls in np.argsort(-probs, kind="stable")[:k]:
                row += [class_names[cls], f"{probs[cls]:.6f}"]
            writer.writerow(row)
    failed = out.with_name(f"{out.stem}_failed.csv")
    with failed.open("w", newline="", encoding="utf-8") as stream:
        writer = csv.writer(stream)
        writer.writerow(["path", "reason"])
        for failed_video, reason in sorted(scores.failed.items()):
            writer.writerow([predictions.paths[failed_video], reason])
    return failed


__all__ = ["Predictions", "VIDEO_SUFFIXES", "predict_videos", "videos_in_folder", "videos_in_list",
           "write_predictions"]
