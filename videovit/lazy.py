"""Lazy attributes for package ``__init__`` modules (PEP 562): a name loads its module on first use, so
importing a package costs nothing until something of it is used (docs/architecture.md, "Start-up")."""
from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_attributes(package: dict[str, Any], names: Mapping[str, str]) -> tuple[Callable[[str], Any],
                                                                                Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for the package whose ``globals()`` is ``package``: ``names`` maps
    each public name to the module defining it; a loaded name is cached in the package."""

    def __getattr__(name: str) -> Any:
        module = names.get(name)
        if module is None:
            raise AttributeError(f"module {package['__name__']!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        package[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted({*package, *names})

    return __getattr__, __dir__
