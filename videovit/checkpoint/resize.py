"""Interpolating weights whose shape depends on the model's geometry (window, resolution, frames)."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from videovit.models.temporal import resize_time_embedding
from videovit.models.volo import resize_pos_embed


def resize_rel_pos_table(table: torch.Tensor, window: int) -> torch.Tensor:
    """Bicubically resize a RegionViT ``(heads, (2M-1)^2)`` relative-position table to window ``window``.

    The official table is stored cyclically shifted (offset ``M // 2``, MODELS.md 2), so it is
    unrolled to a centred grid, resized, and shifted again with the new window's offset.
    """
    heads, entries = table.shape
    old_side = round(entries ** 0.5)
    new_side = 2 * window - 1
    if old_side * old_side != entries or old_side % 2 == 0:
        raise ValueError(f"relative-position table of {entries} entries is not a (2M-1)^2 grid")
    if old_side == new_side:
        return table
    grid = _unshift(table.reshape(heads, old_side, old_side), (old_side + 1) // 2)
    grid = F.interpolate(grid[None].float(), size=(new_side, new_side), mode="bicubic",
                         align_corners=True)[0].to(table.dtype)
    return _shift(grid, window).reshape(heads, new_side * new_side)


def _cyclic_index(side: int, window: int) -> torch.Tensor:
    """Table row holding offset ``d = i - (M - 1)`` of a centred grid: ``(d + M // 2) mod side``."""
    offsets = torch.arange(side) - (window - 1)
    return (offsets + window // 2) % side


def _unshift(table: torch.Tensor, window: int) -> torch.Tensor:
    index = _cyclic_index(table.shape[-1], window)
    return table[:, index][:, :, index]


def _shift(grid: torch.Tensor, window: int) -> torch.Tensor:
    index = _cyclic_index(grid.shape[-1], window)
    table = torch.empty_like(grid)
    table[:, index[:, None], index[None, :]] = grid
    return table


def resize_conv_kernel(weight: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bicubically resize a conv kernel, rescaled by the area ratio so a flat input keeps its response."""
    if tuple(weight.shape[-2:]) == tuple(size):
        return weight
    area_ratio = (weight.shape[-2] * weight.shape[-1]) / (size[0] * size[1])
    resized = F.interpolate(weight.float(), size=size, mode="bicubic", align_corners=False)
    return (resized * area_ratio).to(weight.dtype)


def resize_for_key(key: str, source: torch.Tensor, target: torch.Tensor) -> torch.Tensor | None:
    """Resize ``source`` to ``target``'s shape if ``key`` names a geometry-dependent weight, else None."""
    if key.endswith("rel_pos") and source.dim() == 2 and source.shape[0] == target.shape[0]:
        return resize_rel_pos_table(source, (round(target.shape[1] ** 0.5) + 1) // 2)
    if key.startswith("time_embed") and source.dim() == 2 and source.shape[1] == target.shape[1]:
        return resize_time_embedding(source, target.shape[0])
    if key == "pos_embed" and source.dim() == 4 and source.shape[-1] == target.shape[-1]:
        return resize_pos_embed(source, tuple(target.shape[1:3]))
    if (key == "regional_embed.proj.weight" and source.dim() == 4
            and source.shape[:2] == target.shape[:2]):
        return resize_conv_kernel(source, tuple(target.shape[-2:]))
    return None
