"""Model registry: model families register named constructors; users create them by name."""
from __future__ import annotations

import difflib
from typing import Any, Callable

from torch import nn

ModelFn = Callable[..., nn.Module]
_REGISTRY: dict[str, ModelFn] = {}


def register_model(fn: ModelFn) -> ModelFn:
    """Decorator: make ``fn`` creatable as ``create_model(fn.__name__, ...)``."""
    if fn.__name__ in _REGISTRY:
        raise ValueError(f"model name {fn.__name__!r} is registered twice")
    _REGISTRY[fn.__name__] = fn
    return fn


def list_models() -> list[str]:
    """Names of all registered models, sorted."""
    _import_families()
    return sorted(_REGISTRY)


def unknown_model_message(name: str) -> str:
    """A user-facing message for an unknown model name, listing the closest valid names."""
    close = difflib.get_close_matches(name, list_models(), n=3, cutoff=0.5)
    hint = f" Did you mean {', '.join(close)}?" if close else ""
    return f"unknown model {name!r}.{hint} Valid names: {', '.join(list_models())}."


def create_model(name: str, num_frames: int = 8, num_classes: int = 400,
                 pretrained: str | None = None, **overrides: Any) -> nn.Module:
    """Build model ``name`` for clips of ``num_frames`` frames (1 = the image model).

    ``overrides`` are architecture fields of the family (dims, depths, heads, window, stem,
    drop_path_rate, ...). ``pretrained`` is a checkpoint path loaded with the project's loader.
    """
    _import_families()
    if name not in _REGISTRY:
        raise ValueError(unknown_model_message(name))
    model = _REGISTRY[name](num_frames=num_frames, num_classes=num_classes, **overrides)
    if pretrained:
        from videovit.checkpoint import load_pretrained

        load_pretrained(model, pretrained)
    return model


def _import_families() -> None:
    """Import the family modules so that their ``@register_model`` decorators have run."""
    from videovit.models import regionvit  # noqa: F401
    from videovit.models import volo  # noqa: F401
