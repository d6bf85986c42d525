"""Learning-rate schedule: linear warm-up, then cosine decay to SOLVER.MIN_LR, updated every step.

This is timm's ``CosineLRScheduler`` counted in optimiser steps (``step_update(global_step)``), with
the warm-up as a prefix so the cosine spans the remaining steps. Group ``lr_scale`` factors (layer
decay) are applied by timm on every update. All SOLVER rates follow the batch scaling.
"""
from __future__ import annotations

import math

import torch
from timm.scheduler import CosineLRScheduler
from yacs.config import CfgNode

from videovit.engine.optim import lr_scale_factor


def build_scheduler(cfg: CfgNode, optimizer: torch.optim.Optimizer, steps_per_epoch: int,
                    world_size: int) -> CosineLRScheduler:
    """Per-step warm-up + cosine schedule over TRAIN.EPOCHS x ``steps_per_epoch`` optimiser steps."""
    if steps_per_epoch < 1:
        raise ValueError("an epoch has no optimiser step: the training list is smaller than "
                         "TRAIN.BATCH_SIZE x processes x TRAIN.ACCUM_STEPS; add videos or lower them")
    solver, scale = cfg.SOLVER, lr_scale_factor(cfg, world_size)
    total_steps = cfg.TRAIN.EPOCHS * steps_per_epoch
    warmup_steps = min(math.ceil(solver.WARMUP_EPOCHS * steps_per_epoch), total_steps - 1)
    return CosineLRScheduler(
        optimizer,
        t_initial=max(total_steps - warmup_steps, 1),
        lr_min=solver.MIN_LR * scale,
        warmup_t=warmup_steps,
        warmup_lr_init=solver.WARMUP_START_LR * scale,
        warmup_prefix=True,
        t_in_epochs=False,
    )


def current_lr(optimizer: torch.optim.Optimizer) -> float:
    """The largest learning rate over the parameter groups (the head's under layer decay)."""
    return max(group["lr"] for group in optimizer.param_groups)


__all__ = ["build_scheduler", "current_lr"]
