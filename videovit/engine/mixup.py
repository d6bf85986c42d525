"""Mixup / CutMix for clips ``(B, C, T, H, W)`` with label smoothing, and the soft-target loss.

timm's image Mixup indexes the last two axes of a 4-D batch; on a 5-D clip batch its per-sample
box lands on (T, H) instead of (H, W). Here one box is drawn per batch and cut out of the same
(H, W) region of **every frame**, so the pasted patch is a consistent moving region in time. The
batch is mixed with its reverse (sample i with sample B-1-i), lambda is corrected for the box
area actually pasted, and targets are ``lam * y_i + (1 - lam) * y_{B-1-i}`` after smoothing. Every
draw comes from the ``numpy.random.Generator`` the caller passes (the Trainer derives one per
micro-batch, see docs/engine.md), never from the global ``np.random``.
"""
from __future__ import annotations

import math

import numpy as np
import torch
from timm.data.mixup import mixup_target
from timm.loss import SoftTargetCrossEntropy
from yacs.config import CfgNode

CLIP_DIMS = 5


def soft_targets(labels: torch.Tensor, num_classes: int, smoothing: float) -> torch.Tensor:
    """One-hot targets with label smoothing (``smoothing / K`` off, ``1 - smoothing + smoothing / K`` on)."""
    return mixup_target(labels, num_classes, lam=1.0, smoothing=smoothing)


class VideoMixup:
    """Mixup (Beta(alpha)) or CutMix (Beta(cutmix_alpha)) on a clip batch, one draw per batch."""

    def __init__(self, num_classes: int, mixup_alpha: float = 0.8, cutmix_alpha: float = 1.0,
                 prob: float = 1.0, switch_prob: float = 0.5, label_smoothing: float = 0.1) -> None:
        if mixup_alpha <= 0 and cutmix_alpha <= 0:
            raise ValueError("VideoMixup needs mixup_alpha > 0 or cutmix_alpha > 0")
        self.num_classes = num_classes
        self.mixup_alpha = mixup_alpha
        self.cutmix_alpha = cutmix_alpha
        self.prob = prob
        self.switch_prob = switch_prob
        self.label_smoothing = label_smoothing

    def draw(self, rng: np.random.Generator) -> tuple[float, bool]:
        """(lambda, use_cutmix) for one batch; lambda 1 means the batch stays unmixed."""
        if rng.random() >= self.prob:
            return 1.0, False
        use_cutmix = self.cutmix_alpha > 0 and (self.mixup_alpha <= 0 or rng.random() < self.switch_prob)
        alpha = self.cutmix_alpha if use_cutmix else self.mixup_alpha
        return float(rng.beta(alpha, alpha)), use_cutmix

    def __call__(self, clips: torch.Tensor, labels: torch.Tensor,
                 rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """Mix ``clips`` (B, C, T, H, W) in place and return them with (B, K) soft targets."""
        if clips.dim() != CLIP_DIMS:
            raise ValueError(f"VideoMixup expects clips of shape (B, C, T, H, W), got {tuple(clips.shape)}")
        lam, use_cutmix = self.draw(rng)
        if lam < 1.0:
            lam = paste_box(clips, lam, rng) if use_cutmix else blend(clips, lam)
        return clips, mixup_target(labels, self.num_classes, lam, self.label_smoothing)


def blend(clips: torch.Tensor, lam: float) -> float:
    """Mixup: ``clips = lam * clips + (1 - lam) * reversed(clips)`` in place; returns ``lam``."""
    partner = clips.flip(0).mul_(1.0 - lam)
    clips.mul_(lam).add_(partner)
    return lam


def cutmix_box(height: int, width: int, lam: float, rng: np.random.Generator) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) of a box covering about ``1 - lam`` of the frame: sides scaled by
    sqrt(1 - lam), centre uniform over the frame, clipped at the borders."""
    ratio = math.sqrt(1.0 - lam)
    cut_h, cut_w = int(height * ratio), int(width * ratio)
    centre_y, centre_x = int(rng.integers(height)), int(rng.integers(width))
    top, bottom = max(centre_y - cut_h // 2, 0), min(centre_y + (cut_h + 1) // 2, height)
    left, right = max(centre_x - cut_w // 2, 0), min(centre_x + (cut_w + 1) // 2, width)
    return top, bottom, left, right


def paste_box(clips: torch.Tensor, lam: float, rng: np.random.Generator) -> float:
    """CutMix: one (H, W) box from the reversed batch pasted into every frame, in place.

    Returns lambda corrected to the fraction of each frame left unreplaced.
    """
    height, width = clips.shape[-2:]
    top, bottom, left, right = cutmix_box(height, width, lam, rng)
    clips[..., top:bottom, left:right] = clips.flip(0)[..., top:bottom, left:right]
    return 1.0 - (bottom - top) * (right - left) / float(height * width)


def build_mixup(cfg: CfgNode) -> VideoMixup | None:
    """The configured ``VideoMixup``, or None when MIXUP.ENABLE is False."""
    mx = cfg.MIXUP
    if not mx.ENABLE:
        return None
    return VideoMixup(cfg.MODEL.NUM_CLASSES, mixup_alpha=mx.ALPHA, cutmix_alpha=mx.CUTMIX_ALPHA,
                      prob=mx.PROB, switch_prob=mx.SWITCH_PROB, label_smoothing=mx.LABEL_SMOOTHING)


__all__ = ["SoftTargetCrossEntropy", "VideoMixup", "blend", "build_mixup", "cutmix_box", "paste_box",
           "soft_targets"]
