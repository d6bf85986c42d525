"""Renaming parameters between this project's names and another checkpoint layout's, both ways
(docs/checkpoints.md): the official names a family's file uses, or a transformers model class's."""
from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import torch

BLOCK = "{i}"  # stands for a block number in a name pattern


def _pattern(prefix: str) -> re.Pattern[str]:
    return re.compile("^" + re.escape(prefix).replace(re.escape(BLOCK), r"(\d+)") + r"(.*)$")


def _fill(prefix: str, block: str | None) -> str:
    return prefix.replace(BLOCK, block) if block is not None else prefix


@dataclass(frozen=True)
class KeyMap:
    """Pairs of name prefixes ``(ours, theirs)``, in which ``{i}`` stands for the same block number on both
    sides; a key is renamed by the first pair whose prefix it starts with (``None``: no pair applies)."""

    pairs: Sequence[tuple[str, str]]
    _ours: list[re.Pattern[str]] = field(init=False, repr=False, compare=False)
    _theirs: list[re.Pattern[str]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_ours", [_pattern(ours) for ours, _ in self.pairs])
        object.__setattr__(self, "_theirs", [_pattern(theirs) for _, theirs in self.pairs])

    def to_ours(self, key: str) -> str | None:
        """This project's name for ``key`` of the other layout."""
        return self._rename(key, self._theirs, 0)

    def to_theirs(self, key: str) -> str | None:
        """The other layout's name for this project's ``key``."""
        return self._rename(key, self._ours, 1)

    def _rename(self, key: str, patterns: list[re.Pattern[str]], side: int) -> str | None:
        for pattern, pair in zip(patterns, self.pairs, strict=True):
            match = pattern.match(key)
            if match:
                block = match.group(1) if pattern.groups == 2 else None
                return _fill(pair[side], block) + match.group(pattern.groups)
        return None

    def rename_to_ours(self, state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """``state`` with every key this map knows renamed to this project's names, the others kept."""
        return {(self.to_ours(key) or key): value for key, value in state.items()}
