"""One path from a trained checkpoint to a ready model, for testing, inference and export.

The rules (docs/checkpoints.md, "Trained checkpoints"):
- config: what the user's config files and overrides set wins; every other model key (MODEL.*,
  MODEL_EMA.ENABLE) and every key of the input protocol (``Preprocessing``: frames, sampling, crops,
  mean/std, test views) comes from the config saved in the checkpoint: the test, the demo and
  prediction score a checkpoint with the same views;
- weights: the EMA weights when MODEL_EMA.ENABLE and the file holds them, else the plain ones;
- a different frame count or resolution is resized like finetuning and reported; a classifier that
  would be left random is an error;
- class names: the checkpoint's, and they must equal the list's where one is given;
- a transformers folder carries its config and class names too (config.json: ``transformers_format``).
The model comes back carrying its config, class names and protocol (``VideoBackbone.cfg``,
``class_names``, ``preprocessing``).
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from yacs.config import CfgNode

from videovit.checkpoint.loading import load_checkpoint_contents
from videovit.checkpoint.reading import is_videovit_checkpoint, read_checkpoint
from videovit.checkpoint.report import LoadReport
from videovit.checkpoint.transformers_format import (
    CONFIG_KEY,
    is_transformers_contents,
    transformers_cfg,
    transformers_class_names,
)
from videovit.config.loading import all_keys, config_from_text, explicit_keys, get_value, set_value
from videovit.config.validation import validate_config
from videovit.errors import CheckpointError, ConfigError
from videovit.models import VideoBackbone, build_model
from videovit.models.preprocessing import CONFIG_KEYS as PROTOCOL_KEYS
from videovit.models.preprocessing import Preprocessing

logger = logging.getLogger(__name__)

# Besides every MODEL.* key: what the checkpoint decides unless the user sets it (the views rule).
CHECKPOINT_DECIDES = ("MODEL_EMA.ENABLE", *PROTOCOL_KEYS.values())


@dataclass
class TrainedModel:
    """A model with trained weights, carrying its config, classes and protocol, and how it was loaded."""

    model: VideoBackbone
    cfg: CfgNode      # the config the model was built from (``model.cfg``), completed by the rules above
    report: LoadReport
    weights: str      # "model" or "model_ema": which weights of the file were loaded


def saved_config(contents: dict[str, Any], path: str | Path, overrides: Sequence[str] = ()) -> CfgNode:
    """The validated, frozen config a videovit checkpoint was trained with, ``overrides`` applied."""
    try:
        return config_from_text(contents["config"], f"the config saved in {path}", overrides)
    except ConfigError as err:
        raise ConfigError(f"{err}\n(the checkpoint may come from another version of videovit: give its config "
                          "files with --cfg instead)") from err


def checkpoint_config(contents: Any, path: str | Path, overrides: Sequence[str] = ()) -> CfgNode | None:
    """The config a checkpoint carries (a videovit checkpoint's saved one, or the one a transformers folder's
    config.json describes), ``overrides`` applied; None for a file that carries none."""
    if is_videovit_checkpoint(contents):
        return saved_config(contents, path, overrides)
    if is_transformers_contents(contents):
        return transformers_cfg(contents, path, overrides)
    return None


def config_for_checkpoint(cfg: CfgNode, contents: Any, path: str | Path,
                          log: Callable[[str], None] | None = None) -> CfgNode:
    """``cfg`` with the model keys it does not set explicitly taken from ``contents``' saved config.

    Keys the user set to another value than the checkpoint's are kept and reported. A file that carries no
    config (``checkpoint_config``) leaves ``cfg`` unchanged.
    """
    saved = checkpoint_config(contents, path)
    if saved is None:
        return cfg
    merged = cfg.clone()
    merged.defrost()
    user_set = explicit_keys(cfg)
    taken, kept = [], []
    for key in [f"MODEL.{name}" for name in all_keys(cfg.MODEL)] + list(CHECKPOINT_DECIDES):
        mine, theirs = get_value(cfg, key), get_value(saved, key)
        if mine == theirs:
            continue
        if key in user_set:
            kept.append(f"{key} {mine!r} (checkpoint: {theirs!r})")
        else:
            set_value(merged, key, theirs, source=str(path))
            taken.append(f"{key} {theirs!r}")
    merged.freeze()
    say = log or logger.info
    if taken:
        say(f"from the config saved in {path}: {', '.join(taken)}")
    if kept:
        say(f"as configured, differing from the checkpoint {path}: {', '.join(kept)}")
    validate_config(merged)  # e.g. a crop size the user set must fit the checkpoint's short side
    return merged


def use_ema_weights(cfg: CfgNode, contents: Any) -> bool:
    """The one EMA policy: EMA weights when MODEL_EMA.ENABLE and the checkpoint holds them."""
    return bool(cfg.MODEL_EMA.ENABLE) and isinstance(contents, dict) and isinstance(contents.get("model_ema"), dict)


def recorded_class_names(contents: Any, path: str | Path = "") -> list[str] | None:
    """The class names a checkpoint records: a videovit training checkpoint's (or exported folder's), a
    transformers folder's id2label; None for a file that records none (``path`` names it in messages)."""
    if is_transformers_contents(contents):
        return transformers_class_names(contents[CONFIG_KEY], path)
    names = contents.get("class_names") if is_videovit_checkpoint(contents) else None
    return None if not names else list(names)


def check_class_names(found: Sequence[str] | None, expected: Sequence[str], source: str | Path) -> None:
    """Refuse a checkpoint (named ``source`` in the message) trained on other classes, or another class
    order, than ``expected``."""
    if found is not None and list(found) != list(expected):
        raise CheckpointError(f"{source} was trained with other classes (or another class order) than the list's "
                              f"classes.txt ({len(found)} vs {len(expected)} classes); scores would be meaningless: "
                              "use the same classes.txt as the training run")


def load_trained_model(path: str | Path, cfg: CfgNode | None = None, overrides: Sequence[str] = (),
                       trust: bool = False, log: Callable[[str], None] | None = None,
                       class_names: Sequence[str] | None = None) -> TrainedModel:
    """The model ``cfg`` describes, completed from the checkpoint's saved config, with its trained weights.

    Without ``cfg`` the checkpoint's own config is used as it is, with ``overrides`` (``KEY VALUE`` pairs).
    ``path`` is a videovit checkpoint, a transformers folder or, with a config that describes the model,
    any checkpoint with a classifier for ``cfg``'s classes (e.g. an official TimeSformer K400 file).
    ``class_names``: the classes the model must have been trained on (checked before anything is built).
    """
    contents = read_checkpoint(path, trust=trust)
    recorded = recorded_class_names(contents, path)
    if class_names is not None:
        check_class_names(recorded, class_names, path)
    if cfg is None:
        cfg = checkpoint_config(contents, path, overrides)
        if cfg is None:
            raise CheckpointError(f"{path} is not a videovit training checkpoint or a transformers folder and "
                                  "carries no config: give the model's config files (--cfg)")
    cfg = config_for_checkpoint(cfg, contents, path, log)
    if recorded and len(recorded) != cfg.MODEL.NUM_CLASSES:
        raise CheckpointError(f"{path} was trained on {len(recorded)} classes but MODEL.NUM_CLASSES is "
                              f"{cfg.MODEL.NUM_CLASSES}; use the config the checkpoint was trained with")
    model = build_model(cfg)
    use_ema = use_ema_weights(cfg, contents)
    report = load_checkpoint_contents(model, contents, path, allow_new_classifier=False, use_ema=use_ema, log=log)
    (log or logger.info)(f"weights of {path}: {'EMA' if use_ema else 'plain'}"
                         + (f", epoch {contents['epoch']}" if isinstance(contents.get("epoch"), int) else ""))
    model.cfg, model.class_names, model.preprocessing = cfg, recorded, Preprocessing.from_config(cfg)
    return TrainedModel(model, cfg, report, "model_ema" if use_ema else "model")
