"""The one weight initialisation of every family (docs/models.md, "Shared pieces")."""
from __future__ import annotations

from collections.abc import Iterable

from torch import nn

from videovit.models.temporal import TemporalBlock

INIT_STD = 0.02


def init_weights(model: nn.Module, tables: Iterable[nn.Parameter] = ()) -> None:
    """ViT-style init: ``tables`` (position tables, class tokens) and every Linear trunc_normal(0.02) with
    zero biases, LayerNorms at one and zero; the output ``fc`` of every ``TemporalBlock`` zero, so that an
    inflated image model keeps its function. Other modules (convolutions, BatchNorm) keep their own init.
    """
    for table in tables:
        nn.init.trunc_normal_(table, std=INIT_STD)
    zero = {block.fc for block in model.modules() if isinstance(block, TemporalBlock)}
    for module in model.modules():
        if isinstance(module, nn.Linear):
            if module in zero:
                nn.init.zeros_(module.weight)
            else:
                nn.init.trunc_normal_(module.weight, std=INIT_STD)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.LayerNorm):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
