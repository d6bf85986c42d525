"""``from_pretrained``: a trained model from an exported folder or a training checkpoint, ready to use.

An exported folder (tools/export.py) holds the full videovit config and safetensors weights; a
training checkpoint (``checkpoint_*.pyth``) goes through ``videovit.inference.load_for_inference``.
Either way the model is in eval mode on the config's DEVICE, with its class names; see
docs/deployment.md.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from torch import nn

from videovit.checkpoint import CheckpointError
from videovit.config import load_config
from videovit.engine.distributed import resolve_device
from videovit.export import ExportedModel, is_exported_folder, read_exported
from videovit.inference import InferenceModel, load_for_inference
from videovit.models import build_model


def model_from_exported(exported: ExportedModel, source: str | Path) -> nn.Module:
    """The model ``exported.cfg`` describes with ``exported.state_dict`` loaded (every key must fit)."""
    model = build_model(exported.cfg)
    try:
        model.load_state_dict(exported.state_dict)
    except RuntimeError as err:
        raise CheckpointError(f"the weights in {source} do not fit the model its config describes ({err}); "
                              "export the model again, or give the config it was trained with") from err
    return model


def from_pretrained(path: str | Path, cfg_files: Sequence[str | Path] = (), overrides: Sequence[str] = (),
                    log: Callable[[str], None] | None = None) -> InferenceModel:
    """Model (eval mode, on its device), config and class names of an exported folder or a checkpoint.

    ``cfg_files`` replace the saved config; ``overrides`` (``KEY VALUE`` pairs) apply on top.
    """
    path = Path(path)
    if not path.is_dir():
        return load_for_inference(path, cfg_files, overrides, log)
    exported = read_exported(path, overrides)
    if cfg_files:
        exported.cfg = load_config(cfg_files, overrides)
    if len(exported.class_names) != exported.cfg.MODEL.NUM_CLASSES:
        raise CheckpointError(f"{path} holds {len(exported.class_names)} class names but MODEL.NUM_CLASSES is "
                              f"{exported.cfg.MODEL.NUM_CLASSES}; use the config the model was trained with")
    model = model_from_exported(exported, path)
    model.to(resolve_device(exported.cfg.DEVICE)).eval()
    return InferenceModel(model, exported.cfg, exported.class_names)


__all__ = ["from_pretrained", "is_exported_folder", "model_from_exported"]
