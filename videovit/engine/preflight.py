"""The checks a run passes before any work: the config's own, then those of the layers above it."""
from __future__ import annotations

from yacs.config import CfgNode

from videovit.checkpoint.reading import checkpoint_type_problems
from videovit.config.validation import raise_problems
from videovit.models import complete_config
from videovit.runtime.distributed import device_config_problems


def check_run_config(cfg: CfgNode) -> CfgNode:
    """``cfg`` completed with the model families' keys; a ``ConfigError`` names every problem of the model
    section, then of the checkpoint type and the devices (docs/architecture.md)."""
    cfg = complete_config(cfg)
    raise_problems(checkpoint_type_problems(cfg) + device_config_problems(cfg))
    return cfg


__all__ = ["check_run_config"]
