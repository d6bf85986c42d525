"""Tiny trained-model checkpoints for the inference, export and prediction tests, saved by the engine.

Nothing is trained: a randomly initialised tiny model of each family, its head perturbed (so a model
that failed to load the weights would score differently), saved by the engine's ``CheckpointManager``
with the fields of a run's ``checkpoint_*.pyth`` that loading a trained model reads.
"""
from __future__ import annotations

from pathlib import Path

import torch

from videovit.config import load_config
from videovit.engine.checkpoint_files import CheckpointManager
from videovit.models import TinyVariant, build_model, families
from videovit.models.build import config_keys_of

CLASSES = [f"class {i}" for i in range(8)]


def _tiny_overrides(tiny: TinyVariant) -> list[str]:
    """Config overrides building a family's tiny variant, on square frames of its side."""
    keys = config_keys_of(tiny.name)
    side, scale = tiny.image_size, tiny.image_size * 9 // 8
    overrides = ["MODEL.NAME", tiny.name]
    for name, value in tiny.overrides.items():
        overrides += [keys[name], str(value)]
    return overrides + ["DATA.TRAIN_JITTER_SCALES", str([side, scale]), "DATA.TRAIN_CROP_SIZE", str(side),
                        "DATA.TEST_SCALE", str(scale), "DATA.TEST_CROP_SIZE", str(side)]


# One row per registered model family, from its own first tiny variant (videovit.models.ModelFamily).
TINY_FAMILIES = {family.name: _tiny_overrides(family.tiny_variants[0]) for family in families()}


def tiny_config(output_dir: Path, family: str = "regionvit", extra: list[str] | None = None):
    """A 4-frame tiny model of ``family`` with 2 temporal x 3 spatial test views, on CPU."""
    return load_config([], TINY_FAMILIES[family] + [
        "MODEL.NUM_CLASSES", str(len(CLASSES)), "MODEL.DROP_PATH_RATE", "0.0", "DATA.NUM_FRAMES", "4",
        "DATA.DECODING_BACKEND", "pyav", "DATA.PATH_TO_DATA_DIR", str(output_dir / "lists"),
        "DATA.PATH_PREFIX", str(output_dir), "TEST.NUM_TEMPORAL_VIEWS", "2", "TEST.NUM_SPATIAL_CROPS", "3",
        "MIXUP.ENABLE", "False", "DEVICE", "cpu", "TENSORBOARD", "False", "OUTPUT_DIR", str(output_dir),
        "DATA_LOADER.NUM_WORKERS", "0",
        *(extra or [])])


def save_checkpoint(root: Path, family: str = "regionvit", ema: bool = False) -> tuple[Path, dict]:
    """Save a tiny ``family`` model as the engine does; (checkpoint path, its state dict).

    With ``ema`` the checkpoint carries EMA weights that differ from the plain ones.
    """
    cfg = tiny_config(root, family, ["MODEL_EMA.ENABLE", "True"] if ema else [])
    model = build_model(cfg)
    with torch.no_grad():
        model.head.weight.normal_(0, 1.0)
        model.head.bias.copy_(torch.linspace(-1, 1, len(CLASSES)))
    ema_state = None
    if ema:
        ema_state = {key: value.clone() for key, value in model.state_dict().items()}
        ema_state["head.bias"] = torch.linspace(1, -1, len(CLASSES))
    payload = {"model": model.state_dict(), "model_ema": ema_state, "config": cfg.dump(), "class_names": CLASSES,
               "epoch": 1, "global_step": 1, "epoch_step": 0}
    path = CheckpointManager(root, period=1, keep=1).save(payload, epoch=1)
    return path, {k: v.clone() for k, v in model.state_dict().items()}
