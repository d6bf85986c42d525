"""VOLO D1-D5 as video backbones (docs/models.md, "VOLO").

The 2-D part is timm's VOLO, rebuilt from timm's own blocks so that its state-dict keys are
exactly timm's and the official sail-sg files load without renaming. Around it:
- frames are folded into the batch, tokens stay channels-last ``(B*T, H, W, C)``;
- every Outlooker and Transformer block runs a temporal sub-block (``temporal``) first, and its
  residuals go through a per-clip drop path (the blocks' forward is this module's, only their
  parameters are timm's);
- ``time_embed0`` (width C0) is added after the patch embedding, ``time_embed`` (width C_last)
  next to ``pos_embed``;
- class attention runs per frame and the logits average over time after the final norm:
  ``head(mean_t norm(cls_t)) + 0.5 * mean_t max_n aux_head(norm(x_{t,n}))``.
With zero temporal residuals and time embeddings the clip logits are the mean of the frame logits.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch
from timm.models.volo import ClassBlock, Downsample, Outlooker, PatchEmbed, Transformer
from torch import nn

from videovit.models.family import (
    CheckpointLayout,
    ConfigKey,
    ModelFamily,
    TinyVariant,
    VideoBackbone,
    as_tuple,
    crop_size_unless_set,
    new_classifier,
)
from videovit.models.initialisation import init_weights
from videovit.models.positions import resize_grid
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

PATCH_SIZE = 8  # stem stride: a 224 image becomes a 28x28 token map
POOLING_SCALE = 2  # the downsample after the outlookers: 28x28 -> 14x14
NORM_EPS = 1e-5  # timm/official VOLO use nn.LayerNorm's default eps
TIME_EMBED_KEYS = ("time_embed0.weight", "time_embed.weight")


@dataclass(frozen=True)
class VoloConfig(InflatedArchConfig):
    """Architecture of a VOLO variant plus the switches ``create_model`` may override.

    The field names are the keyword overrides the registered models accept.
    """

    depths: tuple[int, ...] = (4, 4, 8, 2)               # outlookers, then 3 transformer stages
    embed_dims: tuple[int, ...] = (192, 384, 384, 384)   # widths; equal after the outlooker stage
    num_heads: tuple[int, ...] = (6, 12, 12, 12)         # heads per stage
    mlp_ratio: float = 3.0
    stem_hidden_dim: int = 64                            # width of the 3-conv stem
    img_size: int = 224                                  # input side the position embedding is built for

    def __post_init__(self) -> None:
        super().__post_init__()
        as_tuple(self, "depths", "embed_dims", "num_heads")
        for name in ("depths", "embed_dims", "num_heads"):
            values = getattr(self, name)
            if len(values) != 4 or min(values) < 1:
                raise ValueError(f"VOLO needs 4 positive {name} (outlooker stage, then 3 transformer "
                                 f"stages), got {list(values)}")
        if len(set(self.embed_dims[1:])) != 1:
            raise ValueError(f"VOLO downsamples only after the outlookers, so embed_dims[1:] must be "
                             f"equal, got {list(self.embed_dims)}")
        for dim, heads in zip(self.embed_dims, self.num_heads, strict=True):
            if dim % heads:
                raise ValueError(f"embed_dims {list(self.embed_dims)} are not divisible by num_heads "
                                 f"{list(self.num_heads)} stage by stage")
        stride = PATCH_SIZE * POOLING_SCALE
        if self.img_size < stride:
            raise ValueError(f"img_size {self.img_size} is smaller than the network stride {stride}")


def _video_block_forward(block: VideoOutlooker | VideoTransformer, x: torch.Tensor) -> torch.Tensor:
    """Temporal sub-block (if any), then the host's pre-norm attention and MLP with per-clip drop path."""
    if block.temporal is not None:
        x = block.temporal(x)
    clips = x.shape[0] // block.num_frames
    x = x + drop_path(block.attn(block.norm1(x)), block.drop_path_rate, block.training, clips)
    return x + drop_path(block.mlp(block.norm2(x)), block.drop_path_rate, block.training, clips)


class VideoOutlooker(Outlooker):
    """timm's Outlooker (kernel 3, padding 1, stride 2) preceded by a temporal sub-block."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float, num_frames: int,
                 temporal: TemporalBlock | None) -> None:
        super().__init__(dim, kernel_size=3, padding=1, stride=2, num_heads=num_heads, mlp_ratio=mlp_ratio,
                         qkv_bias=False)
        self.temporal = temporal
        self.num_frames = num_frames
        self.drop_path_rate = 0.0  # outlookers have no stochastic depth

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _video_block_forward(self, x)


class VideoTransformer(Transformer):
    """timm's VOLO Transformer block (MHSA without qkv bias + MLP) preceded by a temporal sub-block."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float, num_frames: int,
                 temporal: TemporalBlock | None, drop_path: float = 0.0) -> None:
        super().__init__(dim, num_heads, mlp_ratio=mlp_ratio, qkv_bias=False)
        self.temporal = temporal
        self.num_frames = num_frames
        self.drop_path_rate = drop_path

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _video_block_forward(self, x)


class VideoVOLO(VideoBackbone):
    """VOLO with divided space-time attention; with ``num_frames=1`` it is timm's image VOLO.

    ``forward_features`` returns ``(B, T, 1 + N, C)``: per frame, the final-normed class token and
    patch tokens. The position embedding is built for ``img_size`` and resized bicubically on the
    fly for inputs of another size (the one policy of ``videovit.models.positions``).
    """

    family = "volo"
    features_layout = "(B, T, 1 + N, C): per frame, the final-normed class token and patch tokens"

    def __init__(self, config: VoloConfig, num_frames: int = 8, num_classes: int = 400) -> None:
        super().__init__()
        self.config = config
        self.num_frames = num_frames
        self.num_classes = num_classes
        self.temporal = uses_temporal_layers(config.temporal, num_frames)
        self.grad_checkpointing = config.act_checkpoint
        depths, embed_dims, num_heads, mlp_ratio = config.depths, config.embed_dims, config.num_heads, config.mlp_ratio
        width = self.num_features = embed_dims[-1]
        std = config.time_embed_init_std

        self.patch_embed = PatchEmbed(stem_conv=True, stem_stride=2, patch_size=PATCH_SIZE,
                                      hidden_dim=config.stem_hidden_dim, embed_dim=embed_dims[0])
        self.time_embed0 = TimeEmbedding(num_frames, embed_dims[0], std) if self.temporal else None
        grid = config.img_size // (PATCH_SIZE * POOLING_SCALE)
        self.pos_embed = nn.Parameter(torch.zeros(1, grid, grid, width))
        self.time_embed = TimeEmbedding(num_frames, width, std) if self.temporal else None

        rates = _drop_path_rates(depths, config.drop_path_rate)
        self.network = nn.ModuleList([
            nn.Sequential(*(VideoOutlooker(embed_dims[0], num_heads[0], mlp_ratio, num_frames,
                                           self._temporal_block(embed_dims[0], num_heads[0], 0.0))
                            for _ in range(depths[0]))),
            Downsample(embed_dims[0], embed_dims[1], POOLING_SCALE),
            *(nn.Sequential(*(VideoTransformer(embed_dims[stage], num_heads[stage], mlp_ratio, num_frames,
                                               self._temporal_block(embed_dims[stage], num_heads[stage],
                                                                    rates[stage][i]), rates[stage][i])
                              for i in range(depths[stage])))
              for stage in range(1, len(depths))),
        ])
        self.cls_token = nn.Parameter(torch.zeros(1, 1, width))
        self.post_network = nn.ModuleList(
            ClassBlock(dim=width, num_heads=num_heads[-1], mlp_ratio=mlp_ratio, qkv_bias=False)
            for _ in range(2))
        self.aux_head = new_classifier(width, num_classes)
        self.norm = nn.LayerNorm(width, eps=NORM_EPS)
        self.head_drop = nn.Dropout(config.drop_rate)
        self.head = new_classifier(width, num_classes)
        init_weights(self, tables=(self.pos_embed, self.cls_token))

    def _temporal_block(self, dim: int, num_heads: int, drop_path: float) -> TemporalBlock | None:
        if not self.temporal:
            return None
        return TemporalBlock(dim, num_heads, self.num_frames, qkv_bias=False, drop_path=drop_path,
                             norm_eps=NORM_EPS)

    def no_weight_decay(self) -> set[str]:
        """Names of the embedding parameters that should not be weight-decayed."""
        names = {"pos_embed", "cls_token"}
        if self.temporal:
            names.update(TIME_EMBED_KEYS)
        return names

    def layer_id(self, name: str) -> int:
        """0 for the stem and embeddings, then outlookers, transformer and class-attention blocks in
        order (the downsample joins the first transformer block), ``num_layers - 1`` for the norm and
        heads."""
        parts = name.split(".")
        depths = self.config.depths
        if parts[0] == "network":
            stage = int(parts[1])
            if stage == 0:
                return 1 + int(parts[2])
            if stage == 1:  # the downsample
                return 1 + depths[0]
            return 1 + sum(depths[:stage - 1]) + int(parts[2])
        if parts[0] == "post_network":
            return 1 + sum(depths) + int(parts[1])
        if parts[0] in ("norm", "head", "aux_head"):
            return self.num_layers - 1
        return 0

    @property
    def num_layers(self) -> int:
        """Stem, every outlooker, transformer and class-attention block, and the norm with the heads."""
        return sum(self.config.depths) + len(self.post_network) + 2

    def reset_classifier(self, num_classes: int) -> None:
        """Replace ``head`` and ``aux_head`` by fresh ``num_classes``-way layers (0: none)."""
        self.head = new_classifier(self.num_features, num_classes, like=self.norm.weight)
        self.aux_head = new_classifier(self.num_features, num_classes, like=self.norm.weight)
        self.num_classes = num_classes

    def forward_features(self, clip: torch.Tensor) -> torch.Tensor:
        """``(B, 3, T, H, W)`` clip -> normed tokens ``(B, T, 1 + N, C)``, class token first."""
        clips = clip.shape[0]
        x = self.patch_embed(fold_frames(clip)).permute(0, 2, 3, 1)
        if self.time_embed0 is not None:
            x = self.time_embed0(x)
        x = self._run(self.network[0], x)
        x = self.network[1](x)
        x = x + resize_grid(self.pos_embed, x.shape[1:3])
        if self.time_embed is not None:
            x = self.time_embed(x)
        for stage in self.network[2:]:
            x = self._run(stage, x)
        x = x.flatten(1, 2)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1)
        x = self.norm(self._run(self.post_network, x))
        return x.reshape(clips, -1, *x.shape[1:])

    def forward_head(self, features: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """``(B, T, 1 + N, C)`` tokens -> logits, or the ``(B, C)`` mean class token (``pre_logits``).

        Logits: ``head(mean_t cls_t) + 0.5 * mean_t max_n aux_head(x_{t,n})`` (timm's token-labelling
        head, averaged over time; with no classifier the embedding is returned).
        """
        features = self.head_drop(features)
        embedding = features[:, :, 0].mean(dim=1)
        if pre_logits or self.num_classes == 0:
            return embedding
        token_logits = self.aux_head(features[:, :, 1:]).amax(dim=2).mean(dim=1)
        return self.head(embedding) + 0.5 * token_logits

    def _run(self, blocks: nn.Module, x: torch.Tensor) -> torch.Tensor:
        for block in blocks.children():
            x = run_block(block, x, recompute=self.grad_checkpointing)
        return x


def _drop_path_rates(depths: tuple[int, ...], rate: float) -> list[list[float]]:
    """timm's per-block rates, the shared schedule over all blocks, per stage; outlookers get none."""
    rates = drop_path_rates(rate, sum(depths))
    starts = [sum(depths[:stage]) for stage in range(len(depths))]
    return [[0.0 if stage == 0 else rates[starts[stage] + i] for i in range(depth)]
            for stage, depth in enumerate(depths)]


# ---------------------------------------------------------------------------- checkpoints

def can_load(state: Mapping[str, torch.Tensor]) -> bool:
    """VOLO weights (timm's key names, which the official sail-sg files and this project share)."""
    return any(key.startswith("post_network.") for key in state) or (
        "pos_embed" in state and state["pos_embed"].dim() == 4 and any(k.startswith("network.") for k in state))


def resize_weight(key: str, source: torch.Tensor, target: torch.Tensor) -> torch.Tensor | None:
    """The position embedding (bicubic on its grid) and the time embeddings (linear over time)."""
    if key == "pos_embed" and source.dim() == 4 and source.shape[-1] == target.shape[-1]:
        return resize_grid(source, (target.shape[1], target.shape[2]))
    if key in TIME_EMBED_KEYS and source.dim() == 2 and source.shape[1] == target.shape[1]:
        return resize_time_embedding(source, target.shape[0])
    return None


def video_only(key: str) -> bool:
    """Temporal sub-blocks and the two time embeddings: weights no image checkpoint has."""
    return ".temporal." in key or key in TIME_EMBED_KEYS


FAMILY = register_family(ModelFamily(
    name="volo",
    build=lambda arch, num_frames, num_classes: VideoVOLO(arch, num_frames, num_classes),
    # image params at 224, 1000 classes: D1 26.6M, D2 58.7M, D3 86.3M, D4 193.0M, D5 295.5M
    variants={
        "volo_d1": VoloConfig(),
        "volo_d2": VoloConfig(depths=(6, 4, 10, 4), embed_dims=(256, 512, 512, 512), num_heads=(8, 16, 16, 16)),
        "volo_d3": VoloConfig(depths=(8, 8, 16, 4), embed_dims=(256, 512, 512, 512), num_heads=(8, 16, 16, 16)),
        "volo_d4": VoloConfig(depths=(8, 8, 16, 4), embed_dims=(384, 768, 768, 768), num_heads=(12, 16, 16, 16)),
        "volo_d5": VoloConfig(depths=(12, 12, 20, 4), embed_dims=(384, 768, 768, 768), num_heads=(12, 16, 16, 16),
                              mlp_ratio=4.0, stem_hidden_dim=128),
    },
    can_load=can_load,
    tiny_variants=(TinyVariant("volo_d1", dict(embed_dims=[16, 32, 32, 32], num_heads=[1, 2, 2, 2],
                                               depths=[1, 1, 1, 1], img_size=32), image_size=32),),
    video_only=video_only,
    resize_weight=resize_weight,
    inflate_weight=inflate_from_host,
    layouts=(CheckpointLayout("volo_official", key_hint="network."),
             CheckpointLayout("volo_train", weights_key="state_dict", ema_key="state_dict_ema")),
    config_keys=(*INFLATION_CONFIG_KEYS,
                 ConfigKey("IMG_SIZE", 0, "img_size", "input side the position embedding is built for "
                           "(0 = DATA.TRAIN_CROP_SIZE)", resolve=crop_size_unless_set)),
    classifier_prefixes=("head.", "aux_head."),
))
