"""The optimiser: timm's ``create_optimizer_v2`` over this project's parameter groups.

Weight decay is not applied to norms, biases (every 1-D tensor), the embeddings the model lists in
``no_weight_decay()``, and, whatever the model says, to position/time embeddings, class tokens and
relative-position tables (``NO_DECAY_PATTERNS``). With SOLVER.LAYER_DECAY < 1, block ``i`` of ``n``
gets the learning-rate factor ``decay ** (n + 1 - i)``: parameters before the first block (stems,
embeddings) count as layer 0, those after the last block (final norm, head) as layer n + 1.
"""
from __future__ import annotations

import fnmatch
from typing import Any

import torch
from timm.optim import create_optimizer_v2
from torch import nn
from yacs.config import CfgNode

NO_DECAY_PATTERNS = ("*pos_embed*", "*time_embed*", "*cls_token*", "*relative_position_bias_table*",
                     "*rel_pos*")


def global_batch_size(cfg: CfgNode, world_size: int) -> int:
    """Clips per optimiser step over all processes: batch x processes x accumulation steps."""
    return cfg.TRAIN.BATCH_SIZE * world_size * cfg.TRAIN.ACCUM_STEPS


def lr_scale_factor(cfg: CfgNode, world_size: int) -> float:
    """Factor applied to every SOLVER learning rate: global batch / SOLVER.BASE_BATCH_SIZE if linear."""
    if cfg.SOLVER.LR_SCALING == "none":
        return 1.0
    return global_batch_size(cfg, world_size) / cfg.SOLVER.BASE_BATCH_SIZE


def no_weight_decay_patterns(model: nn.Module) -> set[str]:
    """Name patterns (fnmatch) of the parameters kept free of weight decay besides 1-D ones."""
    declared = model.no_weight_decay() if hasattr(model, "no_weight_decay") else set()
    return set(declared) | set(NO_DECAY_PATTERNS)


def skips_weight_decay(name: str, param: torch.Tensor, patterns: set[str]) -> bool:
    """True for norms and biases (1-D) and for parameters matching ``patterns``."""
    return param.ndim <= 1 or name.endswith(".bias") or any(
        fnmatch.fnmatch(name, pattern) for pattern in patterns)


def is_block(module: nn.Module) -> bool:
    """A transformer block, for layer-wise decay: a module with both ``attn`` and ``mlp`` children."""
    children = dict(module.named_children())
    return "attn" in children and "mlp" in children


def layer_ids(model: nn.Module) -> dict[str, int]:
    """Layer index of every parameter name: 0 before the first block, i for block i, n + 1 after.

    Parameters between two blocks (e.g. a downsampling layer) join the next block.
    """
    blocks: list[str] = []
    for name, module in model.named_modules():
        inside_block = any(name.startswith(outer + ".") for outer in blocks)
        if name and not inside_block and is_block(module):
            blocks.append(name)
    block_of = {prefix: index for index, prefix in enumerate(blocks, start=1)}
    ids: dict[str, int] = {}
    pending: list[str] = []
    for name, _ in model.named_parameters():
        owner = next((i for prefix, i in block_of.items() if name.startswith(prefix + ".")), None)
        if owner is None:
            pending.append(name)
            continue
        before_first_block = not ids
        ids.update({waiting: 0 if before_first_block else owner for waiting in pending})
        pending = []
        ids[name] = owner
    ids.update({waiting: len(blocks) + 1 for waiting in pending})
    return ids


def parameter_groups(model: nn.Module, weight_decay: float, layer_decay: float = 1.0) -> list[dict[str, Any]]:
    """Optimiser groups keyed by (layer, decay or not), each with ``weight_decay`` and ``lr_scale``."""
    patterns = no_weight_decay_patterns(model)
    ids = layer_ids(model) if layer_decay < 1.0 else {}
    last = max(ids.values(), default=0)
    groups: dict[tuple[int, bool], dict[str, Any]] = {}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        layer = ids.get(name, last)
        decays = not skips_weight_decay(name, param, patterns)
        group = groups.setdefault((layer, decays), {
            "params": [], "weight_decay": weight_decay if decays else 0.0,
            "lr_scale": layer_decay ** (last - layer)})
        group["params"].append(param)
    return [groups[key] for key in sorted(groups)]


def build_optimizer(cfg: CfgNode, model: nn.Module, world_size: int) -> torch.optim.Optimizer:
    """SOLVER.OPTIMIZER over ``parameter_groups`` at the batch-scaled SOLVER.BASE_LR."""
    solver = cfg.SOLVER
    groups = parameter_groups(model, solver.WEIGHT_DECAY, solver.LAYER_DECAY)
    lr = solver.BASE_LR * lr_scale_factor(cfg, world_size)
    try:
        return create_optimizer_v2(groups, opt=solver.OPTIMIZER, lr=lr,
                                   weight_decay=solver.WEIGHT_DECAY)
    except ValueError as err:
        raise ValueError(f"SOLVER.OPTIMIZER {solver.OPTIMIZER!r} is not usable: {err}; pick one "
                         f"of timm.optim.list_optimizers(), e.g. adamw or sgd") from err


__all__ = ["NO_DECAY_PATTERNS", "build_optimizer", "global_batch_size", "is_block", "layer_ids",
           "lr_scale_factor", "no_weight_decay_patterns", "parameter_groups", "skips_weight_decay"]
