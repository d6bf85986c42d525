"""TimeSformer (Bertasius et al. 2021): a ViT with divided space-time attention, as a video backbone.

Every frame is cut into patches by one conv; the clip is one token sequence ``[cls, patches]`` with
the patches ordered spatial-major, time-minor (site 0 at t=0..T-1, then site 1, ...). Each block
attends over time at every site (``temporal_*``), then over space within every frame (the clip's
cls token joins each frame and its updates are averaged over the frames), then applies an MLP.
Parameter names are those of the official facebookresearch/TimeSformer model, so its checkpoints
load by stripping the ``model.`` prefix, and ImageNet ViT files inflate into it (see
docs/adding-a-backbone.md and docs/checkpoints.md).

``temporal=False`` (or one frame) is the space-only model: a plain ViT run on every frame, logits
averaged over the frames.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from timm.layers import Mlp
from torch import nn
from torch.utils.checkpoint import checkpoint

from videovit.models.family import (
    ArchConfig,
    CheckpointLayout,
    ConfigKey,
    ModelFamily,
    VideoBackbone,
    as_tuple,
    crop_size_unless_set,
    new_classifier,
)
from videovit.models.layers import Attention
from videovit.models.registry import register_family
from videovit.models.temporal import drop_path_grouped, fold_frames, resize_time_embedding, uses_temporal_layers

NORM_EPS = 1e-6
OFFICIAL_PREFIX = "model."   # PySlowFast's wrapper holds the network as ``self.model``

# File layouts of the official files (timm / Hugging Face ViT files are flat: the generic "timm" layout).
CHECKPOINT_LAYOUTS = (
    CheckpointLayout("timesformer_official", weights_key="model_state", prefix=OFFICIAL_PREFIX),  # PySlowFast .pyth
    CheckpointLayout("deit", weights_key="model"),                                               # DeiT releases
)


@dataclass(frozen=True)
class TimeSformerConfig(ArchConfig):
    """Architecture of a TimeSformer variant plus the switches ``create_model`` may override.

    The field names are the keyword overrides the registered constructors accept. The family has
    one stage, so ``embed_dims``, ``depths`` and ``num_heads`` hold one value each (the config
    keys MODEL.EMBED_DIMS/DEPTHS/NUM_HEADS are lists for every family).
    """

    embed_dims: tuple[int, ...] = (768,)     # token width
    depths: tuple[int, ...] = (12,)          # blocks
    num_heads: tuple[int, ...] = (12,)       # attention heads (spatial and temporal)
    patch_size: int = 16                     # side of the square patches of each frame
    img_size: int = 224                      # side of the square frames the model is built for
    mlp_ratio: float = 4.0                   # MLP hidden width / token width
    qkv_bias: bool = True

    def __post_init__(self) -> None:
        as_tuple(self, "embed_dims", "depths", "num_heads")
        for name in ("embed_dims", "depths", "num_heads"):
            value = getattr(self, name)
            if len(value) != 1 or value[0] < 1:
                raise ValueError(f"TimeSformer {name} needs one positive value (a single stage), "
                                 f"got {list(value)}")
        if self.width % self.num_heads[0]:
            raise ValueError(f"TimeSformer width {self.width} is not divisible by {self.num_heads[0]} "
                             "heads; give num_heads that divide embed_dims")
        if self.patch_size < 1 or self.img_size < self.patch_size or self.img_size % self.patch_size:
            raise ValueError(f"TimeSformer img_size {self.img_size} must be a multiple of patch_size "
                             f"{self.patch_size} (square frames cut into whole patches)")
        if self.mlp_ratio <= 0:
            raise ValueError(f"TimeSformer mlp_ratio must be > 0, got {self.mlp_ratio}")
        for name in ("drop_path_rate", "drop_rate"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"TimeSformer {name} must be in [0, 1), got {getattr(self, name)}")
        if self.time_embed_init_std < 0:
            raise ValueError(f"TimeSformer time_embed_init_std must be >= 0, got {self.time_embed_init_std}")

    @property
    def width(self) -> int:
        """Token width C."""
        return self.embed_dims[0]

    @property
    def depth(self) -> int:
        """Number of blocks."""
        return self.depths[0]

    @property
    def grid(self) -> int:
        """Patches per frame side."""
        return self.img_size // self.patch_size


class PatchEmbed(nn.Module):
    """Frames ``(N, 3, H, W)`` -> patch tokens ``(N, H/p * W/p, C)``, row-major, by one conv."""

    def __init__(self, patch_size: int, dim: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(3, dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        return self.proj(frames).flatten(2).transpose(1, 2)


class Block(nn.Module):
    """A ViT block, with the divided space-time steps when built with ``num_frames``.

    Divided (tokens ``(B, 1 + S*T, C)``, spatial-major time-minor, S sites per frame):
    1. temporal: every site's T tokens attend to each other; ``x_p += temporal_fc(drop_path(r))``
       (drop path before ``temporal_fc``, as in the official model);
    2. spatial: each frame's ``[cls, sites]`` attend within the frame (the clip's one cls token is
       copied to every frame); the cls updates are averaged over the frames;
    3. MLP on all tokens.
    Space-only (``num_frames=None``, tokens ``(B*T, 1 + S, C)``): attention and MLP of a plain ViT.
    Drop path is drawn once per clip for every residual.
    """

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float, qkv_bias: bool, drop_path: float,
                 num_frames: int | None) -> None:
        super().__init__()
        self.num_frames = num_frames
        self.drop_path = drop_path
        self.norm1 = nn.LayerNorm(dim, eps=NORM_EPS)
        self.attn = Attention(dim, num_heads=num_heads, qkv_bias=qkv_bias)
        if num_frames is not None:
            self.temporal_norm1 = nn.LayerNorm(dim, eps=NORM_EPS)
            self.temporal_attn = Attention(dim, num_heads=num_heads, qkv_bias=qkv_bias)
            self.temporal_fc = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim, eps=NORM_EPS)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), act_layer=nn.GELU)

    def forward(self, x: torch.Tensor, clips: int) -> torch.Tensor:
        """``x``: ``(B, 1 + S*T, C)`` (divided) or ``(B*T, 1 + S, C)`` (space-only); same shape out."""
        if self.num_frames is None:
            x = x + self._drop(self.attn(self.norm1(x)), clips)
        else:
            x = self._space_time(x)
        return x + self._drop(self.mlp(self.norm2(x)), clips)

    def _space_time(self, x: torch.Tensor) -> torch.Tensor:
        frames = self.num_frames
        assert frames is not None
        clips, length, channels = x.shape
        sites = (length - 1) // frames
        cls, patches = x[:, :1], x[:, 1:]

        along_time = patches.reshape(clips * sites, frames, channels)
        residual = self.temporal_attn(self.temporal_norm1(along_time)).reshape(clips, sites * frames, channels)
        patches = patches + self.temporal_fc(self._drop(residual, clips))

        per_frame = patches.reshape(clips, sites, frames, channels).transpose(1, 2)
        per_frame = torch.cat([cls.expand(-1, frames, -1).unsqueeze(2), per_frame], dim=2)
        out = self.attn(self.norm1(per_frame.reshape(clips * frames, 1 + sites, channels)))
        out = out.reshape(clips, frames, 1 + sites, channels)
        cls_update = out[:, :, :1].mean(dim=1)
        patch_update = out[:, :, 1:].transpose(1, 2).reshape(clips, sites * frames, channels)
        update = torch.cat([cls_update, patch_update], dim=1)
        return torch.cat([cls, patches], dim=1) + self._drop(update, clips)

    def _drop(self, x: torch.Tensor, clips: int) -> torch.Tensor:
        return drop_path_grouped(x, self.drop_path, self.training, clips)


class TimeSformer(VideoBackbone):
    """TimeSformer for clips ``(B, 3, T, H, W)`` (divided space-time), or a frame-averaged ViT.

    The model is built for ``num_frames`` and ``config.img_size``: other clip sizes are refused (the
    position and time embeddings are resized when a checkpoint is loaded, not per forward).
    """

    family = "timesformer"

    def __init__(self, config: TimeSformerConfig, num_frames: int = 8, num_classes: int = 400) -> None:
        super().__init__()
        if num_classes < 0:
            raise ValueError(f"num_classes must be >= 0 (0: no classifier), got {num_classes}")
        self.config = config
        self.num_frames = num_frames
        self.num_classes = num_classes
        self.temporal = uses_temporal_layers(config.temporal, num_frames)
        self.num_features = dim = config.width
        self.grad_checkpointing = config.act_checkpoint

        self.patch_embed = PatchEmbed(config.patch_size, dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + config.grid ** 2, dim))
        self.time_embed = nn.Parameter(torch.zeros(1, num_frames, dim)) if self.temporal else None
        rates = torch.linspace(0, config.drop_path_rate, config.depth, device="cpu").tolist()
        self.blocks = nn.ModuleList(
            Block(dim, config.num_heads[0], config.mlp_ratio, config.qkv_bias, rate,
                  num_frames if self.temporal else None) for rate in rates)
        self.norm = nn.LayerNorm(dim, eps=NORM_EPS)
        self.head_drop = nn.Dropout(config.drop_rate)
        self.head = new_classifier(dim, num_classes)
        self._init_weights()

    @property
    def num_layers(self) -> int:
        """Layer groups for layer-wise lr decay: embeddings, each block, final norm and head."""
        return self.config.depth + 2

    def _init_weights(self) -> None:
        """Official scheme: trunc_normal(0.02) for embeddings and Linears; ``temporal_fc`` and the time
        embedding zero (time embedding trunc_normal(``time_embed_init_std``) if that is > 0)."""
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.trunc_normal_(self.cls_token, std=0.02)
        for name, module in self.named_modules():
            if isinstance(module, nn.Linear) and name.endswith(".temporal_fc"):
                nn.init.zeros_(module.weight)
                nn.init.zeros_(module.bias)
            elif isinstance(module, nn.Linear):
                _init_linear(module)
            elif isinstance(module, nn.LayerNorm):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
        std = self.config.time_embed_init_std
        if self.time_embed is not None and std > 0:
            nn.init.trunc_normal_(self.time_embed, std=std, a=-2 * std, b=2 * std)

    def reset_classifier(self, num_classes: int) -> None:
        """Replace the head by a freshly initialised one for ``num_classes`` (0: no head, identity)."""
        self.head = new_classifier(self.num_features, num_classes, like=self.norm.weight)
        self.num_classes = num_classes

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        """Recompute every block in the backward pass (less memory, one more forward per block)."""
        self.grad_checkpointing = enable

    def no_weight_decay(self) -> set[str]:
        """The class token and the position and time embeddings."""
        names = {"cls_token", "pos_embed", "time_embed"}
        return {name for name, _ in self.named_parameters() if name in names}

    def layer_id(self, param_name: str) -> int:
        """0: patch, position and time embeddings and cls token; i + 1: ``blocks.i``; num_layers - 1:
        the final norm and the head."""
        match = re.match(r"blocks\.(\d+)\.", param_name)
        if match:
            return int(match.group(1)) + 1
        if param_name.startswith(("norm.", "head.")):
            return self.num_layers - 1
        return 0

    def forward_features(self, clip: torch.Tensor) -> torch.Tensor:
        """``(B, 3, T, H, W)`` clip -> final-normed tokens.

        Divided model: ``(B, 1 + N*T, C)``, the clip's cls token first, then the N patch sites of a
        frame, each site's T frames adjacent (spatial-major, time-minor). Space-only model:
        ``(B, T, 1 + N, C)``, each frame's own ``[cls, patches]``.
        """
        self._check_clip(clip)
        clips, frames = clip.shape[0], clip.shape[2]
        tokens = self.patch_embed(fold_frames(clip))                        # (B*T, N, C)
        cls = self.cls_token.expand(tokens.shape[0], -1, -1)
        tokens = torch.cat([cls, tokens], dim=1) + self.pos_embed           # (B*T, 1 + N, C)
        if self.time_embed is None:
            tokens = self._run_blocks(tokens, clips)
            return self.norm(tokens).reshape(clips, frames, *tokens.shape[1:])
        sites, channels = tokens.shape[1] - 1, tokens.shape[2]
        patches = tokens[:, 1:].reshape(clips, frames, sites, channels).transpose(1, 2)
        patches = patches + self.time_embed[:, None]                       # (B, N, T, C)
        tokens = torch.cat([tokens[::frames, :1], patches.reshape(clips, sites * frames, channels)], dim=1)
        return self.norm(self._run_blocks(tokens, clips))

    def forward_head(self, features: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """``forward_features`` output -> logits ``(B, classes)``, or with ``pre_logits`` the
        ``(B, num_features)`` clip embedding: the cls token (space-only: averaged over frames)."""
        pooled = features[:, 0] if self.temporal else features[:, :, 0].mean(dim=1)
        pooled = self.head_drop(pooled)
        return pooled if pre_logits else self.head(pooled)

    def _run_blocks(self, tokens: torch.Tensor, clips: int) -> torch.Tensor:
        for block in self.blocks:
            if self.grad_checkpointing and torch.is_grad_enabled():
                tokens = checkpoint(block, tokens, clips, use_reentrant=False)
            else:
                tokens = block(tokens, clips)
        return tokens

    def _check_clip(self, clip: torch.Tensor) -> None:
        if clip.dim() != 5 or clip.shape[1] != 3:
            raise ValueError(f"expected a clip (B, 3, T, H, W), got shape {tuple(clip.shape)}")
        frames, height, width = clip.shape[2:]
        size = self.config.img_size
        if (height, width) != (size, size):
            raise ValueError(f"this TimeSformer is built for {size}x{size} frames, got {height}x{width}; "
                             f"build it with img_size={height} if square (the position embedding is "
                             "resized when loading weights) or crop the clip")
        if self.temporal and frames != self.num_frames:
            raise ValueError(f"this TimeSformer is built for {self.num_frames} frames, got a clip of "
                             f"{frames}; build it with num_frames={frames} (the time embedding is "
                             "resized when loading weights)")


def _init_linear(module: nn.Linear) -> None:
    nn.init.trunc_normal_(module.weight, std=0.02)
    if module.bias is not None:
        nn.init.zeros_(module.bias)


# ---- checkpoint hooks (see docs/adding-a-backbone.md) ----------------------------------------------

def _strip_official_prefix(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``state`` without PySlowFast's ``model.`` prefix when every key has it."""
    if state and all(key.startswith(OFFICIAL_PREFIX) for key in state):
        return {key[len(OFFICIAL_PREFIX):]: value for key, value in state.items()}
    return dict(state)


def owns_state_dict(state: Mapping[str, torch.Tensor]) -> bool:
    """True for TimeSformer and ImageNet ViT state dicts (official ``model.`` prefix allowed).

    They have a conv patch embedding, ``blocks.0.attn.qkv``, a ``cls_token`` and a token-sequence
    ``pos_embed`` (1, 1 + N, C); VOLO's ``pos_embed`` is a (1, H, W, C) grid and RegionViT has no
    ``blocks``.
    """
    state = _strip_official_prefix(state)
    pos_embed = state.get("pos_embed")
    return (pos_embed is not None and pos_embed.dim() == 3 and "cls_token" in state
            and "patch_embed.proj.weight" in state and "blocks.0.attn.qkv.weight" in state)


def checkpoint_filter_fn(state: Mapping[str, torch.Tensor], model: nn.Module) -> dict[str, torch.Tensor]:
    """The official PySlowFast ``model_state`` (every key ``model.``-prefixed) with the prefix removed.

    timm, Hugging Face and DeiT ViT files already use this model's names and pass unchanged; their
    keys the model lacks (e.g. a DeiT ``dist_token``) are left for the loader to report as unused.
    """
    return _strip_official_prefix(state)


def resize_weight(key: str, source: torch.Tensor, target: torch.Tensor) -> torch.Tensor | None:
    """``source`` interpolated to ``target``'s shape for a geometry-dependent ``key``, else None.

    ``pos_embed``: the patch entries bicubically on their square 2-D grid (another img_size or
    patch grid), the cls entry kept (the official code interpolates the flattened sequence by
    nearest, which scrambles rows). ``time_embed``: linearly over time. A patch embedding of
    another patch size is not resized (None).
    """
    if key == "pos_embed" and source.dim() == 3 and source.shape[::2] == target.shape[::2]:
        old_side, new_side = _square_side(source.shape[1] - 1), _square_side(target.shape[1] - 1)
        if old_side is None or new_side is None:
            return None
        grid = source[:, 1:].reshape(1, old_side, old_side, -1).permute(0, 3, 1, 2).float()
        grid = F.interpolate(grid, size=(new_side, new_side), mode="bicubic", align_corners=False)
        patches = grid.permute(0, 2, 3, 1).reshape(1, new_side * new_side, -1).to(source.dtype)
        return torch.cat([source[:, :1], patches], dim=1)
    if key == "time_embed" and source.dim() == 3 and source.shape[::2] == target.shape[::2]:
        return resize_time_embedding(source[0], target.shape[1])[None]
    return None


def _square_side(count: int) -> int | None:
    side = round(count ** 0.5)
    return side if side * side == count else None


_TEMPORAL_HOSTS = ((re.compile(r"^(blocks\.\d+)\.temporal_attn\.(.+)$"), "attn"),
                   (re.compile(r"^(blocks\.\d+)\.temporal_norm1\.(.+)$"), "norm1"))


def inflate_weight(key: str, target: torch.Tensor, state: Mapping[str, torch.Tensor]) -> torch.Tensor | None:
    """Initial value for a temporal weight an image checkpoint lacks, taken from ``state`` (model names).

    ``blocks.i.temporal_attn.*`` <- ``blocks.i.attn.*``; ``blocks.i.temporal_norm1.*`` <-
    ``blocks.i.norm1.*`` (official convention). ``temporal_fc`` and ``time_embed`` get None: they
    keep the model's zero init (time embedding: unless time_embed_init_std > 0), so at the start of
    finetuning the temporal branch adds nothing. The official code zeroes ``temporal_fc`` in every
    block too: its loop meant to skip block 0 counts the ``blocks`` ModuleList itself as the first
    match (``'Block' in str(m)``), so no block keeps a random ``temporal_fc``.
    """
    for pattern, host in _TEMPORAL_HOSTS:
        match = pattern.match(key)
        if match:
            source = state.get(f"{match.group(1)}.{host}.{match.group(2)}")
            return source if source is not None and source.shape == target.shape else None
    return None


def video_only(key: str) -> bool:
    """The temporal weights of the blocks and the time embedding: no image checkpoint has them."""
    return ".temporal_" in key or key == "time_embed"


FAMILY = register_family(ModelFamily(
    name="timesformer",
    build=lambda arch, num_frames, num_classes: TimeSformer(arch, num_frames, num_classes),
    # TimeSformer-B: ViT-B/16 (width 768, 12 blocks, 12 heads) at 224, divided space-time attention
    variants={"timesformer_b": TimeSformerConfig()},
    owns_state_dict=owns_state_dict,
    video_only=video_only,
    filter_state_dict=checkpoint_filter_fn,
    resize_weight=resize_weight,
    inflate_weight=inflate_weight,
    layouts=CHECKPOINT_LAYOUTS,
    config_keys=(
        ConfigKey("IMG_SIZE", 0, "img_size", "input side the position embedding is built for "
                  "(0 = DATA.TRAIN_CROP_SIZE)", resolve=crop_size_unless_set),
        ConfigKey("PATCH_SIZE", 0, "patch_size", "TimeSformer patch side (0 = the variant's own: 16)", unset=0),
    ),
))
