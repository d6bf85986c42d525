"""The registry of model families and their named variants; models are created by name.

Family modules call ``register_family`` when imported; ``_import_families`` imports the built-in
ones, and a user's own family registers the same way from any module (docs/adding-a-backbone.md).
"""
from __future__ import annotations

import difflib
import importlib
import pkgutil
from collections.abc import Mapping
from typing import Any

import torch

from videovit.config.defaults import declare_family_keys
from videovit.errors import ModelOptionError
from videovit.models.family import CheckpointLayout, ConfigKey, ModelFamily, TinyVariant, VideoBackbone

_IMPORTED = False
_FAMILIES: dict[str, ModelFamily] = {}
_VARIANTS: dict[str, ModelFamily] = {}


def register_family(family: ModelFamily) -> ModelFamily:
    """Make ``family`` and its variants known; a second family or variant of the same name is an error."""
    if family.name in _FAMILIES:
        raise ValueError(f"model family {family.name!r} is registered twice")
    taken = sorted(set(family.variants) & set(_VARIANTS))
    if taken:
        raise ValueError(f"model name(s) {', '.join(taken)} of family {family.name!r} are already registered")
    _check_config_keys(family)
    _FAMILIES[family.name] = family
    _VARIANTS.update(dict.fromkeys(family.variants, family))
    return family


def unregister_family(name: str) -> None:
    """Forget family ``name`` and its variants (for tests that register a family of their own)."""
    family = _FAMILIES.pop(name)
    for variant in family.variants:
        _VARIANTS.pop(variant, None)


def list_models() -> list[str]:
    """Names of all registered models, sorted."""
    _import_families()
    return sorted(_VARIANTS)


def families() -> list[ModelFamily]:
    """Every registered family, in registration order."""
    _import_families()
    return list(_FAMILIES.values())


def family_of(name: str) -> ModelFamily:
    """The family of model ``name``; an unknown name raises a ValueError listing the close ones."""
    _import_families()
    if name not in _VARIANTS:
        raise ModelOptionError(unknown_model_message(name))
    return _VARIANTS[name]


def get_family(family: str) -> ModelFamily:
    """The family named ``family`` (e.g. a model's ``family`` attribute)."""
    _import_families()
    if family not in _FAMILIES:
        raise ValueError(f"unknown model family {family!r}; known: {', '.join(_FAMILIES)}")
    return _FAMILIES[family]


def families_that_can_load(state: Mapping[str, torch.Tensor]) -> list[str]:
    """The names of the families whose models can load ``state`` (for messages: whether a model loads a
    file is its own family's answer, ``ModelFamily.can_load``)."""
    return [family.name for family in families() if family.can_load(state)]


def tiny_variants() -> list[tuple[ModelFamily, TinyVariant]]:
    """Every family's tiny test variants, in registration order (the tables of the shared tests)."""
    return [(family, tiny) for family in families() for tiny in family.tiny_variants]


def checkpoint_layouts() -> list[CheckpointLayout]:
    """Every family's checkpoint layouts, each name once, in registration order."""
    layouts: dict[str, CheckpointLayout] = {}
    for family in families():
        for layout in family.layouts:
            layouts.setdefault(layout.name, layout)
    return list(layouts.values())


def config_keys() -> list[ConfigKey]:
    """Every family's own ``MODEL.*`` config keys, each name once."""
    keys: dict[str, ConfigKey] = {}
    for family in families():
        for key in family.config_keys:
            keys.setdefault(key.name, key)
    return list(keys.values())


def unknown_model_message(name: str) -> str:
    """A user-facing message for an unknown model name, listing the closest valid names."""
    close = difflib.get_close_matches(name, list_models(), n=3, cutoff=0.5)
    hint = f" Did you mean {', '.join(close)}?" if close else ""
    return f"unknown model {name!r}.{hint} Valid names: {', '.join(list_models())}."


def build_variant(name: str, num_frames: int = 8, num_classes: int = 400, **overrides: Any) -> VideoBackbone:
    """Model ``name`` for clips of ``num_frames`` frames (1 = the image model), weights random.

    ``overrides`` are fields of the family's architecture dataclass (widths, depths, heads, drop path,
    ``temporal=False``, ...); an option the family lacks raises a ValueError naming the valid ones.
    ``videovit.create_model`` is this with weights (``pretrained=``).
    """
    return family_of(name).create(name, num_frames, num_classes, overrides)


def _check_config_keys(family: ModelFamily) -> None:
    """Two families may share a config key only with the same default and override."""
    for key in family.config_keys:
        for other in _FAMILIES.values():
            twin = next((k for k in other.config_keys if k.name == key.name), None)
            if twin is not None and (twin.default, twin.override) != (key.default, key.override):
                raise ValueError(f"MODEL.{key.name} of family {family.name!r} differs from the one of family "
                                 f"{other.name!r}; give it another name")


def _import_families() -> None:
    """Import every module of ``videovit.models`` once, so that the built-in families have registered
    themselves: a new family module needs no line anywhere else."""
    global _IMPORTED
    if _IMPORTED:
        return
    _IMPORTED = True
    import videovit.models as package

    for module in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"{package.__name__}.{module.name}")


declare_family_keys(lambda: [(key.name, key.default) for key in config_keys()])
