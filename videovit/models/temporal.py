"""Divided space-time pieces shared by the families that insert temporal layers into an image network
(docs/models.md, "The video design"): their switches and config keys, the temporal block, time embedding
and inflation of temporal weights.

Frames are folded into the batch for all 2-D work, so tokens arrive as ``(B*T, *sites, C)``.
The temporal sub-block regroups them into one sequence over time per spatial site, attends over
the T frames, and adds the result back through a zero-initialised linear layer so that an
inflated image checkpoint computes exactly the image function at the start of finetuning.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from videovit.models.family import ArchConfig, ConfigKey
from videovit.models.layers import Attention
from videovit.models.stochastic_depth import drop_path

TEMPORAL_MARK = ".temporal."  # a host block holds its TemporalBlock as ``temporal``


@dataclass(frozen=True)
class InflatedArchConfig(ArchConfig):
    """The architecture switches of a family that inserts temporal layers into an image network.

    Subclasses calling their own ``__post_init__`` call this one too.
    """

    SWITCHES: ClassVar[bool] = True

    temporal: bool | None = None         # None: temporal layers iff num_frames > 1; False: frame-averaged
    time_embed_init_std: float = 0.0     # 0: zero time embedding, so an inflated image model keeps its function

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.time_embed_init_std < 0:
            raise ValueError(f"time_embed_init_std must be >= 0, got {self.time_embed_init_std}")


# The MODEL.* keys of those switches, declared by each family that has them (docs/adding-a-backbone.md).
INFLATION_CONFIG_KEYS = (
    ConfigKey("TEMPORAL", True, "temporal", "insert the divided space-time temporal layers and the time "
              "embedding (False: the frame-averaged image model)"),
    ConfigKey("TIME_EMBED_INIT_STD", 0.0, "time_embed_init_std", "std of the time embedding's initial values; "
              "0 (docs/models.md): zero, so an inflated image checkpoint starts as the frame-averaged image model. "
              "The demo uses 0.5: with zero, its small model trained on little data did not pick up frame order "
              "within the 10-minute budget"),
)


class TemporalBlock(nn.Module):
    """``x + fc(drop_path(attn(norm(x))))`` over the frame axis, one stochastic-depth draw per clip.

    ``norm``, ``attn`` and ``fc`` are the temporal_norm, temporal_attn and temporal_fc of docs/models.md
    (TimeSformer's checkpoint layout maps its official names onto them); drop path comes before ``fc``, as
    in the official TimeSformer. ``fc`` starts at zero so the block is the identity until training moves it.
    """

    def __init__(self, dim: int, num_heads: int, num_frames: int, qkv_bias: bool = True,
                 drop_path: float = 0.0, norm_eps: float = 1e-6) -> None:
        super().__init__()
        self.num_frames = num_frames
        self.drop_path_rate = drop_path
        self.norm = nn.LayerNorm(dim, eps=norm_eps)
        self.attn = Attention(dim, num_heads=num_heads, qkv_bias=qkv_bias)
        self.fc = nn.Linear(dim, dim)
        nn.init.zeros_(self.fc.weight)
        nn.init.zeros_(self.fc.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: ``(B*T, *sites, C)`` with frames of one clip adjacent; returns the same shape."""
        frames = self.num_frames
        shape = x.shape
        if shape[0] % frames:
            raise ValueError(f"batch of {shape[0]} frame maps is not a multiple of num_frames={frames}")
        clips, channels = shape[0] // frames, shape[-1]
        tokens = x.reshape(clips, frames, -1, channels)                  # (B, T, S, C)
        sites = tokens.shape[2]
        seq = tokens.transpose(1, 2).reshape(clips * sites, frames, channels)
        out = self.along_time(seq, clips)
        out = out.reshape(clips, sites, frames, channels).transpose(1, 2)  # (B, T, S, C)
        return x + out.reshape(shape)

    def along_time(self, sequences: torch.Tensor, clips: int) -> torch.Tensor:
        """The residual for ``(B*S, T, C)`` sequences over time, the S sites of a clip adjacent."""
        attended = self.attn(self.norm(sequences))
        return self.fc(drop_path(attended, self.drop_path_rate, self.training, clips))


def uses_temporal_layers(temporal: bool | None, num_frames: int) -> bool:
    """Temporal layers exist for clips of more than one frame unless ``temporal`` is False."""
    if num_frames < 1:
        raise ValueError(f"num_frames must be >= 1, got {num_frames}")
    return num_frames > 1 and temporal is not False


class TimeEmbedding(nn.Module):
    """Learned per-frame embedding added to ``(B*T, *sites, C)`` tokens.

    Zero-initialised by default (docs/models.md), so an inflated image model keeps its function. A
    positive ``init_std`` draws it from a truncated normal instead: frames then differ from the first
    step, which a from-scratch or small-data run may need to find frame order at all (the demo).
    """

    def __init__(self, num_frames: int, dim: int, init_std: float = 0.0) -> None:
        super().__init__()
        if init_std < 0:
            raise ValueError(f"time embedding init_std must be >= 0, got {init_std}")
        self.num_frames = num_frames
        self.weight = nn.Parameter(torch.zeros(num_frames, dim))
        if init_std > 0:
            nn.init.trunc_normal_(self.weight, std=init_std, a=-2 * init_std, b=2 * init_std)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        frames, channels = self.weight.shape
        clips = x.shape[0] // frames
        view = x.reshape(clips, frames, -1, channels) + self.weight[None, :, None, :].to(x.dtype)
        return view.reshape(x.shape)


def resize_time_embedding(weight: torch.Tensor, num_frames: int) -> torch.Tensor:
    """Linearly interpolate a ``(T, C)`` time embedding to ``num_frames`` rows."""
    if weight.shape[0] == num_frames:
        return weight
    resized = F.interpolate(weight.t()[None], size=num_frames, mode="linear", align_corners=False)
    return resized[0].t().contiguous()


def inflate_from_host(key: str, target: torch.Tensor, state: Mapping[str, torch.Tensor]) -> torch.Tensor | None:
    """Initial value of a ``<host>.temporal.*`` weight of ``target``'s shape from its host block's image
    weights in ``state``, or None (the ``inflate_weight`` hook of the families with a ``TemporalBlock``).

    The TimeSformer convention (docs/checkpoints.md): ``temporal.norm`` <- the host's ``norm1``,
    ``temporal.attn.{qkv,proj}`` <- the host's ``attn.{qkv,proj}``; a host without queries and keys
    (VOLO's outlook attention, ``attn.v``) gives its values to the v slice and q/k start from
    trunc_normal(0.02). ``temporal.fc`` is not inflated: at zero it keeps the image function.
    """
    source = _host_weight(key, state) if TEMPORAL_MARK in key else None
    return source if source is not None and source.shape == target.shape else None


def _host_weight(key: str, state: Mapping[str, torch.Tensor]) -> torch.Tensor | None:
    host, local = key.split(TEMPORAL_MARK, 1)
    part, _, param = local.rpartition(".")
    if part == "norm":
        return state.get(f"{host}.norm1.{param}")
    if part == "attn.proj":
        return state.get(f"{host}.attn.proj.{param}")
    if part != "attn.qkv":
        return None
    qkv = state.get(f"{host}.attn.qkv.{param}")
    value = state.get(f"{host}.attn.v.{param}")
    if qkv is None and value is not None and param == "weight":
        qk = torch.empty(2 * value.shape[0], value.shape[1], dtype=value.dtype)
        nn.init.trunc_normal_(qk, std=0.02)
        return torch.cat([qk, value], dim=0)
    return qkv


def fold_frames(clip: torch.Tensor) -> torch.Tensor:
    """``(B, C, T, H, W)`` clip -> ``(B*T, C, H, W)`` frames, frames of a clip adjacent."""
    if clip.dim() != 5:
        raise ValueError(f"expected a clip of shape (B, C, T, H, W), got {tuple(clip.shape)}")
    b, c, t, h, w = clip.shape
    return clip.transpose(1, 2).reshape(b * t, c, h, w)


def mean_over_frames(x: torch.Tensor, num_frames: int) -> torch.Tensor:
    """``(B*T, ...)`` -> ``(B, ...)`` by averaging the frames of each clip."""
    return x.reshape(x.shape[0] // num_frames, num_frames, *x.shape[1:]).mean(dim=1)
