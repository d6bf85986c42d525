"""Build the configured model: MODEL.* and DATA.NUM_FRAMES mapped onto ``create_model``."""
from __future__ import annotations

from typing import Any

from torch import nn
from yacs.config import CfgNode

from videovit.models.registry import create_model


def architecture_overrides(cfg: CfgNode) -> dict[str, Any]:
    """Keyword overrides for ``create_model`` from the non-default architecture keys of ``cfg``."""
    m = cfg.MODEL
    overrides: dict[str, Any] = {
        "temporal": m.TEMPORAL,
        "drop_path_rate": m.DROP_PATH_RATE,
        "drop_rate": m.DROPOUT_RATE,
        "act_checkpoint": m.ACT_CHECKPOINT,
        "time_embed_init_std": m.TIME_EMBED_INIT_STD,
    }
    optional = {"embed_dims": list(m.EMBED_DIMS), "depths": list(m.DEPTHS),
                "num_heads": list(m.NUM_HEADS)}
    overrides.update({k: v for k, v in optional.items() if v})
    if m.NAME.startswith("regionvit"):
        overrides["peg"] = m.PEG
        overrides["exact_padding_mask"] = m.EXACT_PADDING_MASK
        if m.WINDOW_SIZE:
            overrides["window_size"] = m.WINDOW_SIZE
        if m.STEM:
            overrides["stem"] = m.STEM
    return overrides


def build_model(cfg: CfgNode) -> nn.Module:
    """The model described by ``cfg`` (weights random; checkpoints are loaded by the engine)."""
    return create_model(cfg.MODEL.NAME, num_frames=cfg.DATA.NUM_FRAMES,
                        num_classes=cfg.MODEL.NUM_CLASSES, **architecture_overrides(cfg))
