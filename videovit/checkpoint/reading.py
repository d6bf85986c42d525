"""Reading checkpoint files safely and finding the state dict inside whatever layout they use."""
from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import torch

LAYOUTS = ("regionvit_official", "volo_official", "volo_train", "timm", "videovit")
TRUST_HINT = ("set TRAIN.TRUST_CHECKPOINT True (Python: trust=True) to unpickle it, "
              "but only for a file you trust: unpickling can run arbitrary code")


class CheckpointError(ValueError):
    """A checkpoint that cannot be used as asked: the message names the file and what to do."""


def read_checkpoint(path: str | Path, trust: bool = False) -> Any:
    """Load ``path`` without running pickled code: safetensors, or ``torch.load(weights_only=True)``.

    A file holding arbitrary pickled objects is refused unless ``trust`` is set.
    """
    path = Path(path)
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


def detect_layout(obj: Any, path: str | Path) -> str:
    """Name the layout of a loaded checkpoint (one of ``LAYOUTS``) from its top-level keys."""
    if not isinstance(obj, dict) or not obj:
        raise CheckpointError(f"{path} does not hold a dict of weights (got {type(obj).__name__})")
    if "model" in obj and "config" in obj and isinstance(obj["config"], str):
        return "videovit"
    if isinstance(obj.get("model"), dict):
        return "regionvit_official"
    if isinstance(obj.get("state_dict"), dict):
        return "volo_train"
    if all(isinstance(v, torch.Tensor) for v in obj.values()):
        return "volo_official" if any(k.startswith(("network.", "module.network."))
                                      for k in obj) else "timm"
    raise CheckpointError(
        f"{path}: cannot find the weights in a dict with keys {sorted(obj)[:8]}; expected a flat "
        "state dict or one under 'model' or 'state_dict'")


def extract_state_dict(obj: Any, layout: str, path: str | Path) -> dict[str, torch.Tensor]:
    """The tensors of a checkpoint of ``layout``, with ``module.`` prefixes removed."""
    if layout not in LAYOUTS:
        raise CheckpointError(f"unknown checkpoint type {layout!r}: use auto or one of {LAYOUTS}")
    key = {"regionvit_official": "model", "videovit": "model", "volo_train": "state_dict"}.get(layout)
    state = obj.get(key) if key and isinstance(obj, dict) else obj
    if not isinstance(state, dict):
        raise CheckpointError(f"{path} was read as {layout} but holds no {key!r} dict of weights: "
                              "check TRAIN.CHECKPOINT_TYPE (auto detects the layout)")
    tensors = {strip_module_prefix(k): v for k, v in state.items() if isinstance(v, torch.Tensor)}
    if not tensors:
        raise CheckpointError(f"{path} ({layout}) holds no tensors")
    return tensors


def strip_module_prefix(key: str) -> str:
    """``module.layers.0...`` (DataParallel/DDP) -> ``layers.0...``."""
    while key.startswith("module."):
        key = key[len("module."):]
    return key


def detect_family(state: dict[str, torch.Tensor]) -> str | None:
    """``"regionvit"``, ``"volo"`` or None, from key names that only one family has."""
    if "cls_token.proj.weight" in state or "regional_embed.proj.weight" in state:
        return "regionvit"
    if any(k.startswith("post_network.") for k in state) or "pos_embed" in state and any(
            k.startswith("network.") for k in state):
        return "volo"
    return None
