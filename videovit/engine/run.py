"""``run(cfg)``: one training and/or test job, single process or one process of a torchrun job."""
from __future__ import annotations

import os
import platform
import random

import numpy as np
import torch
from yacs.config import CfgNode

from videovit.config import save_config
from videovit.engine.distributed import DistContext, init_distributed, shutdown_distributed
from videovit.engine.fit import train
from videovit.engine.loaders import load_splits
from videovit.engine.logging import StatsWriter, setup_logging
from videovit.engine.testing import test


def seed_everything(seed: int) -> None:
    """Seed Python, numpy and torch (every device) with ``seed``."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def configure_determinism(enabled: bool) -> None:
    """DETERMINISTIC: deterministic kernels (warning where none exists) and no cuDNN autotuning."""
    if enabled:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(enabled, warn_only=True)
    torch.backends.cudnn.benchmark = not enabled


def describe(ctx: DistContext) -> str:
    """One line about where the job runs."""
    where = f"{ctx.world_size} process(es), backend {ctx.backend}" if ctx.distributed else "1 process"
    return (f"videovit run on {ctx.device} ({where}); torch {torch.__version__}, python "
            f"{platform.python_version()}, {torch.get_num_threads()} CPU threads per process")


def run(cfg: CfgNode) -> dict | None:
    """Seed, set up devices and processes, save the merged config, then train and/or test.

    Returns the test metrics (``metrics.json``'s content) when TEST.ENABLE, else None.
    """
    ctx = init_distributed(cfg.DEVICE, cfg.DIST_BACKEND)
    stats = None
    try:
        log = setup_logging(cfg.OUTPUT_DIR, ctx.rank)
        seed_everything(cfg.RNG_SEED + ctx.rank)
        configure_determinism(cfg.DETERMINISTIC)
        log.info(describe(ctx))
        if ctx.is_main:
            path = save_config(cfg, cfg.OUTPUT_DIR)
            log.info(f"merged config (saved to {path}):\n{cfg.dump()}")
        stats = StatsWriter(cfg.OUTPUT_DIR, active=ctx.is_main, tensorboard=cfg.TENSORBOARD)
        splits = load_splits(cfg)
        trained, state = train(cfg, ctx, stats, log, splits) if cfg.TRAIN.ENABLE else (None, None)
        if not cfg.TEST.ENABLE:
            return None
        return test(cfg, trained, splits["test"], ctx, stats, log,
                    global_step=state.global_step if state else 0)
    finally:
        if stats is not None:
            stats.close()
        shutdown_distributed()


__all__ = ["configure_determinism", "run", "seed_everything"]
