"""Spatial pipeline: crop geometry, flip rules, clip-consistent RandAugment and erasing."""
from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from PIL import Image

from videovit.config import validate_config
from videovit.config.defaults import get_defaults
from videovit.data.transforms import (
    ClipRandAugment,
    TrainTransform,
    ViewTransform,
    build_train_transform,
    build_view_transform,
    erase_box,
    frames_to_tensor,
    load_flip_class_swap,
    resize_short_side,
    spatial_crop_origins,
)
from videovit.errors import ConfigError

IDENTITY_NORM = dict(mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))


def _random_frames(num_frames: int, height: int, width: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (num_frames, height, width, 3), dtype=np.uint8)


def _as_uint8_frames(clip: torch.Tensor) -> np.ndarray:
    """Undo the identity normalisation: float (C, T, H, W) in [0, 1] -> uint8 (T, H, W, C)."""
    return (clip.permute(1, 2, 3, 0) * 255).round().to(torch.uint8).numpy()


def _generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# ---------------------------------------------------------------------------- test-view geometry

def test_corner_crops_landscape():
    assert spatial_crop_origins(256, 340, 224, 3) == [(0, 0), (16, 58), (32, 116)]


def test_corner_crops_portrait():
    assert spatial_crop_origins(340, 256, 224, 3) == [(0, 0), (58, 16), (116, 32)]


def test_single_crop_is_the_centre():
    assert spatial_crop_origins(256, 340, 224, 1) == [(16, 58)]


def test_uniform_mode_crops_along_the_long_side():
    # short side = crop size: left/centre/right (landscape), top/centre/bottom (portrait)
    assert spatial_crop_origins(224, 297, 224, 3) == [(0, 0), (0, 37), (0, 73)]
    assert spatial_crop_origins(297, 224, 224, 3) == [(0, 0), (37, 0), (73, 0)]


def test_crop_errors():
    with pytest.raises(ValueError, match="1 or 3"):
        spatial_crop_origins(256, 340, 224, 2)
    with pytest.raises(ValueError, match="does not fit"):
        spatial_crop_origins(200, 340, 224, 1)


@pytest.mark.parametrize("height, width", [(256, 340), (340, 256)])
def test_view_transform_returns_the_pixels_of_each_crop(height, width):
    frames = _random_frames(2, height, width)
    view = ViewTransform(scale=256, crop_size=224, num_crops=3, **IDENTITY_NORM)  # no resize: short side 256
    for index, (top, left) in enumerate(spatial_crop_origins(height, width, 224, 3)):
        clip = view(frames, index)
        assert clip.shape == (3, 2, 224, 224)
        np.testing.assert_array_equal(_as_uint8_frames(clip), frames[:, top:top + 224, left:left + 224])


@pytest.mark.parametrize("mode, height, width, expected", [
    ("corners", 256, 340, (256, 340)),   # TEST_SCALE 256: nothing to resize
    ("corners", 128, 170, (256, 340)),
    ("uniform", 256, 340, (224, 297)),   # short side = crop size
    ("uniform", 340, 256, (297, 224)),
])
def test_view_transform_resizes_short_side_per_mode(mode, height, width, expected):
    cfg = get_defaults()
    cfg.DATA.TEST_CROP_MODE = mode
    view = build_view_transform(cfg, num_crops=3)
    assert view.scale == (256 if mode == "corners" else 224)
    resized = resize_short_side(frames_to_tensor(_random_frames(1, height, width)), view.scale)
    assert tuple(resized.shape[-2:]) == expected
    assert view(_random_frames(1, height, width), 2).shape == (3, 1, 224, 224)


def test_view_transform_normalises_with_imagenet_statistics():
    cfg = get_defaults()
    frames = np.full((1, 256, 256, 3), 255, dtype=np.uint8)
    clip = build_view_transform(cfg, num_crops=1)(frames, 0)
    expected = [(1 - m) / s for m, s in zip(cfg.DATA.MEAN, cfg.DATA.STD, strict=True)]
    torch.testing.assert_close(clip[:, 0, 100, 100], torch.tensor(expected))


# ---------------------------------------------------------------------------- training pipeline

def _flip_outcomes(transform: TrainTransform, frames: np.ndarray, label: int) -> list[tuple[bool, int]]:
    """(was the clip flipped, label) for 30 seeds; frames are as large as the crop, so only flips vary."""
    outcomes = []
    for seed in range(30):
        clip, out_label = transform(frames, label, _generator(seed))
        pixels = _as_uint8_frames(clip)
        flipped = np.array_equal(pixels, frames[:, :, ::-1])
        assert flipped or np.array_equal(pixels, frames)
        outcomes.append((flipped, out_label))
    return outcomes


def _train_cfg(size: int):
    cfg = get_defaults()
    cfg.DATA.TRAIN_JITTER_SCALES = [size, size]
    cfg.DATA.TRAIN_CROP_SIZE = size
    cfg.DATA.MEAN, cfg.DATA.STD = [0.0] * 3, [1.0] * 3
    return cfg


def test_kinetics_flips_about_half_the_clips_and_keeps_the_label():
    frames = _random_frames(2, 32, 32)
    outcomes = _flip_outcomes(build_train_transform(_train_cfg(32), "kinetics"), frames, label=5)
    assert 5 <= sum(flipped for flipped, _ in outcomes) <= 25
    assert all(label == 5 for _, label in outcomes)


def test_ssv2_flip_without_a_swap_map_is_an_error_before_any_work():
    cfg = _train_cfg(32)
    cfg.DATA.DATASET = "ssv2"
    with pytest.raises(ConfigError, match="DATA.RANDOM_FLIP True on SSV2 needs DATA.FLIP_CLASS_SWAP"):
        validate_config(cfg)
    with pytest.raises(ValueError, match="DATA.RANDOM_FLIP True on SSV2 needs DATA.FLIP_CLASS_SWAP"):
        build_train_transform(cfg, "ssv2")
    cfg.DATA.RANDOM_FLIP = False
    validate_config(cfg)
    transform = build_train_transform(cfg, "ssv2")
    assert not transform.flip
    assert not any(flipped for flipped, _ in _flip_outcomes(transform, _random_frames(2, 32, 32), label=2))


def test_ssv2_flip_with_class_swap_swaps_direction_labels(tmp_path):
    swap_file = tmp_path / "flip_swap.txt"
    swap_file.write_text("2 3\n\n86 87\n")
    cfg = _train_cfg(32)
    cfg.DATA.FLIP_CLASS_SWAP = str(swap_file)
    transform = build_train_transform(cfg, "ssv2")
    frames = _random_frames(2, 32, 32)
    outcomes = _flip_outcomes(transform, frames, label=2)
    assert any(flipped for flipped, _ in outcomes) and not all(flipped for flipped, _ in outcomes)
    assert all(label == (3 if flipped else 2) for flipped, label in outcomes)
    assert all(label == 4 for _, label in _flip_outcomes(transform, frames, label=4))  # not in the map


@pytest.mark.parametrize("content, message", [
    ("2 3\n7\n", r"flip_swap.txt:2: expected two class indices"),
    ("2 3\n3 4\n", r"flip_swap.txt:2: class 3 already has a swap partner"),
    ("a b\n", r"flip_swap.txt:1"),
])
def test_flip_swap_file_errors_name_the_line(tmp_path, content, message):
    path = tmp_path / "flip_swap.txt"
    path.write_text(content)
    with pytest.raises(ValueError, match=message):
        load_flip_class_swap(path)


def test_train_transform_output_and_random_crop_is_a_real_crop():
    cfg = get_defaults()
    cfg.DATA.MEAN, cfg.DATA.STD = [0.0] * 3, [1.0] * 3
    cfg.DATA.TRAIN_JITTER_SCALES = [96, 96]
    cfg.DATA.TRAIN_CROP_SIZE = 64
    cfg.DATA.RANDOM_FLIP = False
    frames = _random_frames(3, 96, 128)
    clip, label = build_train_transform(cfg, "kinetics")(frames, 1, _generator(3))
    assert clip.shape == (3, 3, 64, 64) and clip.dtype == torch.float32 and label == 1
    pixels = _as_uint8_frames(clip)
    windows = np.lib.stride_tricks.sliding_window_view(frames[0], (64, 64), axis=(0, 1))
    matches = np.argwhere((windows == pixels[0].transpose(2, 0, 1)[None, None]).all(axis=(2, 3, 4)))
    assert len(matches) == 1
    top, left = matches[0]
    np.testing.assert_array_equal(pixels, frames[:, top:top + 64, left:left + 64])


def test_jitter_scales_are_validated():
    cfg = get_defaults()
    cfg.DATA.TRAIN_JITTER_SCALES = [200, 320]
    with pytest.raises(ValueError, match="TRAIN_JITTER_SCALES"):
        build_train_transform(cfg, "kinetics")


# ---------------------------------------------------------------------------- RandAugment and erasing

SPEC = "rand-m9-n4-mstd0.5-inc1"


def _tensor_video(frames: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(frames).permute(0, 3, 1, 2)


def _gradient_frame(seed: int) -> np.ndarray:
    """A smooth, textured frame on which every RandAugment op has a visible effect."""
    yy, xx = np.mgrid[0:64, 0:64]
    phase = seed * 0.7
    rgb = np.stack([xx * 4, yy * 4, 128 + 100 * np.sin(xx / 6 + phase) * np.cos(yy / 5)], axis=-1)
    return np.clip(rgb, 0, 255).astype(np.uint8)


def test_rand_augment_applies_the_same_ops_to_every_frame():
    augment = ClipRandAugment(SPEC, crop_size=64, mean=(0.485, 0.456, 0.406))
    frame = _gradient_frame(0)
    changed = 0
    for seed in range(8):
        out = augment(_tensor_video(np.stack([frame] * 6)), _generator(seed)).numpy()
        assert all(np.array_equal(out[0], other) for other in out[1:])
        changed += not np.array_equal(out[0], frame.transpose(2, 0, 1))
    assert changed >= 6


def test_rand_augment_frame_result_does_not_depend_on_other_frames():
    augment = ClipRandAugment(SPEC, crop_size=64, mean=(0.485, 0.456, 0.406))
    a, b = _gradient_frame(1), _gradient_frame(2)
    mixed = augment(_tensor_video(np.stack([a, b])), _generator(4))
    only_a = augment(_tensor_video(np.stack([a, a])), _generator(4))
    only_b = augment(_tensor_video(np.stack([b, b])), _generator(4))
    torch.testing.assert_close(mixed[0], only_a[0], rtol=0, atol=0)
    torch.testing.assert_close(mixed[1], only_b[1], rtol=0, atol=0)


def test_per_frame_timm_rand_augment_differs_across_frames():
    """Control: timm's transform called frame by frame draws new ops, which the test above would catch."""
    augment = ClipRandAugment(SPEC, crop_size=64, mean=(0.485, 0.456, 0.406)).augment
    random.seed(0)
    np.random.seed(0)
    image = Image.fromarray(_gradient_frame(0))
    outputs = [np.asarray(augment(image)) for _ in range(6)]
    assert not all(np.array_equal(outputs[0], other) for other in outputs[1:])


def test_rand_augment_restores_the_global_random_state():
    augment = ClipRandAugment(SPEC, crop_size=64, mean=(0.485, 0.456, 0.406))
    random.seed(11)
    np.random.seed(11)
    augment(_tensor_video(np.stack([_gradient_frame(0)] * 2)), _generator(0))
    after = (random.random(), np.random.random())
    random.seed(11)
    np.random.seed(11)
    assert after == (random.random(), np.random.random())


def test_invalid_rand_augment_spec_is_reported():
    with pytest.raises(ValueError, match="DATA.RAND_AUGMENT"):
        ClipRandAugment("augmix-m5", crop_size=64, mean=(0.5, 0.5, 0.5))


def test_random_erasing_uses_one_box_for_all_frames():
    clip = torch.rand(5, 3, 48, 64) + 10.0  # far from the N(0, 1) fill
    for seed in range(10):
        erased = erase_box(clip, _generator(seed))
        masks = (erased != clip).any(dim=1)  # (T, H, W)
        assert masks[0].any()
        assert all(torch.equal(masks[0], mask) for mask in masks[1:])
        rows, cols = masks[0].any(dim=1).nonzero(), masks[0].any(dim=0).nonzero()
        box = masks[0][rows.min():rows.max() + 1, cols.min():cols.max() + 1]
        assert box.all()  # a solid rectangle
        area = box.numel() / (48 * 64)
        assert 0.02 * 0.8 <= area <= 1 / 3 * 1.2


def test_train_transform_with_augment_and_erasing_keeps_frames_consistent():
    cfg = get_defaults()
    cfg.DATA.TRAIN_JITTER_SCALES = [64, 80]
    cfg.DATA.TRAIN_CROP_SIZE = 64
    cfg.DATA.RAND_AUGMENT = SPEC
    cfg.DATA.RANDOM_ERASE_PROB = 1.0
    transform = build_train_transform(cfg, "kinetics")
    frames = np.stack([_gradient_frame(0)] * 4)
    clip, _ = transform(frames, 0, _generator(1))
    assert clip.shape == (3, 4, 64, 64)
    assert all(torch.equal(clip[:, 0], clip[:, t]) for t in range(1, 4))
    again, _ = transform(frames, 0, _generator(1))
    assert torch.equal(clip, again)


def test_rand_augment_survives_zero_bit_posterize():
    """timm maps PosterizeIncreasing at magnitude 10 to 0 bits, which Pillow 13 rejects: it must give black."""
    augment = ClipRandAugment("rand-m10-n3-p1.0-inc1", crop_size=64, mean=(0.485, 0.456, 0.406))
    posterize = next(op for op in augment.augment.ops if op.name == "PosterizeIncreasing")
    assert not np.asarray(posterize(Image.fromarray(_gradient_frame(0)))).any()
    video = _tensor_video(np.stack([_gradient_frame(0)] * 2))
    for seed in range(20):
        assert augment(video, _generator(seed)).shape == video.shape
