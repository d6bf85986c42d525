"""Video Mixup/CutMix: one box through all frames, label mixing that sums to one."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from videovit.engine.mixup import VideoMixup, soft_targets


def _clips(batch: int = 4, frames: int = 5, size: int = 32) -> torch.Tensor:
    """Each clip filled with its own constant value (clip i = i + 1) so pasted pixels are traceable."""
    values = torch.arange(1, batch + 1, dtype=torch.float32)
    return values.view(batch, 1, 1, 1, 1).expand(batch, 3, frames, size, size).clone()


def test_cutmix_box_is_the_same_region_in_every_frame() -> None:
    rng = np.random.default_rng(3)
    mixer = VideoMixup(num_classes=4, mixup_alpha=0.0, cutmix_alpha=1.0, label_smoothing=0.0)
    clips = _clips()
    mixed, targets = mixer(clips.clone(), torch.arange(4), rng)
    batch, _, frames, height, width = mixed.shape
    for i in range(batch):
        partner = batch - 1 - i
        pasted = mixed[i] == partner + 1                     # (C, T, H, W)
        region = pasted[0, 0]
        assert region.any() and not region.all(), "the draw should paste a proper sub-box"
        for t in range(frames):
            assert torch.equal(pasted[:, t], region.expand(3, height, width)), f"frame {t} differs"
        rows, cols = region.any(dim=1).nonzero(), region.any(dim=0).nonzero()
        box = region[rows.min():rows.max() + 1, cols.min():cols.max() + 1]
        assert box.all(), "the pasted pixels form one rectangle"
        kept_fraction = 1.0 - region.float().mean().item()
        assert targets[i, i].item() == pytest.approx(kept_fraction, abs=1e-6)
        assert targets[i, partner].item() == pytest.approx(1.0 - kept_fraction, abs=1e-6)


def test_cutmix_keeps_time_axis_intact() -> None:
    """The bug this guards against: a 5-D batch given to an image CutMix cuts along T and H."""
    rng = np.random.default_rng(11)
    mixer = VideoMixup(num_classes=2, mixup_alpha=0.0, cutmix_alpha=1.0, label_smoothing=0.0)
    clips = torch.randn(2, 3, 4, 24, 40)
    mixed, _ = mixer(clips.clone(), torch.tensor([0, 1]), rng)
    changed = (mixed != clips).any(dim=1)                   # (B, T, H, W)
    assert changed.any()
    assert torch.equal(changed.all(dim=1), changed.any(dim=1)), "every frame must change in the same pixels"


@pytest.mark.parametrize("mixup_alpha,cutmix_alpha,smoothing", [(0.8, 0.0, 0.1), (0.0, 1.0, 0.1), (0.8, 1.0, 0.0)])
def test_mixed_targets_sum_to_one_and_blend_matches_lambda(mixup_alpha: float, cutmix_alpha: float,
                                                         smoothing: float) -> None:
    rng = np.random.default_rng(5)
    num_classes = 7
    mixer = VideoMixup(num_classes, mixup_alpha=mixup_alpha, cutmix_alpha=cutmix_alpha,
                       label_smoothing=smoothing)
    labels = torch.tensor([0, 3, 5, 6])
    for _ in range(10):
        clips = _clips()
        mixed, targets = mixer(clips.clone(), labels, rng)
        assert targets.shape == (4, num_classes)
        assert torch.allclose(targets.sum(dim=1), torch.ones(4), atol=1e-6)
        assert (targets >= 0).all()
        if cutmix_alpha == 0.0:
            lam = (targets[0, 0] - smoothing / num_classes) / (1.0 - smoothing)
            expected = lam * 1.0 + (1.0 - lam) * 4.0           # clip 0 (value 1) blended with clip 3 (value 4)
            assert torch.allclose(mixed[0], torch.full_like(mixed[0], expected.item()), atol=1e-5)


def test_smoothing_only_targets() -> None:
    targets = soft_targets(torch.tensor([2, 0]), num_classes=4, smoothing=0.2)
    assert torch.allclose(targets[0], torch.tensor([0.05, 0.05, 0.85, 0.05]))
    assert torch.allclose(targets.sum(dim=1), torch.ones(2))


def test_rejects_image_batches_and_disabled_alphas() -> None:
    with pytest.raises(ValueError, match="mixup_alpha > 0 or cutmix_alpha > 0"):
        VideoMixup(3, mixup_alpha=0.0, cutmix_alpha=0.0)
    with pytest.raises(ValueError, match=r"\(B, C, T, H, W\)"):
        VideoMixup(3)(torch.zeros(2, 3, 8, 8), torch.tensor([0, 1]), np.random.default_rng(0))


def test_draws_come_from_the_given_generator_only() -> None:
    """Same generator seed, same mix; the global numpy stream is neither used nor moved."""
    mixer = VideoMixup(num_classes=4, mixup_alpha=0.8, cutmix_alpha=1.0, label_smoothing=0.1)
    before = np.random.get_state()[1].copy()
    first = mixer(_clips(), torch.arange(4), np.random.default_rng(7))
    second = mixer(_clips(), torch.arange(4), np.random.default_rng(7))
    assert all(torch.equal(a, b) for a, b in zip(first, second, strict=True))
    assert np.array_equal(np.random.get_state()[1], before)
