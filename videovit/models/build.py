"""Build the configured model: the common MODEL.* keys, the family's own keys and DATA.NUM_FRAMES
mapped onto ``create_model``."""
from __future__ import annotations

from typing import Any

from yacs.config import CfgNode

from videovit.config import get_defaults
from videovit.config.loading import all_keys, explicit_keys, finish_config, get_value, set_value, undeclared_keys
from videovit.config.validation import raise_problems
from videovit.errors import ConfigError
from videovit.models.family import VideoBackbone
from videovit.models.registry import build_variant, config_keys, family_of, list_models, unknown_model_message

# MODEL.* keys every family takes -> the create_model override they set (the ArchConfig switches).
COMMON_KEYS = {"DROP_PATH_RATE": "drop_path_rate", "DROPOUT_RATE": "drop_rate", "ACT_CHECKPOINT": "act_checkpoint"}
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


def complete_config(cfg: CfgNode) -> CfgNode:
    """``cfg`` with every family's own MODEL.* keys (their defaults where unset) and its model section
    checked; a ``ConfigError`` names every problem (docs/architecture.md, "Configuration in two passes").

    The config package does not import the models, so a config loaded before them keeps the MODEL.* keys
    it did not know as given: here they are typed, or refused with the closest valid names.
    """
    undeclared = undeclared_keys(cfg)
    problems: list[str] = []
    if undeclared or any(key.name not in cfg.MODEL for key in config_keys()):
        full = get_defaults()
        for key in all_keys(cfg):
            try:
                set_value(full, key, get_value(cfg, key), source=undeclared.get(key, "config"))
            except ConfigError as err:
                problems.append(str(err))
        cfg = finish_config(full, set(explicit_keys(cfg)), validate=False)
    raise_problems(problems + model_problems(cfg))
    return cfg


def model_problems(cfg: CfgNode) -> list[str]:
    """What is wrong with the model ``cfg`` describes: its name, keys of another family, its architecture."""
    m = cfg.MODEL
    if m.NAME not in list_models():
        return [f"MODEL.NAME: {unknown_model_message(m.NAME)}"]
    family = family_of(m.NAME)
    own = {key.name for key in family.config_keys}
    problems = [f"MODEL.{key.name} = {m[key.name]!r} does not apply to {m.NAME}, a {family.name} model: "
                f"remove it (it belongs to another family)"
                for key in config_keys() if key.name not in own and m[key.name] != key.default]
    try:
        family.arch(m.NAME, architecture_overrides(cfg))
    except ValueError as err:
        keys = [key for override, key in config_keys_of(m.NAME).items() if override in str(err)]
        problems.append(f"{' / '.join(keys) or 'MODEL'} ({m.NAME}): {err}")
    return problems


def build_model(cfg: CfgNode) -> VideoBackbone:
    """The model described by ``cfg`` (weights random; checkpoints are loaded by ``videovit.checkpoint``)."""
    cfg = complete_config(cfg)
    return build_variant(cfg.MODEL.NAME, num_frames=cfg.DATA.NUM_FRAMES, num_classes=cfg.MODEL.NUM_CLASSES,
                         **architecture_overrides(cfg))
