"""Regional-to-local attention, the layer RegionViT is built of (docs/models.md, "RegionViT").

Each regional token and the M x M local tokens of its window form one sequence; ``WindowGrid`` maps
a frame's regional and local maps to those sequences and back, ``RelPosAttention`` is the attention
with the official relative position bias, and the padding masks reproduce the official behaviour
for maps that do not tile into whole windows. Kept apart from the RegionViT family file so that
tools comparing attention forms (``videovit.bench.models``) use the layer, not the family.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from videovit.models.layers import Attention


def official_rel_pos_index(window: int) -> torch.Tensor:
    """``(M*M, M*M)`` indices into the ``(2M-1)^2`` table, cyclically shifted as in the official code.

    For query (y, x) and key (y', x'): ``((y'-y + M//2) mod D) * D + ((x'-x + M//2) mod D)``, D = 2M-1.
    """
    size = 2 * window - 1
    coords = torch.arange(window)
    offset = (coords[None, :] - coords[:, None] + window // 2) % size   # [query, key]
    index = offset[:, None, :, None] * size + offset[None, :, None, :]   # [yq, xq, yk, xk]
    return index.reshape(window * window, window * window)


class RelPosAttention(Attention):
    """Multi-head attention owning the learnable relative position table of an M x M window.

    The same module (``qkv``, ``proj``) serves the RSA and the LSA of an R2L block; only the LSA
    adds ``rel_pos_bias()`` to its logits.
    """

    rel_pos_index: torch.Tensor

    def __init__(self, dim: int, num_heads: int, window: int) -> None:
        super().__init__(dim, num_heads=num_heads, qkv_bias=True)
        self.rel_pos = nn.Parameter(torch.zeros(num_heads, (2 * window - 1) ** 2))
        nn.init.trunc_normal_(self.rel_pos, std=0.02)
        self.register_buffer("rel_pos_index", official_rel_pos_index(window), persistent=False)

    def rel_pos_bias(self) -> torch.Tensor:
        """``(heads, 1 + M*M, 1 + M*M)`` additive bias, zero on the regional token's row and column."""
        locals_ = self.rel_pos_index.shape[0]
        bias = self.rel_pos[:, self.rel_pos_index.flatten()].reshape(self.num_heads, locals_, locals_)
        return F.pad(bias, (1, 0, 1, 0))


@dataclass(frozen=True)
class WindowGrid:
    """How a stage's local map tiles into M x M windows, one window per regional token.

    The local map is zero-padded at the bottom and right up to ``rows*M x cols*M``. Window tokens
    are laid out ``(N*rows*cols, 1 + M*M, C)``: regional token first, then the locals row-major.
    """

    rows: int
    cols: int
    window: int
    height: int
    width: int

    @classmethod
    def of(cls, regional: torch.Tensor, local: torch.Tensor, window: int) -> WindowGrid:
        """The grid of NCHW ``regional`` and ``local`` maps; errors if the locals overflow it."""
        grid = cls(regional.shape[-2], regional.shape[-1], window, local.shape[-2], local.shape[-1])
        if grid.pad_bottom < 0 or grid.pad_right < 0:
            raise ValueError(f"local map {grid.height}x{grid.width} does not fit in "
                             f"{grid.rows}x{grid.cols} windows of {window}x{window}: "
                             "the input size is not supported")
        return grid

    @property
    def num_windows(self) -> int:
        """Windows per frame (= regional tokens per frame)."""
        return self.rows * self.cols

    @property
    def pad_bottom(self) -> int:
        """Rows of zero padding below the local map."""
        return self.rows * self.window - self.height

    @property
    def pad_right(self) -> int:
        """Columns of zero padding right of the local map."""
        return self.cols * self.window - self.width

    def to_windows(self, regional: torch.Tensor, local: torch.Tensor) -> torch.Tensor:
        """NCHW maps -> window tokens ``(N*rows*cols, 1 + M*M, C)``."""
        n, c = local.shape[:2]
        m = self.window
        local = F.pad(local, (0, self.pad_right, 0, self.pad_bottom))
        local = local.reshape(n, c, self.rows, m, self.cols, m).permute(0, 2, 4, 3, 5, 1)
        local = local.reshape(n * self.num_windows, m * m, c)
        regional = regional.permute(0, 2, 3, 1).reshape(n * self.num_windows, 1, c)
        return torch.cat([regional, local], dim=1)

    def to_maps(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Window tokens -> NCHW ``(regional, local)`` maps, padding removed."""
        n, c, m = tokens.shape[0] // self.num_windows, tokens.shape[-1], self.window
        regional = tokens[:, 0].reshape(n, self.rows, self.cols, c).permute(0, 3, 1, 2)
        local = tokens[:, 1:].reshape(n, self.rows, self.cols, m, m, c).permute(0, 5, 1, 3, 2, 4)
        local = local.reshape(n, c, self.rows * m, self.cols * m)[:, :, :self.height, :self.width]
        return regional.contiguous(), local.contiguous()

    def attention_allowed(self, exact: bool, device: torch.device | None = None) -> torch.Tensor | None:
        """``(windows, 1 + M*M, 1 + M*M)`` bool: may query i attend to key j (None: no padding).

        ``exact``: every query sees exactly the real tokens of its window. Otherwise the official
        mask: a pair is allowed when both tokens lie in real columns *and* both in real rows, except
        in the bottom-right window where *or* is used, so real tokens there attend to most padded
        tokens; a query with no allowed key attends uniformly to all tokens.
        """
        if not self.pad_bottom and not self.pad_right:
            return None
        m = self.window
        coords = torch.arange(m, device=device)
        regional = torch.ones(1, dtype=torch.bool, device=device)
        real_col = torch.cat([regional, (coords < m - self.pad_right).repeat(m)])
        real_row = torch.cat([regional, (coords < m - self.pad_bottom).repeat_interleave(m)])
        window_row = torch.arange(self.rows, device=device).repeat_interleave(self.cols)
        window_col = torch.arange(self.cols, device=device).repeat(self.rows)
        last_row = (window_row == self.rows - 1)[:, None]
        last_col = (window_col == self.cols - 1)[:, None]
        col_ok = real_col | ~last_col                                   # (windows, tokens)
        row_ok = real_row | ~last_row
        if exact:
            return (col_ok & row_ok)[:, None, :].expand(-1, m * m + 1, -1)
        both_cols = col_ok[:, :, None] & col_ok[:, None, :]
        both_rows = row_ok[:, :, None] & row_ok[:, None, :]
        corner = (last_row & last_col)[:, :, None]
        return torch.where(corner, both_cols | both_rows, both_cols & both_rows)


def additive_padding_mask(allowed: torch.Tensor, frames: int, dtype: torch.dtype) -> torch.Tensor:
    """``(frames*windows, 1, N, N)`` additive mask from a per-window bool mask.

    Disallowed logits get half the dtype's lowest value: low enough to vanish in the softmax and
    to equalise every logit of a fully masked row (uniform attention, as in the official code),
    with headroom so that adding a logit cannot overflow to -inf.
    """
    mask = torch.zeros(allowed.shape, dtype=dtype, device=allowed.device)
    mask = mask.masked_fill(~allowed, torch.finfo(dtype).min / 2)
    return mask.repeat(frames, 1, 1)[:, None]


def attention_dtype(x: torch.Tensor) -> torch.dtype:
    """The dtype attention logits of ``x`` are computed in (the autocast dtype when it is on)."""
    device_type = x.device.type
    if torch.is_autocast_enabled(device_type):
        return torch.get_autocast_dtype(device_type)
    return x.dtype
