"""Position tables and inputs of another size: the one policy of every family (docs/models.md, "Inputs of
another size").

A model is built for one input side (``img_size``); its position table has one entry per token of that
side's grid. A clip of another side is accepted: the table is interpolated to the clip's token grid on the
fly, by the same function the checkpoint loader uses to resize a file's table to another ``img_size``, so
running a 224-built model on 160-pixel clips equals building it for 160 and loading the 224 weights.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def resize_grid(table: torch.Tensor, grid: tuple[int, int] | torch.Size) -> torch.Tensor:
    """A channels-last ``(N, h, w, C)`` table bicubically resized to ``grid`` (``(N, *grid, C)``); the
    table itself when it already has that grid."""
    size = (int(grid[0]), int(grid[1]))
    if tuple(table.shape[1:3]) == size:
        return table
    resized = F.interpolate(table.permute(0, 3, 1, 2).float(), size=size, mode="bicubic", align_corners=False)
    return resized.permute(0, 2, 3, 1).to(table.dtype)


def resize_token_table(table: torch.Tensor, old_grid: tuple[int, int], new_grid: tuple[int, int],
                       leading: int = 0) -> torch.Tensor:
    """A ``(1, leading + h*w*k, C)`` token table (``leading`` tokens such as a class token first, kept as
    they are; the rest ``k`` row-major ``h x w`` grids, one after the other) resized to ``new_grid``."""
    channels = table.shape[-1]
    head, body = table[:, :leading], table[:, leading:]
    grids = body.reshape(-1, *old_grid, channels)
    resized = resize_grid(grids, new_grid).reshape(1, -1, channels)
    return torch.cat([head, resized], dim=1)


def square_side(count: int) -> int | None:
    """The side of a square grid of ``count`` tokens, or None when ``count`` is not a square."""
    side = round(count ** 0.5)
    return side if side * side == count else None
