"""The optimiser: timm's ``create_optimizer_v2`` over this project's parameter groups.

Weight decay is not applied to norms and biases (every 1-D tensor) nor to the parameters the model
names in ``no_weight_decay()`` (embeddings, position tables). With SOLVER.LAYER_DECAY < 1 a parameter
at depth ``model.layer_id(name)`` of ``model.num_layers`` gets the learning-rate factor
``decay ** (num_layers - 1 - layer)``: the head trains at the full rate, the stem at the smallest.
Both come from the model-family contract (docs/adding-a-backbone.md). On CUDA, Adam and AdamW run
PyTorch's fused kernel (one launch for every parameter; docs/performance.md).
"""
from __future__ import annotations

from typing import Any

import torch
from timm.optim import create_optimizer_v2
from yacs.config import CfgNode

from videovit.models import VideoBackbone


def global_batch_size(cfg: CfgNode, world_size: int) -> int:
    """Clips per optimiser step over all processes: batch x processes x accumulation steps."""
    return cfg.TRAIN.BATCH_SIZE * world_size * cfg.TRAIN.ACCUM_STEPS


def lr_scale_factor(cfg: CfgNode, world_size: int) -> float:
    """Factor applied to every SOLVER learning rate: global batch / SOLVER.BASE_BATCH_SIZE if linear."""
    if cfg.SOLVER.LR_SCALING == "none":
        return 1.0
    return global_batch_size(cfg, world_size) / cfg.SOLVER.BASE_BATCH_SIZE


def skips_weight_decay(name: str, param: torch.Tensor, no_decay: set[str]) -> bool:
    """True for norms and biases (1-D) and for the parameters the model names in ``no_weight_decay()``."""
    return param.ndim <= 1 or name.endswith(".bias") or name in no_decay


def layer_ids(model: VideoBackbone) -> dict[str, int]:
    """Depth of every parameter for layer-wise decay, from the model's ``layer_id``."""
    return {name: model.layer_id(name) for name, _ in model.named_parameters()}


def parameter_groups(model: VideoBackbone, weight_decay: float, layer_decay: float = 1.0) -> list[dict[str, Any]]:
    """Optimiser groups keyed by (layer, decay or not), each with ``weight_decay`` and ``lr_scale``."""
    no_decay = model.no_weight_decay()
    last = model.num_layers - 1
    groups: dict[tuple[int, bool], dict[str, Any]] = {}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        layer = model.layer_id(name) if layer_decay < 1.0 else last
        decays = not skips_weight_decay(name, param, no_decay)
        group = groups.setdefault((layer, decays), {
            "params": [], "weight_decay": weight_decay if decays else 0.0,
            "lr_scale": layer_decay ** (last - layer)})
        group["params"].append(param)
    return [groups[key] for key in sorted(groups)]


FUSED_OPTIMIZERS = ("adam", "adamw")  # timm names of torch.optim classes with a fused implementation


def uses_fused_kernel(optimizer: str, device: torch.device) -> bool:
    """True where the fused implementation is used: Adam and AdamW on CUDA."""
    return device.type == "cuda" and optimizer.lower() in FUSED_OPTIMIZERS


def build_optimizer(cfg: CfgNode, model: VideoBackbone, world_size: int,
                    fused: bool | None = None) -> torch.optim.Optimizer:
    """SOLVER.OPTIMIZER over ``parameter_groups`` at the batch-scaled SOLVER.BASE_LR.

    ``fused`` None: the fused kernel where ``uses_fused_kernel`` says so for the model's device."""
    solver = cfg.SOLVER
    groups = parameter_groups(model, solver.WEIGHT_DECAY, solver.LAYER_DECAY)
    lr = solver.BASE_LR * lr_scale_factor(cfg, world_size)
    if fused is None:
        fused = uses_fused_kernel(solver.OPTIMIZER, next(model.parameters()).device)
    try:
        extra: dict[str, Any] = {"fused": True} if fused else {}
        return create_optimizer_v2(groups, opt=solver.OPTIMIZER, lr=lr, weight_decay=solver.WEIGHT_DECAY, **extra)
    except ValueError as err:
        raise ValueError(f"SOLVER.OPTIMIZER {solver.OPTIMIZER!r} is not usable: {err}; pick one "
                         f"of timm.optim.list_optimizers(), e.g. adamw or sgd") from err


__all__ = ["FUSED_OPTIMIZERS", "build_optimizer", "global_batch_size", "layer_ids", "lr_scale_factor",
           "parameter_groups", "skips_weight_decay", "uses_fused_kernel"]
