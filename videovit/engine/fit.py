"""The training phase of a run: data, start weights or resume, epochs, validation, checkpoints."""
from __future__ import annotations

import functools
import logging

from torch import nn
from yacs.config import CfgNode

from videovit.data.datasets import VideoDataset
from videovit.engine.checkpoint import CheckpointManager, TrainState
from videovit.engine.distributed import DistContext, barrier
from videovit.engine.evaluate import validate_clips
from videovit.engine.loaders import DataSetupError, eval_loader, start_epoch, train_loader
from videovit.engine.logging import StatsWriter
from videovit.engine.resume import (checkpoint_payload, clips_per_step, find_resume_checkpoint,
                                    load_initial_weights, restore_training)
from videovit.engine.train import TrainParts, build_train_parts, train_one_epoch, wrap_distributed
from videovit.models import build_model


def train(cfg: CfgNode, ctx: DistContext, stats: StatsWriter, log: logging.Logger,
          splits: dict[str, VideoDataset]) -> tuple[nn.Module, TrainState]:
    """Train the configured model for TRAIN.EPOCHS on ``splits`` (``load_splits``: "train", and "val"
    when validating), resuming if OUTPUT_DIR holds a checkpoint; returns the weights to test (the EMA
    model when MODEL_EMA.ENABLE, else the trained model) and the state."""
    train_set, val_set = splits["train"], splits.get("val")
    loader = train_loader(cfg, train_set, ctx)
    val_loader = eval_loader(cfg, val_set, ctx) if val_set is not None else None
    steps_per_epoch = len(loader) // cfg.TRAIN.ACCUM_STEPS
    if steps_per_epoch == 0:
        raise DataSetupError(
            f"{train_set.list_file} has {train_set.num_videos} videos, fewer than one optimiser step takes "
            f"(TRAIN.BATCH_SIZE {cfg.TRAIN.BATCH_SIZE} x {ctx.world_size} processes x TRAIN.ACCUM_STEPS "
            f"{cfg.TRAIN.ACCUM_STEPS}); lower TRAIN.BATCH_SIZE or TRAIN.ACCUM_STEPS, or list more videos")
    list_hash = train_set.list_hash()
    log.info(f"training on {train_set.num_videos} videos ({train_set.list_file}, sha256 {list_hash[:12]}), "
             f"{steps_per_epoch} steps per epoch of {cfg.TRAIN.BATCH_SIZE} clips x {ctx.world_size} "
             f"processes x {cfg.TRAIN.ACCUM_STEPS} accumulation")

    model = build_model(cfg)
    manager = CheckpointManager(cfg.OUTPUT_DIR, cfg.TRAIN.CHECKPOINT_PERIOD, cfg.TRAIN.CHECKPOINT_KEEP)
    if ctx.is_main:
        manager.remove_unfinished_writes(log.warning)
    resume = find_resume_checkpoint(cfg, manager, log)
    load_initial_weights(cfg, model, resume[0] if resume else None, log)
    model.to(ctx.device)
    parts = build_train_parts(cfg, model, ctx, steps_per_epoch)
    state = TrainState()
    if resume is not None:
        state = restore_training(*resume, parts, ctx, train_set.class_names, list_hash,
                                 clips_per_step(cfg, ctx.world_size), log)
        within = (f", {state.epoch_step} of {steps_per_epoch} steps into epoch {state.epoch + 1}: continuing "
                  f"with its next batch" if state.epoch_step else "")
        log.info(f"resuming from {resume[0]} at epoch {state.epoch} step {state.global_step}{within}")
    stats.rewind(state.global_step)  # steps past the checkpoint (or all, without one) are run again
    wrap_distributed(parts, ctx)

    if state.epoch >= cfg.TRAIN.EPOCHS:
        log.info(f"training already complete ({state.epoch} of {cfg.TRAIN.EPOCHS} epochs)")
    save = functools.partial(_save, cfg, manager, parts, state, ctx, train_set.class_names, list_hash, log)
    for epoch in range(state.epoch, cfg.TRAIN.EPOCHS):
        start_epoch(loader, epoch, skip_batches=state.epoch_step * cfg.TRAIN.ACCUM_STEPS)
        last = str(manager.latest_path) if manager.latest_path.is_file() else "none yet"
        summary = train_one_epoch(cfg, parts, loader, epoch, state, ctx, stats, log, last, save)
        state.epoch, state.epoch_step = epoch + 1, 0
        stats.write("train_epoch", summary, state.global_step)
        log.info(f"epoch {state.epoch} done: mean loss {summary['loss']:.4f}, "
                 f"{summary['clips_per_s']:.1f} clips/s, {summary['failed_videos']} videos replaced, "
                 f"{summary['skipped_steps']} steps skipped")
        if val_loader is not None and (state.epoch % cfg.TRAIN.EVAL_PERIOD == 0
                                       or state.epoch == cfg.TRAIN.EPOCHS):
            validate(parts, val_loader, ctx, stats, state, log)
        save()
    return (parts.ema.module if parts.ema is not None else parts.module), state


def validate(parts: TrainParts, loader, ctx: DistContext, stats: StatsWriter, state: TrainState,
             log: logging.Logger) -> None:
    """Clip-level validation of the model (and of its EMA when there is one)."""
    models = [("model", parts.model)] + ([("EMA", parts.ema.module)] if parts.ema is not None else [])
    for name, model in models:
        result = validate_clips(model, loader, ctx, parts.autocast)
        kind = "val" if name == "model" else "val_ema"
        stats.write(kind, {"epoch": state.epoch, **result}, state.global_step)
        log.info(f"clip-level validation ({name}, one clip per video, not the test protocol) after "
                 f"epoch {state.epoch}: top-1 {result['clip_top1']:.2f}% top-5 {result['clip_top5']:.2f}% "
                 f"loss {result['loss']:.4f} on {result['clips']} clips")
    parts.model.train()


def _save(cfg: CfgNode, manager: CheckpointManager, parts: TrainParts, state: TrainState, ctx: DistContext,
          class_names: list[str], list_hash: str, log: logging.Logger) -> str:
    """Checkpoint ``state`` on rank 0, at an epoch's end or mid-epoch (``state.epoch_step`` > 0);
    every process joins the RNG gather and the barrier. Returns the latest checkpoint's path."""
    payload = checkpoint_payload(cfg, parts, state, class_names, list_hash)
    mid_epoch = state.epoch_step > 0
    if ctx.is_main:
        path = manager.save(payload, state.epoch, final=state.epoch == cfg.TRAIN.EPOCHS, mid_epoch=mid_epoch)
        where = (f"mid-epoch: epoch {state.epoch + 1} step {state.epoch_step}, global" if mid_epoch
                 else f"epoch {state.epoch},")
        log.info(f"saved checkpoint {path} ({where} step {state.global_step})")
    barrier()
    return str(manager.latest_path)


__all__ = ["train", "validate"]
