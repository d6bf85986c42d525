"""Spatial pipeline for clips (docs/data.md): uint8 frames in, normalised ``(C, T, H, W)`` out.

Frames stay uint8 ``(T, 3, H, W)`` through resizing (antialiased), cropping, flipping and
RandAugment; they become float only for normalisation and random erasing. Geometry uses
``torchvision.transforms.v2.functional``, which treats a ``(T, C, H, W)`` tensor as T frames with
one set of parameters (pytorchvideo.transforms does not import with torchvision >= 0.28). Every
random draw comes from an explicit ``torch.Generator``, so a sample is reproducible from its seed.

RandAugment uses timm's ``rand_augment_transform`` so that DATA.RAND_AUGMENT is a timm spec
(``rand-m7-n4-mstd0.5-inc1``: magnitude noise, increasing ops, fill with the image mean; the image
checkpoints were trained with it). torchvision's v2.RandAugment would treat a video consistently
but cannot express magnitude noise or timm's op set. timm draws ops and magnitudes from the global
``random`` and ``numpy.random`` generators, so each frame is augmented after restoring the same
seeded state: every frame gets the same ops with the same magnitudes.
"""
from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps
from timm.data import auto_augment
from timm.data.auto_augment import rand_augment_transform
from torchvision.transforms.v2 import functional as TF

from videovit.errors import ConfigError, InputPathError, ListFileError

CROP_MODES = ("corners", "uniform")
# ImageNet's per-channel RGB mean and std in [0, 1] (the DATA.MEAN / DATA.STD defaults).
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
_ERASE_AREA = (0.02, 1 / 3)
_ERASE_LOG_ASPECT = (math.log(0.3), math.log(1 / 0.3))
_ERASE_ATTEMPTS = 10


def frames_to_tensor(frames: np.ndarray | torch.Tensor) -> torch.Tensor:
    """Decoded ``(T, H, W, 3)`` uint8 frames -> ``(T, 3, H, W)`` uint8 tensor (the v2 video layout)."""
    video = torch.as_tensor(frames)
    if video.dim() != 4 or video.shape[-1] != 3 or video.dtype != torch.uint8:
        raise ValueError(f"expected uint8 frames of shape (T, H, W, 3), got {video.dtype} {tuple(video.shape)}")
    return video.permute(0, 3, 1, 2)


def resize_short_side(video: torch.Tensor, size: int) -> torch.Tensor:
    """Resize ``(T, 3, H, W)`` so that its shorter side is ``size`` (bilinear, antialiased)."""
    return TF.resize(video, size, antialias=True)


def normalize(video: torch.Tensor, mean: tuple[float, ...], std: tuple[float, ...]) -> torch.Tensor:
    """uint8 ``(T, 3, H, W)`` -> float ``(T, 3, H, W)``: ``(x / 255 - mean) / std``."""
    scaled = video.float().div_(255.0)
    return TF.normalize(scaled, list(mean), list(std))


def to_clip_layout(video: torch.Tensor) -> torch.Tensor:
    """``(T, C, H, W)`` -> the models' ``(C, T, H, W)``."""
    return video.permute(1, 0, 2, 3).contiguous()


def spatial_crop_origins(height: int, width: int, crop_size: int, num_crops: int) -> list[tuple[int, int]]:
    """``(top, left)`` of the test crops of a ``height x width`` frame.

    One crop: the centre. Three: the first, centre and last positions along both axes, i.e.
    top-left, centre, bottom-right; on a frame whose short side equals ``crop_size`` (the
    "uniform" mode) that is left/centre/right (landscape) or top/centre/bottom (portrait).
    Centre offsets round up, as PySlowFast's.
    """
    if crop_size > min(height, width):
        raise ValueError(f"crop {crop_size} does not fit a {height}x{width} frame; "
                         f"set DATA.TEST_SCALE >= DATA.TEST_CROP_SIZE")
    centre = ((height - crop_size + 1) // 2, (width - crop_size + 1) // 2)
    if num_crops == 1:
        return [centre]
    if num_crops == 3:
        return [(0, 0), centre, (height - crop_size, width - crop_size)]
    raise ValueError(f"TEST.NUM_SPATIAL_CROPS must be 1 or 3, got {num_crops}")


def load_flip_class_swap(path: str | Path, num_classes: int | None = None) -> dict[int, int]:
    """Read a flip class-swap file: lines ``a b`` swap classes a and b when a clip is flipped.

    Indices must lie in ``[0, num_classes)`` when it is given (a flipped label outside it would only
    fail later, inside the loss).
    """
    path = Path(path)
    if not path.is_file():
        raise InputPathError(f"flip class-swap file {path} does not exist; fix DATA.FLIP_CLASS_SWAP")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise ListFileError(f"{path}: not UTF-8 text ({err}); DATA.FLIP_CLASS_SWAP must name a text file") from None
    swap: dict[int, int] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.split()
        if len(fields) != 2 or not all(f.isdigit() for f in fields):
            raise ListFileError(f"{path}:{number}: expected two class indices 'a b', got {line!r}")
        a, b = int(fields[0]), int(fields[1])
        if num_classes is not None and max(a, b) >= num_classes:
            raise ListFileError(f"{path}:{number}: class {max(a, b)} is out of range [0, {num_classes}); fix the "
                             f"file or MODEL.NUM_CLASSES")
        if a in swap or b in swap:
            raise ListFileError(f"{path}:{number}: class {a if a in swap else b} already has a swap partner")
        swap[a], swap[b] = b, a
    return swap


@contextmanager
def _seeded_global_rngs(seed: int) -> Iterator[Callable[[], None]]:
    """Yield a function that reseeds ``random`` and ``numpy.random`` with ``seed``; restore them after."""
    python_state, numpy_state = random.getstate(), np.random.get_state()

    def reseed() -> None:
        random.seed(seed)
        np.random.seed(seed % 2**32)

    try:
        yield reseed
    finally:
        random.setstate(python_state)
        np.random.set_state(numpy_state)


class ClipRandAugment:
    """timm RandAugment applied with identical ops and magnitudes to every frame of a clip."""

    def __init__(self, spec: str, crop_size: int, mean: tuple[float, ...]) -> None:
        hparams = {"translate_const": int(crop_size * 0.45),
                   "img_mean": tuple(min(255, round(255 * m)) for m in mean)}
        try:
            self.augment = rand_augment_transform(spec, hparams)
        except (AssertionError, ValueError, KeyError) as err:
            raise ConfigError(f"DATA.RAND_AUGMENT {spec!r} is not a timm RandAugment spec such as "
                             f"'rand-m7-n4-mstd0.5' ({err})") from None
        for op in self.augment.ops:
            if op.aug_fn is auto_augment.posterize:
                op.aug_fn = _posterize_keeping_zero_bits

    def __call__(self, video: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Augment uint8 ``(T, 3, H, W)``; one seed from ``generator`` drives all frames."""
        seed = int(torch.randint(2**62, (1,), generator=generator))
        frames = np.ascontiguousarray(video.permute(0, 2, 3, 1).numpy())
        out = []
        with _seeded_global_rngs(seed) as reseed:
            for frame in frames:
                reseed()
                out.append(np.asarray(self.augment(Image.fromarray(frame))))
        return frames_to_tensor(np.stack(out))


def _posterize_keeping_zero_bits(image: Image.Image, bits_to_keep: int, **_: object) -> Image.Image:
    """timm's posterize, but 0 bits gives the black image it always meant (Pillow 13 rejects 0).

    timm maps magnitude 10 of PosterizeIncreasing (and < 2.5 of Posterize) to 0 bits.
    """
    if bits_to_keep >= 8:
        return image
    if bits_to_keep <= 0:
        return Image.new(image.mode, image.size)
    return ImageOps.posterize(image, bits_to_keep)


def erase_box(video: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random erasing with one box for all frames of float ``(T, C, H, W)``, filled with N(0, 1) noise.

    Box area 2%-33% of the frame, aspect ratio 0.3-3.3 (log-uniform), as in timm/DeiT; the same
    noise fills the box in every frame, like a static occluder.
    """
    height, width = video.shape[-2:]
    for _ in range(_ERASE_ATTEMPTS):
        area = height * width * _uniform(*_ERASE_AREA, generator)
        aspect = math.exp(_uniform(*_ERASE_LOG_ASPECT, generator))
        box_h, box_w = round(math.sqrt(area * aspect)), round(math.sqrt(area / aspect))
        if 0 < box_h < height and 0 < box_w < width:
            top = int(torch.randint(height - box_h + 1, (1,), generator=generator))
            left = int(torch.randint(width - box_w + 1, (1,), generator=generator))
            noise = torch.randn((video.shape[1], box_h, box_w), generator=generator, dtype=video.dtype)
            video = video.clone()
            video[:, :, top:top + box_h, left:left + box_w] = noise
            return video
    return video


def _uniform(low: float, high: float, generator: torch.Generator) -> float:
    return low + (high - low) * float(torch.rand(1, generator=generator, dtype=torch.float64))


@dataclass
class TrainTransform:
    """Training augmentation: scale jitter, random crop, flip (+ class swap), RandAugment, erasing.

    ``flip`` False disables flipping (SSV2 without a swap map); with ``flip_class_swap`` a flipped
    clip's label is mapped through it (classes not in the map keep their label).
    """

    jitter_scales: tuple[int, int]
    crop_size: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    flip: bool = True
    flip_class_swap: dict[int, int] | None = None
    rand_augment: ClipRandAugment | None = None
    erase_prob: float = 0.0

    def __call__(self, frames: np.ndarray | torch.Tensor, label: int,
                 generator: torch.Generator) -> tuple[torch.Tensor, int]:
        """uint8 ``(T, H, W, 3)`` frames -> (float ``(C, T, crop, crop)`` clip, possibly swapped label)."""
        low, high = self.jitter_scales
        scale = int(torch.randint(low, high + 1, (1,), generator=generator))
        video = resize_short_side(frames_to_tensor(frames), scale)
        height, width = video.shape[-2:]
        top = int(torch.randint(height - self.crop_size + 1, (1,), generator=generator))
        left = int(torch.randint(width - self.crop_size + 1, (1,), generator=generator))
        video = TF.crop(video, top, left, self.crop_size, self.crop_size)
        if self.flip and float(torch.rand(1, generator=generator)) < 0.5:
            video = TF.horizontal_flip(video)
            label = (self.flip_class_swap or {}).get(label, label)
        if self.rand_augment is not None:
            video = self.rand_augment(video, generator)
        clip = normalize(video, self.mean, self.std)
        if self.erase_prob > 0 and float(torch.rand(1, generator=generator)) < self.erase_prob:
            clip = erase_box(clip, generator)
        return to_clip_layout(clip), label


@dataclass
class ViewTransform:
    """Test views: short side to ``scale``, then crop ``crop_index`` of ``num_crops``.

    See ``spatial_crop_origins`` for where the crops lie.
    """

    scale: int
    crop_size: int
    num_crops: int
    mean: tuple[float, ...]
    std: tuple[float, ...]

    def __call__(self, frames: np.ndarray | torch.Tensor, crop_index: int) -> torch.Tensor:
        """uint8 ``(T, H, W, 3)`` frames -> float ``(C, T, crop, crop)`` view ``crop_index``."""
        if not 0 <= crop_index < self.num_crops:
            raise ValueError(f"crop {crop_index} of {self.num_crops} does not exist")
        video = resize_short_side(frames_to_tensor(frames), self.scale)
        height, width = video.shape[-2:]
        top, left = spatial_crop_origins(height, width, self.crop_size, self.num_crops)[crop_index]
        video = TF.crop(video, top, left, self.crop_size, self.crop_size)
        return to_clip_layout(normalize(video, self.mean, self.std))


def build_train_transform(cfg, dataset: str) -> TrainTransform:
    """TrainTransform from the DATA section; SSV2 flips only with a class-swap file (ValueError without)."""
    data = cfg.DATA
    swap = load_flip_class_swap(data.FLIP_CLASS_SWAP, cfg.MODEL.NUM_CLASSES) if data.FLIP_CLASS_SWAP else None
    flip = bool(data.RANDOM_FLIP)
    if flip and dataset == "ssv2" and swap is None:
        raise ValueError("DATA.RANDOM_FLIP True on SSV2 needs DATA.FLIP_CLASS_SWAP (left/right class pairs, "
                         "from tools/build_data_lists.py ssv2 --flip-swap), or set DATA.RANDOM_FLIP False")
    mean, std = tuple(data.MEAN), tuple(data.STD)
    low, high = data.TRAIN_JITTER_SCALES
    if not data.TRAIN_CROP_SIZE <= low <= high:
        raise ValueError(f"DATA.TRAIN_JITTER_SCALES {list(data.TRAIN_JITTER_SCALES)} must be "
                         f"[min, max] with TRAIN_CROP_SIZE ({data.TRAIN_CROP_SIZE}) <= min <= max")
    augment = ClipRandAugment(data.RAND_AUGMENT, data.TRAIN_CROP_SIZE, mean) if data.RAND_AUGMENT else None
    return TrainTransform((low, high), data.TRAIN_CROP_SIZE, mean, std, flip, swap, augment,
                          float(data.RANDOM_ERASE_PROB))


def build_view_transform(cfg, num_crops: int) -> ViewTransform:
    """ViewTransform from DATA.TEST_*: "corners" resizes to TEST_SCALE, "uniform" to the crop size."""
    data = cfg.DATA
    if data.TEST_CROP_MODE not in CROP_MODES:
        raise ValueError(f"DATA.TEST_CROP_MODE {data.TEST_CROP_MODE!r} must be one of {CROP_MODES}")
    scale = data.TEST_SCALE if data.TEST_CROP_MODE == "corners" else data.TEST_CROP_SIZE
    return ViewTransform(scale, data.TEST_CROP_SIZE, num_crops, tuple(data.MEAN), tuple(data.STD))


__all__ = [
    "CROP_MODES", "ClipRandAugment", "ViewTransform", "TrainTransform", "build_view_transform",
    "build_train_transform", "erase_box", "frames_to_tensor", "load_flip_class_swap", "normalize",
    "resize_short_side", "spatial_crop_origins", "to_clip_layout",
]
