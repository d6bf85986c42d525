"""Mixed precision: the autocast context (bf16 on CPU or GPU, fp16 on GPU) and the gradient scaler.

fp16 gradients underflow without loss scaling, so fp16 comes with an enabled ``GradScaler``;
bf16 has fp32's exponent range and needs none (its scaler is a disabled pass-through). With AMP.CPU
False, AMP is the GPU precision only: a CPU run of the same config computes in fp32 (the K400/SSV2
configs, docs/performance.md).
"""
from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext

import torch
from yacs.config import CfgNode

from videovit.errors import ConfigError

AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def amp_active(cfg: CfgNode, device: torch.device) -> bool:
    """True when autocast applies on ``device``: AMP.ENABLE, and on a CPU also AMP.CPU."""
    return bool(cfg.AMP.ENABLE and (device.type == "cuda" or cfg.AMP.CPU))


def autocast_factory(cfg: CfgNode, device: torch.device) -> Callable[[], AbstractContextManager]:
    """A callable returning a fresh autocast context for AMP.ENABLE / AMP.DTYPE on ``device``."""
    if not amp_active(cfg, device):
        return nullcontext
    if cfg.AMP.DTYPE == "fp16" and device.type != "cuda":
        raise ConfigError("AMP.DTYPE fp16 needs a CUDA device; on CPU use AMP.DTYPE bf16 "
                         "or AMP.ENABLE False")
    dtype = AUTOCAST_DTYPES[cfg.AMP.DTYPE]
    return lambda: torch.autocast(device_type=device.type, dtype=dtype)


def build_grad_scaler(cfg: CfgNode, device: torch.device) -> torch.amp.GradScaler:
    """An enabled loss scaler for fp16 autocast on CUDA, a disabled one otherwise."""
    enabled = amp_active(cfg, device) and cfg.AMP.DTYPE == "fp16" and device.type == "cuda"
    return torch.amp.GradScaler(device.type, enabled=enabled)


__all__ = ["AUTOCAST_DTYPES", "amp_active", "autocast_factory", "build_grad_scaler"]
