"""Activation (gradient) checkpointing: the one rule of every family (docs/models.md, "Shared pieces").

A model's ``grad_checkpointing`` attribute (``MODEL.ACT_CHECKPOINT``, ``set_grad_checkpointing``) makes each
block recompute its activations in the backward pass instead of keeping them. It applies whenever autograd
records, in training or eval mode alike (memory is spent on activations whenever a backward pass follows);
under ``torch.no_grad()`` a block simply runs.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch.utils.checkpoint import checkpoint


def run_block(block: Callable[..., Any], *inputs: Any, recompute: bool) -> Any:
    """``block(*inputs)``, recomputed in the backward pass when ``recompute`` and autograd records."""
    if recompute and torch.is_grad_enabled():
        return checkpoint(block, *inputs, use_reentrant=False)
    return block(*inputs)
