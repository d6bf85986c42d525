"""TimeSformer (Bertasius et al. 2021): a ViT with divided space-time attention, as a video backbone.

Every frame is cut into patches by one conv; the clip is one token sequence ``[cls, patches]`` with
the patches ordered spatial-major, time-minor (site 0 at t=0..T-1, then site 1, ...). Each block
attends over time at every site (``temporal_*``), then over space within every frame (the clip's
cls token joins each frame and its updates are averaged over the frames), then applies an MLP.
Parameter names are those of the official facebookresearch/TimeSformer model except the temporal branch,
which is the shared ``TemporalBlock`` (``blocks.i.temporal.{norm,attn,fc}``; the checkpoint hooks map the
official ``temporal_norm1`` / ``temporal_attn`` / ``temporal_fc`` onto it), so its checkpoints load by
stripping the ``model.`` prefix and renaming those, and ImageNet ViT files inflate into it (see
docs/adding-a-backbone.md and docs/checkpoints.md).

``temporal=False`` (or one frame) is the space-only model: a plain ViT run on every frame, logits
averaged over the frames.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from timm.layers import Mlp
from torch import nn

from videovit.models.family import (
    CheckpointLayout,
    ConfigKey,
    ModelFamily,
    TinyVariant,
    TransformersFormat,
    VideoBackbone,
    crop_size_unless_set,
    new_classifier,
)
from videovit.models.initialisation import init_weights
from videovit.models.key_maps import KeyMap
from videovit.models.layers import Attention
from videovit.models.positions import resize_token_table, square_side
from videovit.models.recompute import run_block
from videovit.models.registry import register_family
from videovit.models.stochastic_depth import drop_path, drop_path_rates
from videovit.models.temporal import (
    INFLATION_CONFIG_KEYS,
    InflatedArchConfig,
    TemporalBlock,
    fold_frames,
    inflate_from_host,
    resize_time_embedding,
    uses_temporal_layers,
)
from videovit.models.vit_config import ViTArchConfig

NORM_EPS = 1e-6
OFFICIAL_PREFIX = "model."   # PySlowFast's wrapper holds the network as ``self.model``

# File layouts of the official files (timm / Hugging Face ViT files are flat: the generic "timm" layout).
CHECKPOINT_LAYOUTS = (
    CheckpointLayout("timesformer_official", weights_key="model_state", prefix=OFFICIAL_PREFIX),  # PySlowFast .pyth
    CheckpointLayout("deit", weights_key="model"),                                               # DeiT releases
)


@dataclass(frozen=True)
class TimeSformerConfig(InflatedArchConfig, ViTArchConfig):
    """Architecture of a TimeSformer variant (the one-stage ViT fields) plus the switches ``create_model``
    may override; the field names are the keyword overrides the registered constructors accept."""

    label: ClassVar[str] = "TimeSformer"

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("drop_path_rate", "drop_rate"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"TimeSformer {name} must be in [0, 1), got {getattr(self, name)}")


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
    1. temporal (the shared ``TemporalBlock``, official ``temporal_*``): every site's T tokens attend
       to each other; ``x_p += fc(drop_path(r))`` (drop path before ``fc``, as in the official model);
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
        self.temporal = (TemporalBlock(dim, num_heads, num_frames, qkv_bias=qkv_bias, drop_path=drop_path,
                                       norm_eps=NORM_EPS) if num_frames is not None else None)
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
        assert frames is not None and self.temporal is not None
        clips, length, channels = x.shape
        sites = (length - 1) // frames
        cls, patches = x[:, :1], x[:, 1:]

        along_time = patches.reshape(clips * sites, frames, channels)
        patches = patches + self.temporal.along_time(along_time, clips).reshape(clips, sites * frames, channels)

        per_frame = patches.reshape(clips, sites, frames, channels).transpose(1, 2)
        per_frame = torch.cat([cls.expand(-1, frames, -1).unsqueeze(2), per_frame], dim=2)
        out = self.attn(self.norm1(per_frame.reshape(clips * frames, 1 + sites, channels)))
        out = out.reshape(clips, frames, 1 + sites, channels)
        cls_update = out[:, :, :1].mean(dim=1)
        patch_update = out[:, :, 1:].transpose(1, 2).reshape(clips, sites * frames, channels)
        update = torch.cat([cls_update, patch_update], dim=1)
        return torch.cat([cls, patches], dim=1) + self._drop(update, clips)

    def _drop(self, x: torch.Tensor, clips: int) -> torch.Tensor:
        return drop_path(x, self.drop_path, self.training, clips)


class TimeSformer(VideoBackbone):
    """TimeSformer for clips ``(B, 3, T, H, W)`` (divided space-time), or a frame-averaged ViT.

    The model is built for ``num_frames`` and ``config.img_size``; frames of another size take the
    position embedding resized to their patch grid (the one policy of ``videovit.models.positions``).
    """

    family = "timesformer"
    features_layout = ("(B, 1 + N*T, C): the final-normed class token, then the patch tokens spatial-major, "
                       "time-minor; space-only model: (B, T, 1 + N, C)")

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
        rates = drop_path_rates(config.drop_path_rate, config.depth)
        self.blocks = nn.ModuleList(
            Block(dim, config.num_heads[0], config.mlp_ratio, config.qkv_bias, rate,
                  num_frames if self.temporal else None) for rate in rates)
        self.norm = nn.LayerNorm(dim, eps=NORM_EPS)
        self.head_drop = nn.Dropout(config.drop_rate)
        self.head = new_classifier(dim, num_classes)
        init_weights(self, tables=(self.pos_embed, self.cls_token))
        std = config.time_embed_init_std
        if self.time_embed is not None and std > 0:
            nn.init.trunc_normal_(self.time_embed, std=std, a=-2 * std, b=2 * std)

    @property
    def num_layers(self) -> int:
        """Layer groups for layer-wise lr decay: embeddings, each block, final norm and head."""
        return self.config.depth + 2

    def reset_classifier(self, num_classes: int) -> None:
        """Replace the head by a freshly initialised one for ``num_classes`` (0: no head, identity)."""
        self.head = new_classifier(self.num_features, num_classes, like=self.norm.weight)
        self.num_classes = num_classes

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
        clips, frames = clip.shape[0], clip.shape[2]
        tokens = self.patch_embed(fold_frames(clip))                        # (B*T, N, C)
        cls = self.cls_token.expand(tokens.shape[0], -1, -1)
        patch = self.config.patch_size
        tokens = torch.cat([cls, tokens], dim=1) + self._pos_embed((clip.shape[3] // patch, clip.shape[4] // patch))
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
            tokens = run_block(block, tokens, clips, recompute=self.grad_checkpointing)
        return tokens

    def _pos_embed(self, grid: tuple[int, int]) -> torch.Tensor:
        """The position embedding for frames cut into a ``grid`` of patches (resized unless built for it)."""
        built = (self.config.grid, self.config.grid)
        return self.pos_embed if grid == built else resize_token_table(self.pos_embed, built, grid, leading=1)


# ---- checkpoint hooks (see docs/adding-a-backbone.md) ----------------------------------------------

def _strip_official_prefix(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``state`` without PySlowFast's ``model.`` prefix when every key has it."""
    if state and all(key.startswith(OFFICIAL_PREFIX) for key in state):
        return {key[len(OFFICIAL_PREFIX):]: value for key, value in state.items()}
    return dict(state)


# The official temporal branch's names (facebookresearch/TimeSformer) -> the shared TemporalBlock's.
OFFICIAL_NAMES = KeyMap((("blocks.{i}.temporal.norm.", "blocks.{i}.temporal_norm1."),
                         ("blocks.{i}.temporal.attn.", "blocks.{i}.temporal_attn."),
                         ("blocks.{i}.temporal.fc.", "blocks.{i}.temporal_fc.")))
# transformers' TimesformerForVideoClassification names (its conversion script's renames, all 1:1).
TRANSFORMERS_NAMES = KeyMap((
    ("cls_token", "timesformer.embeddings.cls_token"),
    ("pos_embed", "timesformer.embeddings.position_embeddings"),
    ("time_embed", "timesformer.embeddings.time_embeddings"),
    ("patch_embed.proj.", "timesformer.embeddings.patch_embeddings.projection."),
    ("blocks.{i}.norm1.", "timesformer.encoder.layer.{i}.layernorm_before."),
    ("blocks.{i}.attn.qkv.", "timesformer.encoder.layer.{i}.attention.attention.qkv."),
    ("blocks.{i}.attn.proj.", "timesformer.encoder.layer.{i}.attention.output.dense."),
    ("blocks.{i}.temporal.norm.", "timesformer.encoder.layer.{i}.temporal_layernorm."),
    ("blocks.{i}.temporal.attn.qkv.", "timesformer.encoder.layer.{i}.temporal_attention.attention.qkv."),
    ("blocks.{i}.temporal.attn.proj.", "timesformer.encoder.layer.{i}.temporal_attention.output.dense."),
    ("blocks.{i}.temporal.fc.", "timesformer.encoder.layer.{i}.temporal_dense."),
    ("blocks.{i}.norm2.", "timesformer.encoder.layer.{i}.layernorm_after."),
    ("blocks.{i}.mlp.fc1.", "timesformer.encoder.layer.{i}.intermediate.dense."),
    ("blocks.{i}.mlp.fc2.", "timesformer.encoder.layer.{i}.output.dense."),
    ("norm.", "timesformer.layernorm."),
    ("head.", "classifier."),
))
TRANSFORMERS_PREFIXES = ("timesformer.", "classifier.")


def checkpoint_filter_fn(state: Mapping[str, torch.Tensor], model: nn.Module | None) -> dict[str, torch.Tensor]:
    """Any TimeSformer or ViT state dict under this model's names.

    The official PySlowFast ``model_state`` loses its ``model.`` prefix and its ``temporal_norm1`` /
    ``temporal_attn`` / ``temporal_fc`` become ``temporal.norm`` / ``temporal.attn`` / ``temporal.fc``;
    a transformers TimesformerForVideoClassification state dict is renamed key by key. timm, Hugging Face
    and DeiT ViT files already use this model's names; keys the model lacks (e.g. a DeiT ``dist_token``)
    are left for the loader to report as unused.
    """
    state = _strip_official_prefix(state)
    if any(key.startswith(TRANSFORMERS_PREFIXES) for key in state):
        return TRANSFORMERS_NAMES.rename_to_ours(state)
    return OFFICIAL_NAMES.rename_to_ours(state)


def can_load(state: Mapping[str, torch.Tensor]) -> bool:
    """True for TimeSformer (official, transformers or ours) and ImageNet ViT state dicts.

    They have a 2-D conv patch embedding, ``blocks.0.attn.qkv``, a ``cls_token`` and a token-sequence
    ``pos_embed`` (1, 1 + N, C); VOLO's ``pos_embed`` is a (1, H, W, C) grid, RegionViT has no
    ``blocks`` and VideoMAE no ``cls_token``.
    """
    state = checkpoint_filter_fn(state, None)
    pos_embed, patch = state.get("pos_embed"), state.get("patch_embed.proj.weight")
    return (pos_embed is not None and pos_embed.dim() == 3 and "cls_token" in state
            and patch is not None and patch.dim() == 4 and "blocks.0.attn.qkv.weight" in state)


def resize_weight(key: str, source: torch.Tensor, target: torch.Tensor) -> torch.Tensor | None:
    """``source`` interpolated to ``target``'s shape for a geometry-dependent ``key``, else None.

    ``pos_embed``: the patch entries bicubically on their square 2-D grid (another img_size or
    patch grid), the cls entry kept (the official code interpolates the flattened sequence by
    nearest, which scrambles rows). ``time_embed``: linearly over time. A patch embedding of
    another patch size is not resized (None).
    """
    if key == "pos_embed" and source.dim() == 3 and source.shape[::2] == target.shape[::2]:
        old_side, new_side = square_side(source.shape[1] - 1), square_side(target.shape[1] - 1)
        if old_side is None or new_side is None:
            return None
        return resize_token_table(source, (old_side, old_side), (new_side, new_side), leading=1)
    if key == "time_embed" and source.dim() == 3 and source.shape[::2] == target.shape[::2]:
        return resize_time_embedding(source[0], target.shape[1])[None]
    return None


def video_only(key: str) -> bool:
    """The temporal weights of the blocks and the time embedding: no image checkpoint has them.

    An ImageNet file inflates them the shared way (``inflate_from_host``): ``temporal.attn`` and
    ``temporal.norm`` from the block's ``attn`` and ``norm1``, ``temporal.fc`` and ``time_embed`` left at
    zero. The official code zeroes ``temporal_fc`` in every block too: its loop meant to skip block 0
    counts the ``blocks`` ModuleList itself as the first match (``'Block' in str(m)``).
    """
    return ".temporal." in key or key == "time_embed"


# ---- transformers' TimesformerForVideoClassification (docs/checkpoints.md) -------------------------

def read_transformers_config(config: Mapping[str, Any]) -> tuple[str, int, dict[str, Any]]:
    """The model name, frame count and overrides a TimesformerConfig (config.json) describes."""
    if config.get("attention_type", "divided_space_time") != "divided_space_time":
        raise ValueError(f"attention_type {config['attention_type']!r} is not supported: videovit's "
                         "TimeSformer is the divided space-time model")
    if config.get("hidden_act", "gelu") != "gelu" or config.get("layer_norm_eps", NORM_EPS) != NORM_EPS:
        raise ValueError(f"hidden_act {config.get('hidden_act')!r} / layer_norm_eps {config.get('layer_norm_eps')} "
                         f"are not supported: videovit's TimeSformer uses gelu and eps {NORM_EPS}")
    width = config.get("hidden_size", 768)
    overrides = {"embed_dims": [width], "depths": [config.get("num_hidden_layers", 12)],
                 "num_heads": [config.get("num_attention_heads", 12)], "patch_size": config.get("patch_size", 16),
                 "img_size": config.get("image_size", 224), "mlp_ratio": config.get("intermediate_size", 3072) / width,
                 "qkv_bias": config.get("qkv_bias", True)}
    return "timesformer_b", int(config.get("num_frames", 8)), overrides


def write_transformers_config(model: VideoBackbone) -> dict[str, Any]:
    """The TimesformerConfig fields that describe ``model`` (a divided space-time TimeSformer)."""
    assert isinstance(model, TimeSformer)
    if not model.temporal:
        raise ValueError("a TimeSformer without temporal layers has no transformers counterpart "
                         "(its space_only model attends differently)")
    config = model.config
    return {"image_size": config.img_size, "patch_size": config.patch_size, "num_channels": 3,
            "num_frames": model.num_frames, "hidden_size": config.width, "num_hidden_layers": config.depth,
            "num_attention_heads": config.num_heads[0], "intermediate_size": int(config.width * config.mlp_ratio),
            "hidden_act": "gelu", "hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0,
            "initializer_range": 0.02, "layer_norm_eps": NORM_EPS, "qkv_bias": config.qkv_bias,
            "attention_type": "divided_space_time", "drop_path_rate": 0}   # typed int in TimesformerConfig


def export_transformers_state_dict(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``state`` (this model's names) under TimesformerForVideoClassification's names."""
    return {_transformers_name(key): value for key, value in state.items()}


def _transformers_name(key: str) -> str:
    name = TRANSFORMERS_NAMES.to_theirs(key)
    if name is None:
        raise ValueError(f"{key} has no transformers name")
    return name


FAMILY = register_family(ModelFamily(
    name="timesformer",
    build=lambda arch, num_frames, num_classes: TimeSformer(arch, num_frames, num_classes),
    # TimeSformer-B: ViT-B/16 (width 768, 12 blocks, 12 heads) at 224, divided space-time attention
    variants={"timesformer_b": TimeSformerConfig()},
    tiny_variants=(TinyVariant("timesformer_b", dict(embed_dims=[16], depths=[2], num_heads=[2], patch_size=8,
                                                     img_size=32), image_size=32),),
    can_load=can_load,
    video_only=video_only,
    filter_state_dict=checkpoint_filter_fn,
    resize_weight=resize_weight,
    inflate_weight=inflate_from_host,
    layouts=CHECKPOINT_LAYOUTS,
    config_keys=(
        *INFLATION_CONFIG_KEYS,
        ConfigKey("IMG_SIZE", 0, "img_size", "input side the position embedding is built for "
                  "(0 = DATA.TRAIN_CROP_SIZE)", resolve=crop_size_unless_set),
        ConfigKey("PATCH_SIZE", 0, "patch_size", "TimeSformer patch side (0 = the variant's own: 16)", unset=0),
    ),
    transformers=TransformersFormat(
        model_type="timesformer", architecture="TimesformerForVideoClassification",
        read_config=read_transformers_config, write_config=write_transformers_config,
        export_state_dict=export_transformers_state_dict),
))
