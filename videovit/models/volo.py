"""VOLO D1-D5 as video backbones (MODELS.md sections 1 and 3).

The 2-D part is timm's VOLO, rebuilt from timm's own blocks so that its state-dict keys are
exactly timm's and the official sail-sg files load without renaming. Around it:
- frames are folded into the batch, tokens stay channels-last ``(B*T, H, W, C)``;
- every Outlooker and Transformer block runs a temporal sub-block (``temporal``) first;
- ``time_embed0`` (width C0) is added after the patch embedding, ``time_embed`` (width C_last)
  next to ``pos_embed``;
- class attention runs per frame and the logits average over time after the final norm:
  ``head(mean_t norm(cls_t)) + 0.5 * mean_t max_n aux_head(norm(x_{t,n}))``.
With zero temporal residuals and time embeddings the clip logits are the mean of the frame logits.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F
from timm.layers import trunc_normal_
from timm.models.volo import ClassBlock, Downsample, Outlooker, PatchEmbed, Transformer
from torch import nn
from torch.utils.checkpoint import checkpoint

from videovit.models.registry import register_model
from videovit.models.temporal import (
    TemporalBlock,
    TimeEmbedding,
    drop_path_per_clip,
    fold_frames,
    mean_over_frames,
)

PATCH_SIZE = 8  # stem stride: a 224 image becomes a 28x28 token map
POOLING_SCALE = 2  # the downsample after the outlookers: 28x28 -> 14x14
NORM_EPS = 1e-5  # timm/official VOLO use nn.LayerNorm's default eps
TIME_EMBED_KEYS = ("time_embed0.weight", "time_embed.weight")


@dataclass(frozen=True)
class VoloSpec:
    """Architecture of one VOLO variant: blocks, widths and heads per stage (4 stages)."""

    depths: tuple[int, ...]
    embed_dims: tuple[int, ...]
    num_heads: tuple[int, ...]
    mlp_ratio: float = 3.0
    stem_hidden_dim: int = 64


VARIANTS: dict[str, VoloSpec] = {
    "volo_d1": VoloSpec((4, 4, 8, 2), (192, 384, 384, 384), (6, 12, 12, 12)),
    "volo_d2": VoloSpec((6, 4, 10, 4), (256, 512, 512, 512), (8, 16, 16, 16)),
    "volo_d3": VoloSpec((8, 8, 16, 4), (256, 512, 512, 512), (8, 16, 16, 16)),
    "volo_d4": VoloSpec((8, 8, 16, 4), (384, 768, 768, 768), (12, 16, 16, 16)),
    "volo_d5": VoloSpec((12, 12, 20, 4), (384, 768, 768, 768), (12, 16, 16, 16),
                        mlp_ratio=4.0, stem_hidden_dim=128),
}

OVERRIDES = ("temporal", "drop_path_rate", "drop_rate", "act_checkpoint", "time_embed_init_std",
             "embed_dims", "depths", "num_heads", "img_size", "mlp_ratio")


class ClipDropPath(nn.Module):
    """Stochastic depth on folded frames ``(B*T, ...)`` with one draw per clip, not per frame."""

    def __init__(self, rate: float, num_frames: int) -> None:
        super().__init__()
        self.rate = rate
        self.num_frames = num_frames

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Drop the residual ``x`` of whole clips with probability ``rate`` (training only)."""
        clips = x.reshape(-1, self.num_frames, *x.shape[1:])
        return drop_path_per_clip(clips, self.rate, self.training).reshape(x.shape)


class _TemporalFirst(nn.Module):
    """Mixin for a timm VOLO block: run ``self.temporal`` (if any) before the block itself.

    The host's drop paths are replaced by per-clip ones; they hold no parameters, so the
    state-dict keys stay timm's plus ``temporal.*``.
    """

    temporal: TemporalBlock | None

    def _add_video_parts(self, temporal: TemporalBlock | None, drop_path: float,
                         num_frames: int) -> None:
        self.temporal = temporal
        if drop_path > 0.0:
            self.drop_path1 = ClipDropPath(drop_path, num_frames)
            self.drop_path2 = ClipDropPath(drop_path, num_frames)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.temporal is not None:
            x = self.temporal(x)
        return super().forward(x)


class VideoOutlooker(_TemporalFirst, Outlooker):
    """timm's Outlooker (kernel 3, padding 1, stride 2) preceded by a temporal sub-block."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float, num_frames: int,
                 temporal: TemporalBlock | None, drop_path: float = 0.0) -> None:
        super().__init__(dim, kernel_size=3, padding=1, stride=2, num_heads=num_heads,
                         mlp_ratio=mlp_ratio, qkv_bias=False)
        self._add_video_parts(temporal, drop_path, num_frames)


class VideoTransformer(_TemporalFirst, Transformer):
    """timm's VOLO Transformer block (MHSA without qkv bias + MLP) preceded by a temporal sub-block."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float, num_frames: int,
                 temporal: TemporalBlock | None, drop_path: float = 0.0) -> None:
        super().__init__(dim, num_heads, mlp_ratio=mlp_ratio, qkv_bias=False)
        self._add_video_parts(temporal, drop_path, num_frames)


class VideoVOLO(nn.Module):
    """VOLO with divided space-time attention; with ``num_frames=1`` it is timm's image VOLO.

    Input ``(B, 3, T, H, W)`` (or ``(B, 3, H, W)`` when ``num_frames == 1``), output logits.
    The position embedding is resized bicubically on the fly for inputs of another size.
    """

    family = "volo"

    def __init__(self, depths: Iterable[int], embed_dims: Iterable[int], num_heads: Iterable[int],
                 mlp_ratio: float = 3.0, stem_hidden_dim: int = 64, num_frames: int = 8,
                 num_classes: int = 400, temporal: bool | None = None,
                 img_size: int | tuple[int, int] = 224, drop_path_rate: float = 0.0,
                 drop_rate: float = 0.0, act_checkpoint: bool = False,
                 time_embed_init_std: float = 0.0) -> None:
        super().__init__()
        depths, embed_dims, num_heads = tuple(depths), tuple(embed_dims), tuple(num_heads)
        _check_architecture(depths, embed_dims, num_heads, num_frames, num_classes)
        self.num_frames = num_frames
        self.num_classes = num_classes
        self.use_temporal = num_frames > 1 if temporal is None else bool(temporal)
        self.act_checkpoint = act_checkpoint
        width = embed_dims[-1]

        self.patch_embed = PatchEmbed(stem_conv=True, stem_stride=2, patch_size=PATCH_SIZE,
                                      hidden_dim=stem_hidden_dim, embed_dim=embed_dims[0])
        self.time_embed0 = (TimeEmbedding(num_frames, embed_dims[0], time_embed_init_std)
                            if self.use_temporal else None)
        self.pos_embed = nn.Parameter(torch.zeros(1, *_pos_grid(img_size), width))
        self.time_embed = TimeEmbedding(num_frames, width, time_embed_init_std) if self.use_temporal else None

        rates = _drop_path_rates(depths, drop_path_rate)
        self.network = nn.ModuleList([
            nn.Sequential(*(self._outlooker(embed_dims[0], num_heads[0], mlp_ratio)
                            for _ in range(depths[0]))),
            Downsample(embed_dims[0], embed_dims[1], POOLING_SCALE),
            *(nn.Sequential(*(self._transformer(embed_dims[stage], num_heads[stage], mlp_ratio,
                                                rates[stage][i])
                              for i in range(depths[stage])))
              for stage in range(1, len(depths))),
        ])
        self.cls_token = nn.Parameter(torch.zeros(1, 1, width))
        self.post_network = nn.ModuleList(
            ClassBlock(dim=width, num_heads=num_heads[-1], mlp_ratio=mlp_ratio, qkv_bias=False)
            for _ in range(2))
        self.aux_head = nn.Linear(width, num_classes)
        self.norm = nn.LayerNorm(width, eps=NORM_EPS)
        self.head_drop = nn.Dropout(drop_rate)
        self.head = nn.Linear(width, num_classes)
        self._init_weights()

    def _temporal_block(self, dim: int, num_heads: int, drop_path: float) -> TemporalBlock | None:
        if not self.use_temporal:
            return None
        return TemporalBlock(dim, num_heads, self.num_frames, qkv_bias=False, drop_path=drop_path,
                             norm_eps=NORM_EPS)

    def _outlooker(self, dim: int, num_heads: int, mlp_ratio: float) -> VideoOutlooker:
        return VideoOutlooker(dim, num_heads, mlp_ratio, self.num_frames,
                              self._temporal_block(dim, num_heads, 0.0))

    def _transformer(self, dim: int, num_heads: int, mlp_ratio: float,
                     drop_path: float) -> VideoTransformer:
        return VideoTransformer(dim, num_heads, mlp_ratio, self.num_frames,
                                self._temporal_block(dim, num_heads, drop_path), drop_path)

    def _init_weights(self) -> None:
        """timm's scheme (trunc_normal(0.02) Linears, zero biases); temporal ``fc`` back to zero."""
        trunc_normal_(self.pos_embed, std=0.02)
        trunc_normal_(self.cls_token, std=0.02)
        for module in self.modules():
            if isinstance(module, nn.Linear):
                trunc_normal_(module.weight, std=0.02)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
        for module in self.modules():
            if isinstance(module, TemporalBlock):
                nn.init.zeros_(module.fc.weight)
                nn.init.zeros_(module.fc.bias)

    def no_weight_decay(self) -> set[str]:
        """Names of the embedding parameters that should not be weight-decayed."""
        names = {"pos_embed", "cls_token"}
        if self.use_temporal:
            names.update(TIME_EMBED_KEYS)
        return names

    def reset_classifier(self, num_classes: int) -> None:
        """Replace ``head`` and ``aux_head`` by fresh ``num_classes``-way layers."""
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        like = self.head.weight
        self.num_classes = num_classes
        self.head = _new_classifier(like, num_classes)
        self.aux_head = _new_classifier(like, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Clip ``(B, 3, T, H, W)`` (or image ``(B, 3, H, W)`` if ``num_frames == 1``) -> logits."""
        return self.forward_head(self.forward_features(self._fold(x)))

    def forward_features(self, frames: torch.Tensor) -> torch.Tensor:
        """Folded frames ``(B*T, 3, H, W)`` -> normed tokens ``(B*T, 1 + N, C)``, class token first."""
        x = self.patch_embed(frames).permute(0, 2, 3, 1)
        if self.time_embed0 is not None:
            x = self.time_embed0(x)
        x = self._run(self.network[0], x)
        x = self.network[1](x)
        x = x + resize_pos_embed(self.pos_embed, x.shape[1:3])
        if self.time_embed is not None:
            x = self.time_embed(x)
        for stage in self.network[2:]:
            x = self._run(stage, x)
        x = x.flatten(1, 2)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1)
        return self.norm(self._run(self.post_network, x))

    def forward_head(self, tokens: torch.Tensor) -> torch.Tensor:
        """Normed per-frame tokens ``(B*T, 1 + N, C)`` -> clip logits ``(B, num_classes)``."""
        tokens = self.head_drop(tokens)
        class_logits = self.head(mean_over_frames(tokens[:, 0], self.num_frames))
        token_logits = self.aux_head(tokens[:, 1:]).amax(dim=1)
        return class_logits + 0.5 * mean_over_frames(token_logits, self.num_frames)

    def _fold(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 4 and self.num_frames == 1:
            return x
        if x.dim() != 5 or x.shape[2] != self.num_frames:
            raise ValueError(f"expected clips of shape (B, 3, {self.num_frames}, H, W) for this "
                             f"{self.num_frames}-frame model, got {tuple(x.shape)}")
        return fold_frames(x)

    def _run(self, blocks: Iterable[nn.Module], x: torch.Tensor) -> torch.Tensor:
        recompute = self.act_checkpoint and self.training and torch.is_grad_enabled()
        for block in blocks:
            x = checkpoint(block, x, use_reentrant=False) if recompute else block(x)
        return x


def resize_pos_embed(pos_embed: torch.Tensor, grid: tuple[int, int] | torch.Size) -> torch.Tensor:
    """Bicubically resize a channels-last ``(1, H, W, C)`` position embedding to ``grid``."""
    grid = tuple(grid)
    if tuple(pos_embed.shape[1:3]) == grid:
        return pos_embed
    resized = F.interpolate(pos_embed.permute(0, 3, 1, 2), size=grid, mode="bicubic",
                            align_corners=False)
    return resized.permute(0, 2, 3, 1)


def checkpoint_filter_fn(state_dict: Mapping[str, torch.Tensor],
                         model: VideoVOLO) -> dict[str, torch.Tensor]:
    """Map an official/timm VOLO state dict (or one of ours) onto ``model``'s keys.

    The 2-D keys are timm's already, so this is the identity; geometry (``pos_embed`` grid, time
    embedding length) is resized, and reported, by ``videovit.checkpoint.load_pretrained``.
    """
    return dict(state_dict)


def _check_architecture(depths: tuple[int, ...], embed_dims: tuple[int, ...],
                        num_heads: tuple[int, ...], num_frames: int, num_classes: int) -> None:
    """Raise a ValueError naming the offending field when the architecture cannot be built."""
    for name, values in (("depths", depths), ("embed_dims", embed_dims), ("num_heads", num_heads)):
        if len(values) != 4 or min(values) < 1:
            raise ValueError(f"VOLO needs 4 positive {name} (outlooker stage, then 3 transformer "
                             f"stages), got {list(values)}")
    if len(set(embed_dims[1:])) != 1:
        raise ValueError(f"VOLO downsamples only after the outlookers, so embed_dims[1:] must be "
                         f"equal, got {list(embed_dims)}")
    for dim, heads in zip(embed_dims, num_heads):
        if dim % heads:
            raise ValueError(f"embed_dims {list(embed_dims)} are not divisible by num_heads "
                             f"{list(num_heads)} stage by stage")
    if num_frames < 1 or num_classes < 1:
        raise ValueError(f"num_frames and num_classes must be >= 1, got {num_frames} and {num_classes}")


def _pos_grid(img_size: int | tuple[int, int]) -> tuple[int, int]:
    """Token grid after the downsample for ``img_size`` (14x14 at 224)."""
    height, width = (img_size, img_size) if isinstance(img_size, int) else img_size
    stride = PATCH_SIZE * POOLING_SCALE
    if height < stride or width < stride:
        raise ValueError(f"img_size {img_size} is smaller than the network stride {stride}")
    return height // stride, width // stride


def _drop_path_rates(depths: tuple[int, ...], rate: float) -> list[list[float]]:
    """timm's per-block rates: linear in the global block index; outlookers get none."""
    last = max(sum(depths) - 1, 1)
    starts = [sum(depths[:stage]) for stage in range(len(depths))]
    return [[0.0 if stage == 0 else rate * (starts[stage] + i) / last for i in range(depth)]
            for stage, depth in enumerate(depths)]


def _new_classifier(like: torch.Tensor, num_classes: int) -> nn.Linear:
    """A trunc_normal(0.02) Linear on the device/dtype of ``like``."""
    layer = nn.Linear(like.shape[1], num_classes, device=like.device, dtype=like.dtype)
    trunc_normal_(layer.weight, std=0.02)
    nn.init.zeros_(layer.bias)
    return layer


def _create(name: str, num_frames: int, num_classes: int, overrides: dict[str, Any]) -> VideoVOLO:
    """Build variant ``name`` with the user's overrides (unknown names are rejected)."""
    unknown = sorted(set(overrides) - set(OVERRIDES))
    if unknown:
        raise ValueError(f"{name}: unknown option(s) {', '.join(unknown)}; valid options are "
                         f"{', '.join(OVERRIDES)}")
    kwargs = {**asdict(VARIANTS[name]), **overrides}
    return VideoVOLO(num_frames=num_frames, num_classes=num_classes, **kwargs)


@register_model
def volo_d1(num_frames: int = 8, num_classes: int = 400, **overrides: Any) -> VideoVOLO:
    """VOLO-D1 (26.6M params as an image model at 224, 1000 classes)."""
    return _create("volo_d1", num_frames, num_classes, overrides)


@register_model
def volo_d2(num_frames: int = 8, num_classes: int = 400, **overrides: Any) -> VideoVOLO:
    """VOLO-D2 (58.7M params as an image model at 224, 1000 classes)."""
    return _create("volo_d2", num_frames, num_classes, overrides)


@register_model
def volo_d3(num_frames: int = 8, num_classes: int = 400, **overrides: Any) -> VideoVOLO:
    """VOLO-D3 (86.3M params as an image model at 224, 1000 classes)."""
    return _create("volo_d3", num_frames, num_classes, overrides)


@register_model
def volo_d4(num_frames: int = 8, num_classes: int = 400, **overrides: Any) -> VideoVOLO:
    """VOLO-D4 (193.0M params as an image model at 224, 1000 classes)."""
    return _create("volo_d4", num_frames, num_classes, overrides)


@register_model
def volo_d5(num_frames: int = 8, num_classes: int = 400, **overrides: Any) -> VideoVOLO:
    """VOLO-D5 (295.5M params as an image model at 224, 1000 classes; stem width 128, MLP ratio 4)."""
    return _create("volo_d5", num_frames, num_classes, overrides)
