"""How a trained model sees a video: the frames it samples, the crops it scores, how pixels are normalised.

A model loaded with ``videovit.from_pretrained`` carries one of these (``model.preprocessing``); the
test, the demo, prediction and sliding windows all follow it, and the config keys below are the ones
a trained checkpoint decides unless the user sets them (docs/deployment.md, "The views rule").
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from yacs.config import CfgNode

from videovit.config.loading import get_value


@dataclass(frozen=True)
class Preprocessing:
    """The model's input protocol; each field is the value of one config key (``CONFIG_KEYS``)."""

    num_frames: int                     # frames per clip (T)
    sampling: str                       # "uniform" (one frame per equal segment) or "dense" (a stride)
    sampling_rate: int                  # dense: stride in frames at target_fps
    target_fps: float                   # dense: the frame rate the stride refers to
    short_side: int                     # the frame's short side before cropping
    crop_size: int                      # side of each square crop (the model's image size)
    crop_mode: str                      # "corners" or "uniform": where the 3 spatial crops sit
    mean: tuple[float, ...]             # per-channel mean of RGB in [0, 1]
    std: tuple[float, ...]              # per-channel std of RGB in [0, 1]
    temporal_views: int                 # clips per video along time
    spatial_crops: int                  # crops per clip (1: centre, 3: crop_mode)

    @property
    def views_per_video(self) -> int:
        """Temporal views x spatial crops: the views whose softmax probabilities are averaged."""
        return self.temporal_views * self.spatial_crops

    @classmethod
    def from_config(cls, cfg: CfgNode) -> Preprocessing:
        """The protocol ``cfg`` describes."""
        values: dict[str, Any] = {name: get_value(cfg, key) for name, key in CONFIG_KEYS.items()}
        values["mean"], values["std"] = tuple(values["mean"]), tuple(values["std"])
        return cls(**values)


# Preprocessing field -> the config key it comes from.
CONFIG_KEYS = {
    "num_frames": "DATA.NUM_FRAMES", "sampling": "DATA.SAMPLING", "sampling_rate": "DATA.SAMPLING_RATE",
    "target_fps": "DATA.TARGET_FPS", "short_side": "DATA.TEST_SCALE", "crop_size": "DATA.TEST_CROP_SIZE",
    "crop_mode": "DATA.TEST_CROP_MODE", "mean": "DATA.MEAN", "std": "DATA.STD",
    "temporal_views": "TEST.NUM_TEMPORAL_VIEWS", "spatial_crops": "TEST.NUM_SPATIAL_CROPS",
}
__all__ = ["CONFIG_KEYS", "Preprocessing"]
