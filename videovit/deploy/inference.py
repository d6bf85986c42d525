"""Classify one video file with a trained videovit checkpoint, by the config's test protocol.

``from_pretrained`` goes through the project's one checkpoint-to-model path
(``videovit.checkpoint.load_trained_model``): the config saved in the checkpoint (or config files
given instead), the same EMA policy and class names as the test. ``predict_video`` scores the video
the way the multi-view test does: TEST.NUM_TEMPORAL_VIEWS temporal views sampled with DATA.SAMPLING
times TEST.NUM_SPATIAL_CROPS spatial crops, and the views' softmax probabilities averaged.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from yacs.config import CfgNode

from videovit.checkpoint import load_trained_model
from videovit.config import load_config
from videovit.data.datasets import ClipSampling, load_clip_frames
from videovit.data.transforms import build_view_transform
from videovit.errors import CheckpointError
from videovit.runtime.distributed import resolve_device
from videovit.runtime.precision import autocast_factory

TOP_K = 5


@dataclass
class InferenceModel:
    """A model ready to classify videos: in eval mode on its device, with its config and classes."""

    model: nn.Module
    cfg: CfgNode
    class_names: list[str]
    weights: str = "model"  # or "model_ema": which weights of the checkpoint


def from_pretrained(checkpoint: str | Path, cfg_files: Sequence[str | Path] = (),
                       overrides: Sequence[str] = (),
                       log: Callable[[str], None] | None = None) -> InferenceModel:
    """Model, config and class names of a videovit training checkpoint or an exported folder, ready for
    ``predict_video`` (``videovit.from_pretrained``).

    The config is the one saved with the model unless ``cfg_files`` are given; ``overrides``
    (``KEY VALUE`` pairs) apply on top either way.
    """
    cfg = load_config(cfg_files, overrides) if cfg_files else None
    trained = load_trained_model(checkpoint, cfg, overrides, log=log)
    if not trained.class_names:
        raise CheckpointError(f"{checkpoint} does not record its class names, so predictions could not be named; "
                              "use a checkpoint_*.pyth file written by tools/run_net.py")
    trained.model.to(resolve_device(trained.cfg.DEVICE)).eval()
    return InferenceModel(trained.model, trained.cfg, trained.class_names, trained.weights)


def video_views(cfg: CfgNode, path: str | Path) -> torch.Tensor:
    """Every test view of the video at ``path``: ``(temporal views x crops, C, T, H, W)``, view-major."""
    data = cfg.DATA
    sampling = ClipSampling(data.SAMPLING, data.NUM_FRAMES, data.SAMPLING_RATE, data.TARGET_FPS)
    num_views, num_crops = cfg.TEST.NUM_TEMPORAL_VIEWS, cfg.TEST.NUM_SPATIAL_CROPS
    transform = build_view_transform(cfg, num_crops)
    views: list[torch.Tensor] = []
    for view in range(num_views):
        frames = load_clip_frames(path, sampling, train=False, view=view, num_views=num_views,
                                  backend=data.DECODING_BACKEND)
        views.extend(transform(frames, crop) for crop in range(num_crops))
    return torch.stack(views)


@torch.no_grad()
def views_probabilities(model: nn.Module, cfg: CfgNode, views: torch.Tensor) -> torch.Tensor:
    """Softmax probabilities of ``views`` ``(V, C, T, H, W)``, TEST.BATCH_SIZE at a time, averaged: ``(K,)``."""
    device = next(model.parameters()).device
    probs = []
    for batch in views.split(cfg.TEST.BATCH_SIZE):
        with autocast_factory(cfg, device)():
            logits = model(batch.to(device))
        probs.append(F.softmax(logits.float(), dim=1))
    return torch.cat(probs).mean(dim=0).cpu()


def video_probabilities(model: nn.Module, cfg: CfgNode, path: str | Path) -> torch.Tensor:
    """Class probabilities ``(K,)`` of the video: softmax of each test view, averaged over the views."""
    model.eval()
    return views_probabilities(model, cfg, video_views(cfg, path))


def predict_video(model: nn.Module, cfg: CfgNode, path: str | Path, class_names: Sequence[str],
                  top_k: int = TOP_K) -> list[tuple[str, float]]:
    """The ``top_k`` most probable classes of the video as ``(name, probability)``, best first."""
    probs = video_probabilities(model, cfg, path)
    if probs.numel() != len(class_names):
        raise ValueError(f"the model scores {probs.numel()} classes but {len(class_names)} class names were "
                         "given; pass the class names the model was trained with")
    top = torch.topk(probs, min(top_k, probs.numel()))
    return [(class_names[i], float(p)) for p, i in zip(top.values.tolist(), top.indices.tolist(), strict=True)]


__all__ = ["InferenceModel", "views_probabilities", "from_pretrained", "predict_video", "video_views",
           "video_probabilities"]
