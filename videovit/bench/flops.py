"""Parameter and FLOP counting with fvcore (one multiply-add = one flop), as in the papers' tables.

fvcore has no handle for ``aten::scaled_dot_product_attention``; ``sdpa_flop_jit`` counts its two
matrix products so attention through SDPA costs what the explicit ``q @ k^T`` and ``attn @ v`` of
the reference implementations cost. LayerNorm (also the 2-D one, which runs ``aten::layer_norm``)
is counted the fvcore way and can be left out, since the video papers quote FLOPs without it.
"""
from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from math import prod
from typing import Any

import torch
from torch import nn
from yacs.config import CfgNode

with warnings.catch_warnings():
    warnings.simplefilter("ignore", FutureWarning)  # fvcore scripts a loss function on import
    from fvcore.nn import FlopCountAnalysis, parameter_count
    from fvcore.nn.jit_handles import get_shape

SDPA_OP = "aten::scaled_dot_product_attention"
LAYERNORM_KEY = "layer_norm"  # fvcore's operator name for aten::layer_norm


def sdpa_flop_jit(inputs: list[Any], outputs: list[Any]) -> int:
    """fvcore handle for SDPA: ``q @ k^T`` plus ``attn @ v`` multiply-adds.

    q ``(..., L, E)``, k ``(..., S, E)``, v ``(..., S, Ev)`` (one k/v head per query head) cost
    ``prod(...) * L * S * (E + Ev)``; scaling, mask and softmax are not counted, as fvcore does not
    count them in explicit attention either.
    """
    query, key, value = (get_shape(tensor) for tensor in inputs[:3])
    return prod(query[:-2]) * query[-2] * key[-2] * (query[-1] + value[-1])


def count_parameters(model: nn.Module) -> int:
    """Number of parameters, tensors shared between modules counted once."""
    return parameter_count(model)[""]


@dataclass(frozen=True)
class FlopCount:
    """FLOPs of one forward pass per module name ("" = whole model), and the LayerNorm part of each."""

    by_module: dict[str, int]
    layernorm_by_module: dict[str, int]

    def module(self, name: str = "", with_layernorm: bool = True) -> int:
        """FLOPs of module ``name`` (and its children)."""
        layernorm = 0 if with_layernorm else self.layernorm_by_module.get(name, 0)
        return self.by_module.get(name, 0) - layernorm

    def total(self, with_layernorm: bool = True) -> int:
        """FLOPs of the whole model."""
        return self.module("", with_layernorm)


@contextlib.contextmanager
def _inference_mode(model: nn.Module) -> Iterator[None]:
    """Eval mode without autograd for the duration, then the previous train/eval mode again."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        model.train(was_training)


def measure_flops(model: nn.Module, inputs: torch.Tensor | Sequence[torch.Tensor]) -> FlopCount:
    """Trace one eval-mode forward of ``model(*inputs)`` and count its FLOPs per module."""
    inputs = (inputs,) if isinstance(inputs, torch.Tensor) else tuple(inputs)
    with _inference_mode(model):
        analysis = FlopCountAnalysis(model, inputs).set_op_handle(SDPA_OP, sdpa_flop_jit)
        analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
        per_operator = analysis.by_module_and_operator()
    return FlopCount(
        by_module={name: sum(ops.values()) for name, ops in per_operator.items()},
        layernorm_by_module={name: ops.get(LAYERNORM_KEY, 0) for name, ops in per_operator.items()},
    )


def count_flops(model: nn.Module, inputs: torch.Tensor | Sequence[torch.Tensor],
                with_layernorm: bool = True) -> int:
    """Total fvcore FLOPs of one eval-mode forward of ``model(*inputs)``."""
    return measure_flops(model, inputs).total(with_layernorm)


def per_module_table(model: nn.Module, flops: FlopCount, max_depth: int) -> str:
    """Text table of params and GFLOPs (with / without LayerNorm) of the modules to ``max_depth``."""
    params = parameter_count(model)
    rows = [("module", "params", "GFLOPs", "GFLOPs w/o LN")]
    for name, _ in model.named_modules():
        depth = name.count(".") + 1 if name else 0
        if depth > max_depth:
            continue
        rows.append(("  " * depth + (name or "model"), f"{params.get(name, 0):,}",
                     f"{flops.module(name) / 1e9:.3f}", f"{flops.module(name, False) / 1e9:.3f}"))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    return "\n".join(row[0].ljust(widths[0]) + "".join(cell.rjust(w + 2) for cell, w in
                                                        zip(row[1:], widths[1:], strict=True)) for row in rows)


def model_summary(cfg: CfgNode, per_module_depth: int | None = None) -> str:
    """Parameters and GFLOPs of the configured model on one test clip, as printable text.

    The clip is ``(1, 3, DATA.NUM_FRAMES, DATA.TEST_CROP_SIZE, DATA.TEST_CROP_SIZE)``; with
    ``per_module_depth`` a per-module table down to that depth follows.
    """
    from videovit.models import build_model

    model = build_model(cfg)
    shape = (1, 3, cfg.DATA.NUM_FRAMES, cfg.DATA.TEST_CROP_SIZE, cfg.DATA.TEST_CROP_SIZE)
    flops = measure_flops(model, torch.randn(shape))
    params = count_parameters(model)
    lines = [
        f"model: {cfg.MODEL.NAME}, {cfg.MODEL.NUM_CLASSES} classes, input {shape}",
        f"params: {params:,} ({params / 1e6:.2f} M)",
        f"GFLOPs with LayerNorm: {flops.total() / 1e9:.2f}",
        f"GFLOPs without LayerNorm: {flops.total(with_layernorm=False) / 1e9:.2f}",
    ]
    if per_module_depth is not None:
        lines += ["", per_module_table(model, flops, per_module_depth)]
    return "\n".join(lines)
