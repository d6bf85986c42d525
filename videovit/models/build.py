"""Build the configured model: the common MODEL.* keys, the family's own keys and DATA.NUM_FRAMES
mapped onto ``create_model``."""
from __future__ import annotations

from typing import Any

from yacs.config import CfgNode

from videovit.models.family import VideoBackbone
from videovit.models.registry import create_model, family_of

# MODEL.* keys every family takes -> the create_model override they set.
COMMON_KEYS = {"TEMPORAL": "temporal", "DROP_PATH_RATE": "drop_path_rate", "DROPOUT_RATE": "drop_rate",
               "ACT_CHECKPOINT": "act_checkpoint", "TIME_EMBED_INIT_STD": "time_embed_init_std"}
# List-valued MODEL.* keys: an empty list means the variant's own value.
LIST_KEYS = {"EMBED_DIMS": "embed_dims", "DEPTHS": "depths", "NUM_HEADS": "num_heads"}


def architecture_overrides(cfg: CfgNode) -> dict[str, Any]:
    """Keyword overrides for ``create_model`` from ``cfg``: common keys, non-empty lists, family keys.

    A family key left at its "variant's own" value is not passed.
    """
    m = cfg.MODEL
    overrides: dict[str, Any] = {override: m[key] for key, override in COMMON_KEYS.items()}
    overrides.update({override: list(m[key]) for key, override in LIST_KEYS.items() if m[key]})
    for key in family_of(m.NAME).config_keys:
        value = key.value(cfg)
        if value != key.unset:
            overrides[key.override] = value
    return overrides


def config_keys_of(model_name: str) -> dict[str, str]:
    """``create_model`` override -> the MODEL.* key that sets it, for model ``model_name``."""
    keys = {override: f"MODEL.{key}" for key, override in {**COMMON_KEYS, **LIST_KEYS}.items()}
    keys.update({key.override: f"MODEL.{key.name}" for key in family_of(model_name).config_keys})
    return keys


def build_model(cfg: CfgNode) -> VideoBackbone:
    """The model described by ``cfg`` (weights random; checkpoints are loaded by ``videovit.checkpoint``)."""
    return create_model(cfg.MODEL.NAME, num_frames=cfg.DATA.NUM_FRAMES, num_classes=cfg.MODEL.NUM_CLASSES,
                        **architecture_overrides(cfg))
