"""Reading checkpoint files safely and finding the state dict inside whatever layout they use.

The layouts are the families' (``ModelFamily.layouts``) plus two of this package: ``videovit``,
this project's own training checkpoints, and ``timm``, any flat state dict (docs/checkpoints.md).
"""
from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import torch
from yacs.config import CfgNode

from videovit.checkpoint import transformers_format
from videovit.checkpoint.exported import read_model_folder
from videovit.errors import CheckpointError
from videovit.models.family import CheckpointLayout, ModelFamily
from videovit.models.registry import checkpoint_layouts, families

VIDEOVIT_LAYOUT = CheckpointLayout("videovit", weights_key="model", ema_key="model_ema")
FLAT_LAYOUT = CheckpointLayout("timm")
TRUST_HINT = ("set TRAIN.TRUST_CHECKPOINT True (Python: trust=True) to unpickle it, "
              "but only for a file you trust: unpickling can run arbitrary code")


def layouts() -> list[CheckpointLayout]:
    """Every layout a file may have: this project's, transformers folders, the families', and the flat one."""
    return [VIDEOVIT_LAYOUT, transformers_format.LAYOUT, *checkpoint_layouts(), FLAT_LAYOUT]


def layout_names() -> list[str]:
    """The values TRAIN.CHECKPOINT_TYPE accepts besides "auto"."""
    return [layout.name for layout in layouts()]


def checkpoint_type_problems(cfg: CfgNode) -> list[str]:
    """TRAIN.CHECKPOINT_TYPE must be auto or a layout this project or a registered family knows."""
    valid = ("auto", *layout_names())
    if cfg.TRAIN.CHECKPOINT_TYPE in valid:
        return []
    return [f"TRAIN.CHECKPOINT_TYPE = {cfg.TRAIN.CHECKPOINT_TYPE!r} must be one of {', '.join(map(repr, valid))}"]


def read_checkpoint(path: str | Path, trust: bool = False) -> Any:
    """Load ``path`` without running pickled code: safetensors, ``torch.load(weights_only=True)``, a folder
    written by tools/export.py (in this project's checkpoint layout) or a transformers folder (its layout).

    A file holding arbitrary pickled objects is refused unless ``trust`` is set.
    """
    path = Path(path)
    if path.is_dir():
        if transformers_format.is_transformers_folder(path):
            return transformers_format.read_transformers_folder(path)
        return read_model_folder(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist: check TRAIN.CHECKPOINT_FILE_PATH")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path), device="cpu")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        if not trust:
            detail = str(err).splitlines()[0] if str(err) else type(err).__name__
            raise CheckpointError(
                f"{path} holds pickled Python objects that a safe load refuses ({detail}); "
                f"{TRUST_HINT}") from err
    except (RuntimeError, EOFError, OSError) as err:
        raise CheckpointError(f"{path} is not a readable checkpoint ({err}); the file may be "
                              "truncated or not a torch/safetensors file") from err
    return torch.load(path, map_location="cpu", weights_only=False)


def is_videovit_checkpoint(obj: Any) -> bool:
    """A checkpoint written by this project's training: weights under 'model' and its config as text."""
    return isinstance(obj, dict) and isinstance(obj.get("model"), dict) and isinstance(obj.get("config"), str)


def detect_layout(obj: Any, path: str | Path, family: ModelFamily | None = None) -> str:
    """Name the layout of a loaded checkpoint from its container and, where several fit, its keys.

    A layout of ``family`` (the model's) wins when that family can load the weights inside, then any
    family's layout whose family can; otherwise the first layout whose container fits is used (a flat
    file is ``timm``).
    """
    if not isinstance(obj, dict) or not obj:
        raise CheckpointError(f"{path} does not hold a dict of weights (got {type(obj).__name__})")
    if is_videovit_checkpoint(obj):
        return VIDEOVIT_LAYOUT.name
    if transformers_format.LAYOUT.holds(obj):
        return transformers_format.LAYOUT.name
    fitting = None
    for candidate in sorted(families(), key=lambda other: other is not family):
        for layout in candidate.layouts:
            if layout.holds(obj):
                if candidate.can_load(layout.state_dict(obj)):
                    return layout.name
                fitting = fitting or layout.name
    if fitting is not None:
        return fitting
    if FLAT_LAYOUT.holds(obj):
        return FLAT_LAYOUT.name
    raise CheckpointError(
        f"{path}: cannot find the weights in a dict with keys {sorted(obj)[:8]}; expected a flat state dict or one "
        f"under one of {', '.join(sorted({repr(layout.weights_key) for layout in layouts() if layout.weights_key}))}")


def find_layout(name: str) -> CheckpointLayout:
    """The layout called ``name``; an unknown name raises a CheckpointError listing the valid ones."""
    for layout in layouts():
        if layout.name == name:
            return layout
    raise CheckpointError(f"unknown checkpoint type {name!r}: use auto or one of {', '.join(layout_names())}")


def extract_state_dict(obj: Any, layout: str, path: str | Path, ema: bool = False) -> dict[str, torch.Tensor]:
    """The tensors of a checkpoint of ``layout`` (its EMA weights with ``ema``), prefixes removed."""
    found = find_layout(layout)
    if not isinstance(obj, dict) or not found.holds(obj):
        expected = (f"no {found.weights_key!r} dict of weights" if found.weights_key
                    else "not the flat state dict that layout is")
        raise CheckpointError(f"{path} was read as {layout} but holds {expected}: check TRAIN.CHECKPOINT_TYPE "
                              "(auto detects the layout)")
    tensors = found.state_dict(obj, ema=ema)
    if not tensors:
        raise CheckpointError(f"{path} ({layout}) holds no tensors")
    return tensors


def has_ema_weights(obj: Any, layout: str) -> bool:
    """Whether the file also holds EMA weights where its layout keeps them."""
    key = find_layout(layout).ema_key
    return key is not None and isinstance(obj, dict) and isinstance(obj.get(key), dict)
