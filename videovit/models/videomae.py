"""VideoMAE (Tong et al. 2022), the finetuning architecture, as a video-native backbone (docs/models.md).

A plain ViT over space-time tubelets: one Conv3d cuts a clip into 2x16x16 tubelets (16 frames at 224 give
8x14x14 = 1568 tokens), a fixed sinusoidal position table is added (not a parameter, not in checkpoints),
pre-norm blocks attend over all tokens with learned query and value biases (the keys have none), and the
head averages the tokens, normalises them (``fc_norm``) and classifies. No temporal layers are inserted
into an image network, so the family has none of the inflation switches; ImageNet ViT files still start
it, their 2-D patch kernel spread over the tubelet's frames (kernel inflation).

Parameter names are those of the official MCG-NJU/VideoMAE finetuning model (``blocks.i.attn.qkv`` with
``q_bias`` / ``v_bias``, ``fc_norm``, ``head``), so its files load as they are; transformers'
VideoMAEForVideoClassification files are renamed (and their q/k/v fused) by the checkpoint hooks.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
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
from videovit.models.positions import resize_token_table
from videovit.models.recompute import run_block
from videovit.models.registry import register_family
from videovit.models.stochastic_depth import drop_path, drop_path_rates
from videovit.models.vit_config import ViTArchConfig


@dataclass(frozen=True)
class VideoMAEConfig(ViTArchConfig):
    """Architecture of a VideoMAE variant (the one-stage ViT fields and the tubelet) plus the switches
    ``create_model`` may override. ``qkv_bias``: learned query and value biases (never a key bias)."""

    label: ClassVar[str] = "VideoMAE"

    tubelet_size: int = 2                    # frames of a tubelet
    norm_eps: float = 1e-6                   # LayerNorm eps (official 1e-6; a transformers config.json says)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.tubelet_size < 1:
            raise ValueError(f"VideoMAE tubelet_size must be >= 1, got {self.tubelet_size}")
        if self.norm_eps <= 0:
            raise ValueError(f"VideoMAE norm_eps must be > 0, got {self.norm_eps}")


def sinusoid_table(positions: int, dim: int) -> torch.Tensor:
    """The official fixed position table ``(1, positions, dim)``: channel ``j`` of position ``p`` is
    ``sin`` (even ``j``) or ``cos`` (odd ``j``) of ``p / 10000^(2 * (j // 2) / dim)``, computed in float64."""
    channel = torch.arange(dim, dtype=torch.float64)
    frequency = torch.pow(10000.0, 2 * torch.div(channel, 2, rounding_mode="floor") / dim)
    angle = torch.arange(positions, dtype=torch.float64)[:, None] / frequency
    return torch.where(channel % 2 == 0, angle.sin(), angle.cos()).float()[None]


class QVBiasAttention(Attention):
    """Multi-head attention whose queries and values have learned biases and whose keys have none
    (``qkv`` without bias, ``q_bias``, ``v_bias``: the official names). A key bias would not change the
    attention (it shifts every logit of a query alike), so none is kept."""

    def __init__(self, dim: int, num_heads: int, qkv_bias: bool = True) -> None:
        super().__init__(dim, num_heads=num_heads, qkv_bias=False)
        self.q_bias = nn.Parameter(torch.zeros(dim)) if qkv_bias else None
        self.v_bias = nn.Parameter(torch.zeros(dim)) if qkv_bias else None

    def project_qkv(self, x: torch.Tensor) -> torch.Tensor:
        if self.q_bias is None or self.v_bias is None:
            return self.qkv(x)
        bias = torch.cat([self.q_bias, torch.zeros_like(self.q_bias), self.v_bias])
        return F.linear(x, self.qkv.weight, bias)


class TubeletEmbed(nn.Module):
    """Clips ``(B, 3, T, H, W)`` -> ``(B, C, T/t, H/p, W/p)`` tubelet embeddings by one Conv3d."""

    def __init__(self, dim: int, tubelet: int, patch: int) -> None:
        super().__init__()
        self.proj = nn.Conv3d(3, dim, kernel_size=(tubelet, patch, patch), stride=(tubelet, patch, patch))

    def forward(self, clip: torch.Tensor) -> torch.Tensor:
        return self.proj(clip)


class Block(nn.Module):
    """Pre-norm ViT block: ``x + attn(norm1(x))``, then ``x + mlp(norm2(x))``, drop path per clip."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float, qkv_bias: bool, drop_path: float,
                 norm_eps: float) -> None:
        super().__init__()
        self.drop_path = drop_path
        self.norm1 = nn.LayerNorm(dim, eps=norm_eps)
        self.attn = QVBiasAttention(dim, num_heads, qkv_bias=qkv_bias)
        self.norm2 = nn.LayerNorm(dim, eps=norm_eps)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), act_layer=nn.GELU)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: ``(B, N, C)`` tokens of B clips; same shape out."""
        x = x + drop_path(self.attn(self.norm1(x)), self.drop_path, self.training)
        return x + drop_path(self.mlp(self.norm2(x)), self.drop_path, self.training)


class VideoMAE(VideoBackbone):
    """VideoMAE for clips ``(B, 3, T, H, W)``, T a multiple of ``tubelet_size``.

    Built for ``num_frames`` and ``config.img_size``; frames of another size take the position table
    resized to their tubelet grid (the one policy of ``videovit.models.positions``).
    """

    family = "videomae"
    features_layout = ("(B, T/2 * N, C): the last block's tokens, tubelet-major (time, then rows, then columns), "
                       "not normed (the head averages them, then fc_norm)")
    pos_table: torch.Tensor

    def __init__(self, config: VideoMAEConfig, num_frames: int = 16, num_classes: int = 400) -> None:
        super().__init__()
        if num_frames < 1 or num_frames % config.tubelet_size:
            raise ValueError(f"VideoMAE needs num_frames to be a positive multiple of tubelet_size "
                             f"{config.tubelet_size}, got {num_frames}")
        self.config = config
        self.num_frames = num_frames
        self.num_classes = num_classes
        self.temporal = True  # tubelets and the position table are built for num_frames
        self.grad_checkpointing = config.act_checkpoint
        self.num_features = dim = config.width
        self.token_grid = (num_frames // config.tubelet_size, config.grid, config.grid)

        self.patch_embed = TubeletEmbed(dim, config.tubelet_size, config.patch_size)
        tokens = self.token_grid[0] * self.token_grid[1] * self.token_grid[2]
        self.register_buffer("pos_table", sinusoid_table(tokens, dim), persistent=False)
        rates = drop_path_rates(config.drop_path_rate, config.depth)
        self.blocks = nn.ModuleList(Block(dim, config.num_heads[0], config.mlp_ratio, config.qkv_bias, rate,
                                          config.norm_eps) for rate in rates)
        self.fc_norm = nn.LayerNorm(dim, eps=config.norm_eps)
        self.head_drop = nn.Dropout(config.drop_rate)
        self.head = new_classifier(dim, num_classes)
        init_weights(self)

    @property
    def num_layers(self) -> int:
        """Layer groups for layer-wise lr decay: the tubelet embedding, each block, fc_norm and head."""
        return len(self.blocks) + 2

    def reset_classifier(self, num_classes: int) -> None:
        """Replace the head by a freshly initialised one for ``num_classes`` (0: no head, identity)."""
        self.head = new_classifier(self.num_features, num_classes, like=self.fc_norm.weight)
        self.num_classes = num_classes

    def no_weight_decay(self) -> set[str]:
        """None besides the 1-D parameters (the position table is fixed, there is no class token)."""
        return set()

    def layer_id(self, name: str) -> int:
        """0: the tubelet embedding; i + 1: ``blocks.i``; num_layers - 1: fc_norm and the head."""
        if name.startswith("blocks."):
            return int(name.split(".")[1]) + 1
        return self.num_layers - 1 if name.startswith(("fc_norm.", "head.")) else 0

    def forward_features(self, clip: torch.Tensor) -> torch.Tensor:
        """``(B, 3, T, H, W)`` clip -> ``(B, T/2 * N, C)`` tokens of the last block."""
        tokens = self.patch_embed(clip)                                 # (B, C, T/2, h, w)
        grid = (tokens.shape[3], tokens.shape[4])
        tokens = tokens.flatten(2).transpose(1, 2) + self._pos_table(grid).to(tokens.dtype)
        for block in self.blocks:
            tokens = run_block(block, tokens, recompute=self.grad_checkpointing)
        return tokens

    def forward_head(self, features: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """Tokens -> logits, or with ``pre_logits`` the ``(B, C)`` embedding ``fc_norm(mean of the tokens)``."""
        pooled = self.head_drop(self.fc_norm(features.mean(dim=1)))
        return pooled if pre_logits else self.head(pooled)

    def _pos_table(self, grid: tuple[int, int]) -> torch.Tensor:
        built = self.token_grid[1:]
        return self.pos_table if grid == built else resize_token_table(self.pos_table, built, grid)


# ---- checkpoint hooks (docs/checkpoints.md) ---------------------------------------------------------

TRANSFORMERS_PREFIXES = ("videomae.", "classifier.")
# transformers' VideoMAEForVideoClassification names; its separate query/key/value are fused below.
TRANSFORMERS_NAMES = KeyMap((
    ("patch_embed.proj.", "videomae.embeddings.patch_embeddings.projection."),
    ("blocks.{i}.norm1.", "videomae.encoder.layer.{i}.layernorm_before."),
    ("blocks.{i}.attn.proj.", "videomae.encoder.layer.{i}.attention.output.dense."),
    ("blocks.{i}.norm2.", "videomae.encoder.layer.{i}.layernorm_after."),
    ("blocks.{i}.mlp.fc1.", "videomae.encoder.layer.{i}.intermediate.dense."),
    ("blocks.{i}.mlp.fc2.", "videomae.encoder.layer.{i}.output.dense."),
    ("fc_norm.", "fc_norm."),
    ("head.", "classifier."),
))
TRANSFORMERS_ATTENTION = "videomae.encoder.layer.{i}.attention.attention."
QKV = ("query", "key", "value")


def checkpoint_filter_fn(state: Mapping[str, torch.Tensor], model: nn.Module | None) -> dict[str, torch.Tensor]:
    """Any VideoMAE or ImageNet ViT state dict under this model's names.

    Official MCG-NJU files already use them. A transformers state dict is renamed and its
    ``query``/``key``/``value`` weights fused into ``qkv``; its query and value biases (``q_bias`` /
    ``v_bias`` in its files, ``query.bias`` / ``value.bias`` in the loaded model) become ``q_bias`` and
    ``v_bias``. An ImageNet ViT (timm, DeiT) gives the q and v parts of its ``qkv.bias`` (its key bias
    changes no attention) and its final ``norm`` as ``fc_norm``; its 2-D patch kernel is inflated by
    ``inflate_weight``, its ``cls_token`` and ``pos_embed`` stay unused.
    """
    if any(key.startswith(TRANSFORMERS_PREFIXES) for key in state):
        return _from_transformers(state)
    out = dict(state)
    for key in [key for key in out if key.endswith(".attn.qkv.bias")]:
        q, _, v = out.pop(key).chunk(3)
        out[key.replace("qkv.bias", "q_bias")], out[key.replace("qkv.bias", "v_bias")] = q, v
    if "fc_norm.weight" not in out and "cls_token" in out:
        for param in ("weight", "bias"):
            if f"norm.{param}" in out:
                out[f"fc_norm.{param}"] = out.pop(f"norm.{param}")
    return out


def _from_transformers(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    out = TRANSFORMERS_NAMES.rename_to_ours(state)
    blocks = {int(key.split(".")[3]) for key in state if key.startswith("videomae.encoder.layer.")}
    for i in sorted(blocks):
        prefix = TRANSFORMERS_ATTENTION.replace("{i}", str(i))
        weights = [out.pop(f"{prefix}{part}.weight", None) for part in QKV]
        if all(weight is not None for weight in weights):
            out[f"blocks.{i}.attn.qkv.weight"] = torch.cat(weights)   # type: ignore[arg-type]
        for part, ours in (("query", "q_bias"), ("value", "v_bias")):
            bias = out.pop(f"{prefix}{part}.bias", None)   # the model's name; its files keep q_bias / v_bias
            bias = out.pop(f"{prefix}{ours}", None) if bias is None else bias
            if bias is not None:
                out[f"blocks.{i}.attn.{ours}"] = bias
    return out


def can_load(state: Mapping[str, torch.Tensor]) -> bool:
    """True for VideoMAE state dicts (official, transformers or ours) and ImageNet ViT files.

    A tubelet (5-D) patch kernel and a fused ``qkv``; or a ViT image file: a 2-D patch kernel, a class
    token and no temporal weights (a TimeSformer video file is not a VideoMAE).
    """
    state = checkpoint_filter_fn(state, None)
    patch = state.get("patch_embed.proj.weight")
    if patch is None or "blocks.0.attn.qkv.weight" not in state:
        return False
    if patch.dim() == 5:
        return True
    video = any(".temporal" in key for key in state) or "time_embed" in state
    return patch.dim() == 4 and "cls_token" in state and not video


def inflate_weight(key: str, target: torch.Tensor, state: Mapping[str, torch.Tensor]) -> torch.Tensor | None:
    """The tubelet kernel from an image's 2-D patch kernel, spread evenly over the tubelet's frames
    (I3D): on a clip of identical frames the embedding is the image's."""
    source = state.get(key)
    if key != "patch_embed.proj.weight" or source is None or source.dim() != 4 or target.dim() != 5:
        return None
    frames = target.shape[2]
    return source[:, :, None].expand(-1, -1, frames, -1, -1) / frames


# ---- transformers' VideoMAEForVideoClassification (docs/checkpoints.md) ----------------------------

VARIANT_BY_WIDTH = {384: "videomae_s", 768: "videomae_b", 1024: "videomae_l"}


def read_transformers_config(config: Mapping[str, Any]) -> tuple[str, int, dict[str, Any]]:
    """The model name, frame count and overrides a VideoMAEConfig (config.json) describes."""
    if not config.get("use_mean_pooling", True):
        raise ValueError("use_mean_pooling false is not supported: videovit's VideoMAE is the mean-pooling "
                         "finetuning model")
    if config.get("hidden_act", "gelu") != "gelu":
        raise ValueError(f"hidden_act {config['hidden_act']!r} is not supported: videovit's VideoMAE uses gelu")
    width = config.get("hidden_size", 768)
    overrides = {"embed_dims": [width], "depths": [config.get("num_hidden_layers", 12)],
                 "num_heads": [config.get("num_attention_heads", 12)], "patch_size": config.get("patch_size", 16),
                 "tubelet_size": config.get("tubelet_size", 2), "img_size": config.get("image_size", 224),
                 "mlp_ratio": config.get("intermediate_size", 3072) / width,
                 "qkv_bias": config.get("qv_bias", config.get("qkv_bias", True)),
                 "norm_eps": config.get("layer_norm_eps", 1e-12)}
    return VARIANT_BY_WIDTH.get(width, "videomae_b"), int(config.get("num_frames", 16)), overrides


def write_transformers_config(model: VideoBackbone) -> dict[str, Any]:
    """The VideoMAEConfig fields that describe ``model``."""
    assert isinstance(model, VideoMAE)
    config = model.config
    return {"image_size": config.img_size, "patch_size": config.patch_size, "num_channels": 3,
            "num_frames": model.num_frames, "tubelet_size": config.tubelet_size, "hidden_size": config.width,
            "num_hidden_layers": config.depth, "num_attention_heads": config.num_heads[0],
            "intermediate_size": int(config.width * config.mlp_ratio), "hidden_act": "gelu",
            "hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0, "initializer_range": 0.02,
            "layer_norm_eps": config.norm_eps, "qv_bias": config.qkv_bias, "use_mean_pooling": True}


def export_transformers_state_dict(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``state`` (this model's names) under VideoMAEForVideoClassification's names."""
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        parts = key.split(".")
        if parts[0] == "blocks" and parts[2] == "attn" and parts[3] in ("qkv", "q_bias", "v_bias"):
            prefix = TRANSFORMERS_ATTENTION.replace("{i}", parts[1])
            if parts[3] == "qkv":
                for part, weight in zip(QKV, value.chunk(3), strict=True):
                    out[f"{prefix}{part}.{parts[4]}"] = weight.contiguous()
            else:
                out[f"{prefix}{parts[3]}"] = value   # the name transformers' save_pretrained writes
            continue
        name = TRANSFORMERS_NAMES.to_theirs(key)
        if name is None:
            raise ValueError(f"{key} has no transformers name")
        out[name] = value
    return out


FAMILY = register_family(ModelFamily(
    name="videomae",
    build=lambda arch, num_frames, num_classes: VideoMAE(arch, num_frames, num_classes),
    # ViT-S/B/L on 2x16x16 tubelets (the paper's finetuning models; B with 400 classes: 86,534,800 parameters)
    variants={"videomae_s": VideoMAEConfig(embed_dims=(384,), num_heads=(6,)),
              "videomae_b": VideoMAEConfig(),
              "videomae_l": VideoMAEConfig(embed_dims=(1024,), depths=(24,), num_heads=(16,))},
    tiny_variants=(TinyVariant("videomae_b", dict(embed_dims=[16], depths=[2], num_heads=[2], patch_size=8,
                                                  img_size=32), image_size=32),),
    can_load=can_load,
    filter_state_dict=checkpoint_filter_fn,
    inflate_weight=inflate_weight,
    layouts=(CheckpointLayout("videomae_official", weights_key="model"),            # MCG-NJU releases
             CheckpointLayout("videomae_official_module", weights_key="module")),   # their DeepSpeed saves
    config_keys=(
        ConfigKey("IMG_SIZE", 0, "img_size", "input side the position embedding is built for "
                  "(0 = DATA.TRAIN_CROP_SIZE)", resolve=crop_size_unless_set),
        ConfigKey("PATCH_SIZE", 0, "patch_size", "patch side (0 = the variant's own: 16)", unset=0),
        ConfigKey("NORM_EPS", 0.0, "norm_eps", "VideoMAE LayerNorm eps (0 = the variant's own: 1e-6, the official "
                  "value; a transformers folder's config.json gives its own)", unset=0.0),
    ),
    transformers=TransformersFormat(
        model_type="videomae", architecture="VideoMAEForVideoClassification",
        read_config=read_transformers_config, write_config=write_transformers_config,
        export_state_dict=export_transformers_state_dict),
))
