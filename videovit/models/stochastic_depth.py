"""Stochastic depth for clips: the one drop path and the one schedule of every family (docs/models.md,
"Shared pieces").

Frames of a clip (and the sites or windows cut from them) travel as adjacent rows of dim 0, so a
residual is kept or dropped for a whole clip at once: one draw per clip, never per frame or token.
"""
from __future__ import annotations

import torch


def drop_path(x: torch.Tensor, rate: float, training: bool, clips: int | None = None) -> torch.Tensor:
    """Drop the residual ``x`` of whole clips with probability ``rate`` (training only), scaling the kept
    ones by ``1 / (1 - rate)``.

    Dim 0 of ``x`` holds ``clips`` groups of adjacent rows, one group per clip (None: one row per clip).
    """
    if rate == 0.0 or not training:
        return x
    groups = x.shape[0] if clips is None else clips
    if x.shape[0] % groups:
        raise ValueError(f"{x.shape[0]} rows cannot be split into {groups} clips")
    keep = 1.0 - rate
    mask = x.new_empty((groups,) + (1,) * x.dim()).bernoulli_(keep)
    return (x.reshape(groups, -1, *x.shape[1:]) * mask / keep).reshape(x.shape)


def drop_path_rates(last_rate: float, num_blocks: int) -> list[float]:
    """The per-block rates: linear from 0 at the first block to ``last_rate`` at the last one."""
    if num_blocks < 1:
        raise ValueError(f"num_blocks must be >= 1, got {num_blocks}")
    if num_blocks == 1:
        return [0.0]
    return [last_rate * i / (num_blocks - 1) for i in range(num_blocks)]
