"""RegionViT (regional-to-local attention) as an image and a divided space-time video backbone.

docs/models.md, "RegionViT". Two tokenisations of each frame feed four stages of R2L blocks: coarse
*regional* tokens (one per 4M x 4M patch) and fine *local* tokens (stride 4) grouped into M x M
windows, one window per regional token. Each R2L block lets the regional tokens of a frame attend
to each other (RSA), then every window ``[regional, locals]`` attend within itself (LSA, same
attention weights, relative position bias on local pairs), then applies an MLP.

The video model folds the T frames of a clip into the batch and runs a ``TemporalBlock`` before
every R2L block, with one set of weights for the regional and the local tokens (docs/models.md).
Official IBM checkpoints load through ``checkpoint_filter_fn`` and reproduce the official outputs,
including the official quirks listed in docs/models.md.
"""
from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from videovit.models.family import (
    CheckpointLayout,
    ConfigKey,
    ModelFamily,
    TinyVariant,
    VideoBackbone,
    as_tuple,
    new_classifier,
)
from videovit.models.initialisation import init_weights
from videovit.models.r2l import RelPosAttention, WindowGrid, additive_padding_mask, attention_dtype
from videovit.models.recompute import run_block
from videovit.models.registry import register_family
from videovit.models.stochastic_depth import drop_path, drop_path_rates
from videovit.models.temporal import (
    INFLATION_CONFIG_KEYS,
    InflatedArchConfig,
    TemporalBlock,
    TimeEmbedding,
    fold_frames,
    inflate_from_host,
    resize_time_embedding,
    uses_temporal_layers,
)

STEMS = ("3conv", "1conv")
LOCAL_STRIDE = 4
MLP_RATIO = 4.0
TOKEN_NORM_EPS = 1e-6


@dataclass(frozen=True)
class RegionViTConfig(InflatedArchConfig):
    """Architecture of a RegionViT variant plus the switches ``create_model`` may override.

    The field names are the keyword overrides the registered constructors accept.
    """

    embed_dims: tuple[int, ...] = (96, 192, 384, 768)   # stage widths; the stems emit embed_dims[0]
    depths: tuple[int, ...] = (2, 2, 8, 2)              # R2L blocks per stage
    num_heads: tuple[int, ...] = (3, 6, 12, 24)         # attention heads per stage
    window_size: int = 7                                # M: local tokens per window side
    stem: str = "3conv"                                 # local tokenizer, "3conv" or "1conv"
    peg: bool = False                                   # depthwise-conv position encoding per stage
    exact_padding_mask: bool = False                    # False: the official padding-mask quirk

    def __post_init__(self) -> None:
        super().__post_init__()
        as_tuple(self, "embed_dims", "depths", "num_heads")
        for name in ("embed_dims", "depths", "num_heads"):
            value = getattr(self, name)
            if len(value) != 4:
                raise ValueError(f"RegionViT {name} needs 4 values (one per stage), got {list(value)}")
        if self.stem not in STEMS:
            raise ValueError(f"RegionViT stem must be one of {STEMS}, got {self.stem!r}")
        if self.window_size < 1:
            raise ValueError(f"RegionViT window_size must be >= 1, got {self.window_size}")
        if min(self.depths) < 1:
            raise ValueError(f"every RegionViT stage needs a block or more, got depths {self.depths}")
        for stage, (dim, heads) in enumerate(zip(self.embed_dims, self.num_heads, strict=True)):
            if dim % heads:
                raise ValueError(f"stage {stage}: width {dim} is not divisible by {heads} heads; "
                                 "give num_heads that divide embed_dims")
        for stage in range(1, 4):
            if self.embed_dims[stage] % self.embed_dims[stage - 1]:
                raise ValueError(f"stage {stage}: width {self.embed_dims[stage]} must be a multiple of "
                                 f"{self.embed_dims[stage - 1]} (the downsampling conv is depthwise)")
        if self.stem == "3conv" and self.embed_dims[0] % 4:
            raise ValueError(f"the 3conv stem needs embed_dims[0] divisible by 4, "
                             f"got {self.embed_dims[0]}")


class LayerNorm2d(nn.LayerNorm):
    """LayerNorm over the channels of an NCHW map (eps 1e-5, parameters of shape (C,)).

    Implemented through ``F.layer_norm`` so FLOP counters see it as ``aten::layer_norm``.
    """

    def __init__(self, channels: int, eps: float = 1e-5) -> None:
        super().__init__(channels, eps=eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.layer_norm(x.permute(0, 2, 3, 1), self.normalized_shape, self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)


class LocalTokenizer(nn.Module):
    """Local tokens at stride 4: the ``3conv`` stem (Ti/S) or one 8x8 stride-4 conv (``1conv``, M/B)."""

    proj: nn.Module

    def __init__(self, dim: int, stem: str) -> None:
        super().__init__()
        if stem == "3conv":
            self.proj = nn.Sequential(
                nn.Conv2d(3, dim // 4, kernel_size=3, stride=2, padding=1),
                LayerNorm2d(dim // 4),
                nn.GELU(),
                nn.Conv2d(dim // 4, dim // 2, kernel_size=3, stride=2, padding=1),
                LayerNorm2d(dim // 2),
                nn.GELU(),
                nn.Conv2d(dim // 2, dim, kernel_size=3, stride=1, padding=1),
            )
        else:
            self.proj = nn.Conv2d(3, dim, kernel_size=2 * LOCAL_STRIDE, stride=LOCAL_STRIDE,
                                  padding=LOCAL_STRIDE - 1)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """``(N, 3, H, W)`` -> ``(N, C, ~H/4, ~W/4)``."""
        return self.proj(image)


class RegionalTokenizer(nn.Module):
    """Regional tokens: one conv with kernel = stride = 4M over the image.

    If either side is not divisible by 4M, both sides are zero-padded, centred, by
    ``4M - side % 4M``: a side that was divisible gains a full extra patch (official behaviour).
    """

    def __init__(self, dim: int, patch: int) -> None:
        super().__init__()
        self.patch = patch
        self.proj = nn.Conv2d(3, dim, kernel_size=patch, stride=patch)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """``(N, 3, H, W)`` -> ``(N, C, h, w)`` with ``h, w`` about ``H/4M, W/4M``."""
        height, width = image.shape[-2:]
        patch = self.patch
        if height % patch or width % patch:
            pad_h, pad_w = patch - height % patch, patch - width % patch
            image = F.pad(image, (pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2))
        return self.proj(image)


class Downsample(nn.Module):
    """Stage entry, shared by the regional and local maps: LayerNorm2d, GELU, depthwise 3x3 s2 conv."""

    def __init__(self, in_dim: int, out_dim: int) -> None:
        super().__init__()
        self.proj = nn.Sequential(
            LayerNorm2d(in_dim),
            nn.GELU(),
            nn.Conv2d(in_dim, out_dim, kernel_size=3, stride=2, padding=1, groups=in_dim),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, Cin, H, W)`` -> ``(N, Cout, ceil(H/2), ceil(W/2))``."""
        return self.proj(x)


class Mlp(nn.Module):
    """Token MLP: Linear, exact GELU, Linear."""

    def __init__(self, dim: int, hidden_dim: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden_dim)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden_dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class R2LBlock(nn.Module):
    """Regional-to-local block, with an optional temporal sub-block run first.

    Tokens are window tokens ``(frames*windows, 1 + M*M, C)``. Steps: temporal attention over the
    frames at every token position (video only); RSA among the regional tokens of each frame
    (``norm0``); LSA within each window (``norm1``, same attention, relative position bias and
    padding mask); MLP (``norm2``). Drop path is drawn per clip.
    """

    def __init__(self, dim: int, num_heads: int, window: int, drop_path: float,
                 num_frames: int | None) -> None:
        super().__init__()
        self.temporal = (TemporalBlock(dim, num_heads, num_frames, drop_path=drop_path)
                         if num_frames else None)
        self.norm0 = nn.LayerNorm(dim, eps=TOKEN_NORM_EPS)
        self.norm1 = nn.LayerNorm(dim, eps=TOKEN_NORM_EPS)
        self.attn = RelPosAttention(dim, num_heads, window)
        self.norm2 = nn.LayerNorm(dim, eps=TOKEN_NORM_EPS)
        self.mlp = Mlp(dim, int(dim * MLP_RATIO))
        self.drop_path = drop_path

    def forward(self, tokens: torch.Tensor, num_windows: int, padding_mask: torch.Tensor | None,
                clips: int) -> torch.Tensor:
        """``tokens``: ``(frames*windows, 1 + M*M, C)``; ``padding_mask``: additive or None."""
        windows, length, channels = tokens.shape
        if self.temporal is not None:
            per_frame = tokens.reshape(-1, num_windows * length, channels)
            tokens = self.temporal(per_frame).reshape(tokens.shape)

        regional = tokens[:, 0].reshape(-1, num_windows, channels)
        regional = regional + self._drop(self.attn(self.norm0(regional)), clips)
        tokens = torch.cat([regional.reshape(windows, 1, channels), tokens[:, 1:]], dim=1)

        bias = self.attn.rel_pos_bias()[None]
        if padding_mask is not None:
            bias = bias + padding_mask
        tokens = tokens + self._drop(self.attn(self.norm1(tokens), bias), clips)
        return tokens + self._drop(self.mlp(self.norm2(tokens)), clips)

    def _drop(self, x: torch.Tensor, clips: int) -> torch.Tensor:
        return drop_path(x, self.drop_path, self.training, clips)


class RegionViTStage(nn.Module):
    """One stage: shared downsampling (stages 1-3), R2L blocks over windows, optional PEG.

    The PEG (depthwise 3x3 conv, residual, shared by both maps) runs after the first block, on the
    maps with padding removed, as in the official detection variants.
    """

    def __init__(self, in_dim: int, dim: int, depth: int, num_heads: int, window: int,
                 drop_paths: list[float], num_frames: int | None, downsample: bool, peg: bool,
                 exact_padding_mask: bool) -> None:
        super().__init__()
        self.window = window
        self.exact_padding_mask = exact_padding_mask
        self.downsample = Downsample(in_dim, dim) if downsample else nn.Identity()
        self.blocks = nn.ModuleList(
            R2LBlock(dim, num_heads, window, drop_paths[i], num_frames) for i in range(depth))
        self.peg = (nn.Conv2d(dim, dim, kernel_size=3, padding=1, groups=dim, bias=False)
                    if peg else None)

    def forward(self, regional: torch.Tensor, local: torch.Tensor, clips: int,
                recompute: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """NCHW ``(regional, local)`` maps of all frames -> the stage's output maps (``recompute``: the
        model's ``grad_checkpointing``)."""
        regional, local = self.downsample(regional), self.downsample(local)
        grid = WindowGrid.of(regional, local, self.window)
        allowed = grid.attention_allowed(self.exact_padding_mask, local.device)
        mask = (None if allowed is None
                else additive_padding_mask(allowed, local.shape[0], attention_dtype(local)))
        tokens = grid.to_windows(regional, local)
        for index, block in enumerate(self.blocks):
            tokens = run_block(block, tokens, grid.num_windows, mask, clips, recompute=recompute)
            if index == 0 and self.peg is not None:
                regional, local = grid.to_maps(tokens)
                tokens = grid.to_windows(regional + self.peg(regional), local + self.peg(local))
        return grid.to_maps(tokens)


class RegionViT(VideoBackbone):
    """RegionViT for clips ``(B, 3, T, H, W)``: per-frame RegionViT with divided space-time attention.

    ``num_frames == 1`` (or ``temporal=False``) gives the image model, whose parameters are exactly
    those of the official image network; with ``temporal=False`` and T > 1 logits are the mean of
    the per-frame logits. ``forward_features`` returns ``(B, T, C)``: per frame, the final-normed
    regional tokens averaged; the head averages over time, so it stays linear in the frame features.
    """

    family = "regionvit"
    features_layout = "(B, T, C): per frame, the final-normed regional tokens averaged"

    def __init__(self, config: RegionViTConfig, num_frames: int = 8, num_classes: int = 400) -> None:
        super().__init__()
        self.config = config
        self.num_frames = num_frames
        self.num_classes = num_classes
        self.temporal = uses_temporal_layers(config.temporal, num_frames)
        self.grad_checkpointing = config.act_checkpoint
        dims, depths = config.embed_dims, config.depths
        self.num_features = dims[-1]

        self.patch_embed = LocalTokenizer(dims[0], config.stem)
        self.regional_embed = RegionalTokenizer(dims[0], LOCAL_STRIDE * config.window_size)
        self.time_embed = (TimeEmbedding(num_frames, dims[0], config.time_embed_init_std)
                           if self.temporal else None)
        rates = drop_path_rates(config.drop_path_rate, sum(depths))
        self.layers = nn.ModuleList()
        for stage, depth in enumerate(depths):
            first = sum(depths[:stage])
            self.layers.append(RegionViTStage(
                in_dim=dims[max(stage - 1, 0)], dim=dims[stage], depth=depth,
                num_heads=config.num_heads[stage], window=config.window_size,
                drop_paths=rates[first:first + depth], num_frames=num_frames if self.temporal else None,
                downsample=stage > 0, peg=config.peg, exact_padding_mask=config.exact_padding_mask))
        self.norm = nn.LayerNorm(dims[-1], eps=TOKEN_NORM_EPS)
        self.head_drop = nn.Dropout(config.drop_rate)
        self.head = new_classifier(self.num_features, num_classes)
        init_weights(self)

    def stages(self) -> list[RegionViTStage]:
        """The four stages in order."""
        return [stage for stage in self.layers.children() if isinstance(stage, RegionViTStage)]

    def r2l_blocks(self) -> list[R2LBlock]:
        """All R2L blocks in order."""
        return [block for stage in self.stages() for block in stage.blocks.children() if isinstance(block, R2LBlock)]

    def reset_classifier(self, num_classes: int) -> None:
        """Replace the head by a freshly initialised one for ``num_classes`` (0: no head)."""
        self.head = new_classifier(self.num_features, num_classes, like=self.norm.weight)
        self.num_classes = num_classes

    def no_weight_decay(self) -> set[str]:
        """Relative position tables and the time embedding (norms and biases: the optimizer builder)."""
        return {name for name, _ in self.named_parameters()
                if name.endswith(".rel_pos") or name.startswith("time_embed.")}

    def layer_id(self, name: str) -> int:
        """0 for the tokenizers, 1 + i for R2L block i (a stage's downsampling and PEG join its first
        block), ``num_layers - 1`` for the final norm and head."""
        match = re.match(r"layers\.(\d+)\.(blocks\.(\d+)|downsample|peg)\.", name)
        if match is None:
            return self.num_layers - 1 if name.startswith(("norm.", "head.")) else 0
        stage = int(match.group(1))
        block = int(match.group(3)) if match.group(3) is not None else 0
        return 1 + sum(self.config.depths[:stage]) + block

    @property
    def num_layers(self) -> int:
        """Tokenizers, every R2L block, and the final norm with the head."""
        return sum(self.config.depths) + 2

    def forward_features(self, clip: torch.Tensor) -> torch.Tensor:
        """``(B, 3, T, H, W)`` clip -> ``(B, T, C)`` per-frame features after the final norm."""
        clips, frames = clip.shape[0], clip.shape[2]
        images = fold_frames(clip)
        local, regional = self.patch_embed(images), self.regional_embed(images)
        if self.time_embed is not None:
            local, regional = self._add_time_embedding(local), self._add_time_embedding(regional)
        for stage in self.layers:
            regional, local = stage(regional, local, clips, self.grad_checkpointing)
        features = self.norm(regional.flatten(2).transpose(1, 2)).mean(dim=1)
        return features.reshape(clips, frames, -1)

    def _add_time_embedding(self, x: torch.Tensor) -> torch.Tensor:
        assert self.time_embed is not None
        return self.time_embed(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)

    def forward_head(self, features: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """``(B, T, C)`` frame features -> ``(B, C)`` clip embedding (``pre_logits``) or logits."""
        embedding = self.head_drop(features.mean(dim=1))
        return embedding if pre_logits else self.head(embedding)


# ---------------------------------------------------------------------------- checkpoints

_OFFICIAL_BLOCK_KEY = re.compile(r"^layers\.(\d+)\.block\.(\d+)\.(.+)$")


def _official_to_model_key(key: str) -> str:
    """This model's name for one official key.

    ``cls_token`` -> ``regional_embed``; ``layers.i.block.0.proj`` and its ``proj_cls`` twin ->
    ``layers.i.downsample.proj``; ``layers.i.block.j`` (R2L blocks) -> ``layers.i.blocks.(j-1)``.
    """
    if key.startswith("cls_token."):
        return "regional_embed." + key[len("cls_token."):]
    match = _OFFICIAL_BLOCK_KEY.match(key)
    if not match:
        return key
    stage, index, rest = match.group(1), int(match.group(2)), match.group(3)
    if index == 0:
        return f"layers.{stage}.downsample." + re.sub(r"^proj_cls\.", "proj.", rest)
    return f"layers.{stage}.blocks.{index - 1}.{rest}"


def can_load(state: Mapping[str, torch.Tensor]) -> bool:
    """RegionViT weights, official (``cls_token.proj``: the regional tokenizer) or this project's."""
    return "cls_token.proj.weight" in state or "regional_embed.proj.weight" in state


def checkpoint_filter_fn(state_dict: Mapping[str, torch.Tensor], model: nn.Module) -> dict[str, torch.Tensor]:
    """Convert an official IBM RegionViT state dict (the value under ``'model'``) to ``model``'s keys.

    Renames keys, keeps one copy of each stage's downsampling (the official ``proj_cls`` duplicate
    must equal ``proj``), and reshapes LayerNorm2d parameters from (1, C, 1, 1) to (C,). A state
    dict already in this project's layout is returned unchanged. A ``module.`` prefix is removed.
    """
    state = {key.removeprefix("module."): value for key, value in state_dict.items()}
    if not any(_OFFICIAL_BLOCK_KEY.match(key) or key.startswith("cls_token.") for key in state):
        return state
    converted: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        new_key = _official_to_model_key(key)
        if new_key in converted:
            if not torch.equal(converted[new_key], value):
                raise ValueError(f"official checkpoint: {key} differs from its twin mapped to "
                                 f"{new_key}; this model shares one downsampling between the "
                                 "regional and local maps and cannot hold two different ones")
            continue
        converted[new_key] = value
    for name, module in model.named_modules():
        if isinstance(module, LayerNorm2d):
            for param in ("weight", "bias"):
                key = f"{name}.{param}"
                if key in converted:
                    converted[key] = converted[key].reshape(-1)
    return converted


def resize_rel_pos_table(table: torch.Tensor, window: int) -> torch.Tensor:
    """Bicubically resize a ``(heads, (2M-1)^2)`` relative-position table to window ``window``.

    The official table is stored cyclically shifted (offset ``M // 2``, docs/models.md), so it is
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


def resize_weight(key: str, source: torch.Tensor, target: torch.Tensor) -> torch.Tensor | None:
    """Window-dependent weights (relative position tables, the regional tokenizer) and the time
    embedding, interpolated to ``target``'s shape; None for any other key."""
    if key.endswith(".rel_pos") and source.dim() == 2 and source.shape[0] == target.shape[0]:
        return resize_rel_pos_table(source, (round(target.shape[1] ** 0.5) + 1) // 2)
    if key == "time_embed.weight" and source.dim() == 2 and source.shape[1] == target.shape[1]:
        return resize_time_embedding(source, target.shape[0])
    if key == "regional_embed.proj.weight" and source.dim() == 4 and source.shape[:2] == target.shape[:2]:
        return resize_conv_kernel(source, (target.shape[-2], target.shape[-1]))
    return None


def video_only(key: str) -> bool:
    """Temporal sub-blocks and the time embedding: weights no image checkpoint has."""
    return ".temporal." in key or key.startswith("time_embed.")


# ---------------------------------------------------------------------------- variants

_TI = RegionViTConfig(embed_dims=(64, 128, 256, 512), num_heads=(2, 4, 8, 16), depths=(2, 2, 8, 2),
                      stem="3conv")
_S = RegionViTConfig(embed_dims=(96, 192, 384, 768), num_heads=(3, 6, 12, 24), depths=(2, 2, 8, 2),
                     stem="3conv")
_M = dataclasses.replace(_S, depths=(2, 2, 14, 2), stem="1conv")
_B = RegionViTConfig(embed_dims=(128, 256, 512, 1024), num_heads=(4, 8, 16, 32),
                     depths=(2, 2, 14, 2), stem="1conv")

FAMILY = register_family(ModelFamily(
    name="regionvit",
    build=lambda arch, num_frames, num_classes: RegionViT(arch, num_frames, num_classes),
    # Ti/S: 3conv stem, window 7; M/B: 1conv stem. "_plus": window 14 in all four stages (official
    # small_w14 / base_w14; Ti+ and M+ are not released officially).
    variants={"regionvit_ti": _TI, "regionvit_s": _S, "regionvit_m": _M, "regionvit_b": _B,
              **{f"{name}_plus": dataclasses.replace(base, window_size=14)
                 for name, base in (("regionvit_ti", _TI), ("regionvit_s", _S), ("regionvit_m", _M),
                                    ("regionvit_b", _B))}},
    can_load=can_load,
    tiny_variants=(TinyVariant("regionvit_ti", dict(embed_dims=[16, 32, 64, 128], num_heads=[1, 1, 2, 4],
                                                    depths=[1, 1, 1, 1]), image_size=56),),
    video_only=video_only,
    filter_state_dict=checkpoint_filter_fn,
    resize_weight=resize_weight,
    inflate_weight=inflate_from_host,
    layouts=(CheckpointLayout("regionvit_official", weights_key="model"),),
    config_keys=(
        *INFLATION_CONFIG_KEYS,
        ConfigKey("WINDOW_SIZE", 0, "window_size", "local window size M (0 = the variant's own: 7, or 14 for "
                  "'_plus')", unset=0),
        ConfigKey("STEM", "", "stem", "tokenizer stem, '3conv' or '1conv' ('' = the variant's own)", unset=""),
        ConfigKey("PEG", False, "peg", "add the positional encoding generator (depthwise conv) after each "
                  "stage's first block"),
        ConfigKey("EXACT_PADDING_MASK", False, "exact_padding_mask", "mask padded tokens exactly instead of "
                  "reproducing the official padding-mask quirk"),
    ),
))
