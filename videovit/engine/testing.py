"""The test phase of a run: choose the weights, score every view, average per video, write results, and
fail (after writing them) when more than TEST.MAX_FAILED_SHARE of the videos could not be scored."""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from torch import nn
from yacs.config import CfgNode

from videovit.checkpoint import TrainedModel, load_trained_model
from videovit.data.datasets import VideoDataset
from videovit.engine.checkpoint_files import CheckpointManager
from videovit.engine.loaders import eval_loader
from videovit.engine.run_log import StatsWriter
from videovit.errors import CheckpointError
from videovit.evaluation.views import (
    AVERAGING,
    FAILED_FILE,
    ListedVideos,
    check_scored_share,
    format_metrics_table,
    score_videos,
    video_metrics,
    write_test_outputs,
)
from videovit.runtime.compile import compile_if_configured
from videovit.runtime.distributed import DistContext, barrier
from videovit.runtime.precision import autocast_factory


def test_weights_path(cfg: CfgNode, log: logging.Logger) -> str:
    """TEST.CHECKPOINT_FILE_PATH, else the newest loadable checkpoint of OUTPUT_DIR."""
    if cfg.TEST.CHECKPOINT_FILE_PATH:
        return cfg.TEST.CHECKPOINT_FILE_PATH
    manager = CheckpointManager(cfg.OUTPUT_DIR, cfg.TRAIN.CHECKPOINT_PERIOD, cfg.TRAIN.CHECKPOINT_KEEP)
    found = manager.newest_loadable(log.warning)
    if found is None:
        raise CheckpointError(f"nothing to test: TRAIN.ENABLE is False, TEST.CHECKPOINT_FILE_PATH is empty "
                              f"and {manager.folder} holds no checkpoint; set TEST.CHECKPOINT_FILE_PATH")
    return str(found[0])


def load_test_model(cfg: CfgNode, log: logging.Logger, class_names: list[str] | None = None) -> TrainedModel:
    """A test-only run's model: the weights ``test_weights_path`` names, through the one
    checkpoint-to-model path (``load_trained_model``, which checks them against ``class_names``). Its
    ``cfg`` is the run's config completed from the checkpoint's (model, classes and views unless set: the
    rule of docs/checkpoints.md, "Trained checkpoints"); build the test data from it."""
    path = test_weights_path(cfg, log)
    return load_trained_model(path, cfg, trust=cfg.TRAIN.TRUST_CHECKPOINT, log=log.info, class_names=class_names)


def test(cfg: CfgNode, model: nn.Module, dataset: VideoDataset, ctx: DistContext, stats: StatsWriter,
         log: logging.Logger, global_step: int = 0) -> dict:
    """Multi-view test of ``model`` on the test split ``dataset`` (``load_splits(cfg)["test"]``); returns
    metrics."""
    model.to(ctx.device)
    compile_if_configured(model, cfg)
    num_classes = len(dataset.class_names)
    log.info(f"multi-view test on {dataset.num_videos} videos of {dataset.source}: "
             f"{cfg.TEST.NUM_TEMPORAL_VIEWS} temporal x {cfg.TEST.NUM_SPATIAL_CROPS} spatial views each; "
             f"{AVERAGING}")
    scores = score_videos(model, eval_loader(cfg, dataset, ctx), ctx, autocast_factory(cfg, ctx.device),
                          dataset.num_videos, dataset.views_per_video, num_classes)
    videos = ListedVideos([dataset.video_path(i) for i in range(dataset.num_videos)],
                        _labels(dataset), dataset.class_names)
    metrics = {**video_metrics(scores, videos.labels),
               "split": cfg.TEST.SPLIT, "list_file": dataset.source, "list_hash": dataset.list_hash(),
               "views_per_video": dataset.views_per_video, "averaging": AVERAGING,
               "failed_videos": [{"path": videos.paths[v], "reason": r} for v, r in sorted(scores.failed.items())]}
    if ctx.is_main:
        write_test_outputs(Path(cfg.OUTPUT_DIR), videos, scores, metrics)
        stats.write("test", {k: metrics[k] for k in ("top1", "top5", "mean_class_acc", "videos_scored",
                                                      "videos_total")}, global_step)
        for video, reason in sorted(scores.failed.items()):
            log.warning(f"not scored: {videos.paths[video]}: {reason}")
        log.info(f"video-level test ({AVERAGING}): scored {metrics['videos_scored']} of "
                 f"{metrics['videos_total']} videos\n{format_metrics_table(metrics)}\n"
                 f"results in {cfg.OUTPUT_DIR}")
    barrier()
    check_scored_share(scores, cfg.TEST.MAX_FAILED_SHARE, "test videos", str(Path(cfg.OUTPUT_DIR) / FAILED_FILE),
                       "check DATA.PATH_PREFIX and the videos (tools/check_videos.py)")
    return metrics


def _labels(dataset: VideoDataset) -> np.ndarray:
    """Class index of every listed video, in video-index order."""
    return np.array([entry.label for entry in dataset.entries], dtype=np.int64)


__all__ = ["load_test_model", "test", "test_weights_path"]
