"""``torch.compile`` with a fallback: a model that cannot be compiled runs eagerly, after one warning.

Compilation is lazy in PyTorch (it happens on the first call), so ``compile_model`` runs one
forward pass on an example input to surface failures at once, instead of in the middle of a run.
The module itself is compiled in place (``nn.Module.compile``): its parameters, state-dict keys and
class stay those of the eager model, so checkpoints are unaffected. See docs/deployment.md.
"""
from __future__ import annotations

import warnings
from typing import Any

import torch
from torch import nn


class CompileWarning(UserWarning):
    """torch.compile failed for this model; it runs in eager mode."""


def compile_model(model: nn.Module, example: torch.Tensor | None = None, **options: Any) -> nn.Module:
    """``model`` compiled in place (``options`` go to ``torch.compile``), or left eager with one
    ``CompileWarning`` when compiling fails; ``example`` is a batch to compile with right away."""
    try:
        model.compile(**options)
        if example is not None:
            with torch.no_grad():
                model(example)
    except Exception as err:  # noqa: BLE001 - any compiler failure means: run eagerly
        _uncompile(model)
        warnings.warn(f"torch.compile failed for {type(model).__name__}, running in eager mode instead: "
                      f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}",
                      CompileWarning, stacklevel=2)
    return model


def compile_if_configured(model: nn.Module, cfg) -> nn.Module:
    """``compile_model`` with ``cfg.MODEL.COMPILE_BACKEND`` on one test-sized clip when ``cfg.MODEL.COMPILE``
    is set and ``model`` is not compiled yet; ``model`` as it is otherwise (training and testing both call it)."""
    if not cfg.MODEL.COMPILE or is_compiled(model):
        return model
    data = cfg.DATA
    device = next(model.parameters()).device
    example = torch.zeros(1, 3, data.NUM_FRAMES, data.TEST_CROP_SIZE, data.TEST_CROP_SIZE, device=device)
    was_training = model.training
    model.eval()
    compile_model(model, example, backend=cfg.MODEL.COMPILE_BACKEND)
    return model.train(was_training)


def is_compiled(model: nn.Module) -> bool:
    """True when ``model`` runs through torch.compile."""
    return getattr(model, "_compiled_call_impl", None) is not None


def _uncompile(model: nn.Module) -> None:
    """Undo ``nn.Module.compile`` (PyTorch has no public call for it: the compiled call is one attribute)."""
    model._compiled_call_impl = None


__all__ = ["CompileWarning", "compile_if_configured", "compile_model", "is_compiled"]
