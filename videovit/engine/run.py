"""``run(cfg)``: one training and/or test job, single process or one process of a torchrun job."""
from __future__ import annotations

import os
import platform
import random
from pathlib import Path

import numpy as np
import torch
from yacs.config import CfgNode

from videovit.config import save_config
from videovit.engine.checkpoint_files import CHECKPOINT_SUBDIR
from videovit.engine.interrupts import RERUN, run_phase
from videovit.engine.loaders import class_names, load_splits
from videovit.engine.preflight import check_run_config
from videovit.engine.run_log import StatsWriter, log_failure, log_interruption, setup_logging
from videovit.engine.testing import load_test_model, test
from videovit.engine.trainer import Trainer
from videovit.errors import Interrupted, UserError
from videovit.runtime.distributed import DistContext, init_distributed, shutdown_distributed
from videovit.signals import raise_if_interrupted, signals_handled


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

    Returns the test metrics (``metrics.json``'s content) when TEST.ENABLE, else None. A SIGTERM or
    SIGINT raises ``Interrupted`` whose message says in which phase the run stopped, what it kept and
    how to continue (training checkpoints first; docs/engine.md); that line and every failure are
    also written to log.txt, as its last line.
    """
    cfg = check_run_config(cfg)
    ctx = init_distributed(cfg.DEVICE, cfg.DIST_BACKEND)
    stats = None
    log = setup_logging(cfg.OUTPUT_DIR, ctx.rank)
    checkpoints = Path(cfg.OUTPUT_DIR) / CHECKPOINT_SUBDIR
    unchanged = lambda: f"no checkpoint was written ({checkpoints} is as it was); {RERUN} to start"  # noqa: E731
    try:
        with signals_handled():
            with run_phase("start-up", unchanged):
                raise_if_interrupted()  # a signal during the imports that Python swallowed
                seed_everything(cfg.RNG_SEED + ctx.rank)
                configure_determinism(cfg.DETERMINISTIC)
                log.info(describe(ctx))
                test_only = cfg.TEST.ENABLE and not cfg.TRAIN.ENABLE
                tested = load_test_model(cfg, log, class_names(cfg)) if test_only else None
                if tested is not None:
                    cfg = tested.cfg  # the model, classes and frame count the checkpoint was trained with, unless set
                if ctx.is_main:
                    path = save_config(cfg, cfg.OUTPUT_DIR)
                    log.info(f"merged config (saved to {path}):\n{cfg.dump()}")
                stats = StatsWriter(cfg.OUTPUT_DIR, active=ctx.is_main, tensorboard=cfg.TENSORBOARD)
            with run_phase("the data set-up", unchanged):
                splits = load_splits(cfg)
            if tested is not None:
                with run_phase("the test", lambda: f"no test result was written; {RERUN} to test"):
                    metrics = test(cfg, tested.model, splits["test"], ctx, stats, log)
            else:
                with run_phase("the model set-up", unchanged):
                    trainer = Trainer(cfg, ctx, splits, stats, log)
                with run_phase("training", lambda: f"checkpoint {trainer.checkpoints.latest_path}; {RERUN} to resume"):
                    trained = trainer.fit()
                if not cfg.TEST.ENABLE:
                    return None
                with run_phase("the test", lambda: f"training is complete (checkpoint "
                                                   f"{trainer.checkpoints.latest_path}), no test result was "
                                                   f"written; {RERUN} to test it"):
                    metrics = test(cfg, trained, splits["test"], ctx, stats, log,
                                   global_step=trainer.position.global_step)
            with run_phase("the end of the run", lambda: f"every output is complete (results in {cfg.OUTPUT_DIR})"):
                raise_if_interrupted()
            return metrics
    except Interrupted as stop:
        log_interruption(log, stop)
        raise
    except UserError as err:  # its message says what to change: no traceback
        log_failure(log, err, with_traceback=False)
        raise
    except BaseException as err:
        log_failure(log, err, with_traceback=True)
        raise
    finally:
        if stats is not None:
            stats.close()
        shutdown_distributed()


__all__ = ["configure_determinism", "run", "seed_everything"]
