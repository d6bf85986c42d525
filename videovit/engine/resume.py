"""Where a training run starts: resume its own checkpoint, finetune from initial weights, or random.

Precedence: with TRAIN.AUTO_RESUME, a loadable checkpoint in OUTPUT_DIR wins (the run continues
exactly where it stopped, and TRAIN.CHECKPOINT_FILE_PATH is ignored with a message saying so);
otherwise TRAIN.CHECKPOINT_FILE_PATH is loaded through ``videovit.checkpoint.load_pretrained``
(inflation, load report); otherwise the model keeps its random initialisation.
"""
from __future__ import annotations

import logging
from typing import Any

from torch import nn
from yacs.config import CfgNode

from videovit.checkpoint import CheckpointError, check_class_names, load_checkpoint_contents, load_pretrained
from videovit.engine.checkpoint import CheckpointManager, TrainState, capture_rng_state, restore_rng_state
from videovit.engine.distributed import DistContext, all_gather_objects
from videovit.engine.train import TrainParts


def find_resume_checkpoint(cfg: CfgNode, manager: CheckpointManager,
                           log: logging.Logger) -> tuple[str, dict[str, Any]] | None:
    """``(path, contents)`` of the checkpoint to resume from, or None (auto-resume off or nothing saved)."""
    if not cfg.TRAIN.AUTO_RESUME:
        if manager.candidates():
            log.info(f"TRAIN.AUTO_RESUME is False: not resuming from the checkpoints in {manager.folder}")
        return None
    found = manager.newest_loadable(log.warning)
    return None if found is None else (str(found[0]), found[1])


def load_initial_weights(cfg: CfgNode, model: nn.Module, resuming_from: str | None,
                         log: logging.Logger) -> None:
    """Finetune from TRAIN.CHECKPOINT_FILE_PATH unless the run resumes (then say it is ignored)."""
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
    load_pretrained(model, initial, checkpoint_type=cfg.TRAIN.CHECKPOINT_TYPE,
                    allow_partial=cfg.TRAIN.ALLOW_PARTIAL_LOAD, trust=cfg.TRAIN.TRUST_CHECKPOINT,
                    log=log.info, allow_new_classifier=True)


def clips_per_step(cfg: CfgNode, world_size: int) -> int:
    """Global batch of one optimiser step: TRAIN.BATCH_SIZE x processes x TRAIN.ACCUM_STEPS."""
    return cfg.TRAIN.BATCH_SIZE * world_size * cfg.TRAIN.ACCUM_STEPS


def checkpoint_payload(cfg: CfgNode, parts: TrainParts, state: TrainState, class_names: list[str],
                       list_hash: str) -> dict[str, Any]:
    """The full training state to save (collective: gathers every process's RNG state)."""
    rng_states = all_gather_objects(capture_rng_state())
    return {
        "model": parts.module.state_dict(),
        "model_ema": parts.ema.module.state_dict() if parts.ema is not None else None,
        "optimizer": parts.optimizer.state_dict(),
        "scheduler": parts.scheduler.state_dict(),
        "grad_scaler": parts.scaler.state_dict(),
        "epoch": state.epoch,
        "global_step": state.global_step,
        "epoch_step": state.epoch_step,
        "global_batch": clips_per_step(cfg, len(rng_states)),
        "rng": rng_states,
        "config": cfg.dump(),
        "class_names": list(class_names),
        "list_hash": list_hash,
    }


def restore_training(source: str, payload: dict[str, Any], parts: TrainParts, ctx: DistContext,
                     class_names: list[str], list_hash: str, global_batch: int,
                     log: logging.Logger) -> TrainState:
    """Load every saved state of checkpoint ``source`` into ``parts``; return where training stands.

    A checkpoint saved mid-epoch continues at the next batch of its epoch when the training list and
    the global batch (``clips_per_step``) are unchanged; otherwise that epoch restarts from its first
    batch.
    """
    try:
        check_class_names(payload.get("class_names"), class_names, source)
    except CheckpointError as err:
        raise CheckpointError(f"{err}; to resume, use a new OUTPUT_DIR or restore the original lists") from err
    list_changed = payload.get("list_hash") not in (None, list_hash)
    if list_changed:
        log.warning("the training list changed since the checkpoint was saved (list hash differs); "
                    "resuming anyway")
    try:
        load_checkpoint_contents(parts.module, payload, source, "videovit", exact=True)
    except CheckpointError as err:
        raise CheckpointError(
            f"{source} is a checkpoint of another model than the configured one ({err}); "
            f"train this configuration in a new OUTPUT_DIR, or set TRAIN.AUTO_RESUME False to start "
            f"over here") from err
    if parts.ema is not None:
        has_ema = payload.get("model_ema") is not None
        if not has_ema:
            log.warning("the checkpoint has no EMA weights: the EMA restarts from the current weights")
        load_checkpoint_contents(parts.ema.module, payload, source, "videovit", exact=True, use_ema=has_ema)
    parts.optimizer.load_state_dict(payload["optimizer"])
    parts.scheduler.load_state_dict(payload["scheduler"])
    parts.scaler.load_state_dict(payload["grad_scaler"])
    rng_states = payload["rng"]
    if len(rng_states) == ctx.world_size:
        restore_rng_state(rng_states[ctx.rank])
    else:
        log.warning(f"the checkpoint was written by {len(rng_states)} processes, this run has "
                    f"{ctx.world_size}: the model's and mixup's random streams restart from RNG_SEED (shuffling and "
                    f"augmentation are seeded per epoch and sample and do not depend on them)")
    state = TrainState(epoch=int(payload["epoch"]), global_step=int(payload["global_step"]),
                       epoch_step=int(payload.get("epoch_step", 0)))
    if state.epoch_step and (list_changed or payload.get("global_batch") != global_batch):
        log.warning(f"{source} was saved {state.epoch_step} steps into epoch {state.epoch + 1} with "
                    f"{payload.get('global_batch')} clips per step (this run: {global_batch}) on "
                    f"{'another' if list_changed else 'the same'} training list: the batches already used "
                    f"cannot be identified, so epoch {state.epoch + 1} restarts from its first batch")
        state.epoch_step = 0
    parts.scheduler.step_update(num_updates=state.global_step)
    return state


__all__ = ["checkpoint_payload", "clips_per_step", "find_resume_checkpoint", "load_initial_weights",
           "restore_training"]
