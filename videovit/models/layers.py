"""Building blocks shared by the model families."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def head_dim(dim: int, num_heads: int) -> int:
    """Width of one attention head; ValueError unless ``num_heads`` splits ``dim`` evenly."""
    if dim % num_heads:
        raise ValueError(f"dim {dim} is not divisible by num_heads {num_heads}")
    return dim // num_heads


class Attention(nn.Module):
    """Multi-head self-attention through ``scaled_dot_product_attention``.

    Biases and masks are passed as one additive float mask so that fused kernels apply on GPUs.
    Parameter names (``qkv``, ``proj``) follow the official checkpoints of both families.
    """

    def __init__(self, dim: int, num_heads: int, qkv_bias: bool = True, attn_drop: float = 0.0,
                 proj_drop: float = 0.0) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = head_dim(dim, num_heads)
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.attn_drop = attn_drop
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)

    def forward(self, x: torch.Tensor, attn_mask: torch.Tensor | None = None) -> torch.Tensor:
        """``x``: ``(B, N, C)``; ``attn_mask``: additive, broadcastable to ``(B, heads, N, N)``."""
        b, n, c = x.shape
        qkv = self.project_qkv(x).reshape(b, n, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        if attn_mask is not None:
            attn_mask = attn_mask.to(q.dtype)
        out = F.scaled_dot_product_attention(
            q, k, v, attn_mask=attn_mask, dropout_p=self.attn_drop if self.training else 0.0)
        return self.proj_drop(self.proj(out.transpose(1, 2).reshape(b, n, c)))

    def project_qkv(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, N, C)`` -> queries, keys and values side by side ``(B, N, 3C)`` (a subclass may bias them)."""
        return self.qkv(x)


class ClassAttention(nn.Module):
    """Class attention (CaiT; VOLO's post-network): the class token alone queries every token, through
    ``scaled_dot_product_attention``. Parameter names (``kv``, ``q``, ``proj``) are timm's and the
    official VOLO's, so it replaces timm's explicit matmul-softmax module without changing a checkpoint.
    """

    def __init__(self, dim: int, num_heads: int, qkv_bias: bool = False) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = head_dim(dim, num_heads)
        self.kv = nn.Linear(dim, dim * 2, bias=qkv_bias)
        self.q = nn.Linear(dim, dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: ``(B, N, C)``, class token first; returns the class token's update ``(B, 1, C)``."""
        b, n, c = x.shape
        k, v = self.kv(x).reshape(b, n, 2, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4).unbind(0)
        q = self.q(x[:, :1]).reshape(b, 1, self.num_heads, self.head_dim).transpose(1, 2)
        out = F.scaled_dot_product_attention(q, k, v)
        return self.proj(out.transpose(1, 2).reshape(b, 1, c))
