"""Where a training run starts, and what a resumed run must agree with (see docs/engine.md).

Precedence: with TRAIN.AUTO_RESUME, a loadable checkpoint in OUTPUT_DIR wins (the run continues
exactly where it stopped, and TRAIN.CHECKPOINT_FILE_PATH is ignored with a message saying so);
otherwise TRAIN.CHECKPOINT_FILE_PATH is loaded through ``videovit.checkpoint.load_checkpoint_contents``
(inflation, load report) and, when it is a videovit checkpoint trained on other class names than the
training list's, without its classifier (said in the log); otherwise the model keeps its random
initialisation. A resumed run keeps
its checkpoint's learning-rate plan, so a run that still has steps to take refuses a changed plan
(``schedule_changes``) instead of silently ignoring it.
"""
from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from yacs.config import CfgNode

from videovit.checkpoint import load_checkpoint_contents, read_checkpoint
from videovit.checkpoint.trained import recorded_class_names
from videovit.engine.checkpoint_files import CheckpointManager
from videovit.models import VideoBackbone

# Keys that plan the learning rate over the run; a resumed run keeps its checkpoint's plan.
SCHEDULE_KEYS = ("TRAIN.EPOCHS", "SOLVER.BASE_LR", "SOLVER.BASE_BATCH_SIZE", "SOLVER.LR_SCALING", "SOLVER.MIN_LR",
                 "SOLVER.WARMUP_EPOCHS", "SOLVER.WARMUP_START_LR")


def find_resume_checkpoint(cfg: CfgNode, manager: CheckpointManager,
                           log: logging.Logger) -> tuple[str, dict[str, Any]] | None:
    """``(path, contents)`` of the checkpoint to resume from, or None (auto-resume off or nothing saved)."""
    if not cfg.TRAIN.AUTO_RESUME:
        if manager.candidates():
            log.info(f"TRAIN.AUTO_RESUME is False: not resuming from the checkpoints in {manager.folder}")
        return None
    found = manager.newest_loadable(log.warning)
    return None if found is None else (str(found[0]), found[1])


def load_initial_weights(cfg: CfgNode, model: VideoBackbone, resuming_from: str | None,
                         class_names: Sequence[str], log: logging.Logger) -> None:
    """Finetune from TRAIN.CHECKPOINT_FILE_PATH unless the run resumes (then say it is ignored).

    ``class_names`` are the training list's: a checkpoint that records as many classes under other
    names (or in another order) brings no classifier, since its rows would fit but score other classes;
    the model's new one is trained instead, and the log says so. (Another class count re-initialises
    the classifier anyway, as the load report says.)
    """
    initial = cfg.TRAIN.CHECKPOINT_FILE_PATH
    if resuming_from is not None:
        if initial:
            log.info(f"ignoring TRAIN.CHECKPOINT_FILE_PATH {initial} because the run resumes from "
                     f"{resuming_from}")
        return
    if not initial:
        log.info("training from random initialisation (TRAIN.CHECKPOINT_FILE_PATH is empty)")
        return
    log.info(f"finetuning from {initial}")
    contents = read_checkpoint(initial, trust=cfg.TRAIN.TRUST_CHECKPOINT)
    theirs = recorded_class_names(contents, initial) or []
    differing = [index for index, (there, here) in enumerate(zip(theirs, class_names, strict=False)) if there != here]
    other_classes = len(theirs) == len(class_names) and bool(differing)
    if other_classes:
        first = differing[0]
        log.warning(f"{initial} was trained on other classes than the training list's classes.txt (class {first} "
                    f"is {theirs[first]!r} there, {class_names[first]!r} here): its classifier is not used, a new "
                    "one starts from random initialisation (docs/engine.md, \"Finetuning\")")
    load_checkpoint_contents(model, contents, initial, cfg.TRAIN.CHECKPOINT_TYPE,
                             allow_partial=cfg.TRAIN.ALLOW_PARTIAL_LOAD, allow_new_classifier=True,
                             drop_classifier=other_classes, log=log.info)


def _value(cfg: CfgNode, key: str) -> Any:
    node: Any = cfg
    for part in key.split("."):
        node = node.get(part) if isinstance(node, CfgNode) else None
    return node


def schedule_changes(saved_config: str, cfg: CfgNode) -> list[str]:
    """``"KEY saved -> now"`` for every SCHEDULE_KEYS value that differs between the checkpoint's saved
    config (YAML text) and ``cfg``; keys the saved config lacks are not compared."""
    saved = CfgNode.load_cfg(saved_config)
    changes = []
    for key in SCHEDULE_KEYS:
        before, now = _value(saved, key), _value(cfg, key)
        if before is not None and before != now:
            changes.append(f"{key} {before} -> {now}")
    return changes


__all__ = ["SCHEDULE_KEYS", "find_resume_checkpoint", "load_initial_weights", "schedule_changes"]
