"""The training loop: micro-batches, gradient accumulation, AMP, clipping, EMA, non-finite losses.

One optimiser step consumes TRAIN.ACCUM_STEPS micro-batches (gradients are synchronised across
processes only on the last one); micro-batches that cannot fill a whole step at the end of an
epoch are not used. The learning rate is set per step by the schedule. A non-finite loss on any
process is seen by all of them (one all-reduced flag per micro-batch), so every process either
stops (TRAIN.NONFINITE_LOSS "stop": an error naming the step, the batch's videos and the last good
checkpoint) or drops the whole step ("skip": counted, the schedule still advances).
"""
from __future__ import annotations

import logging
import math
import warnings
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Callable

import torch
from timm.loss import SoftTargetCrossEntropy
from timm.scheduler import CosineLRScheduler
from timm.utils import ModelEmaV3
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader
from yacs.config import CfgNode

from videovit.engine.checkpoint import TrainState
from videovit.engine.distributed import DistContext, all_reduce_sum, any_process
from videovit.engine.logging import ProgressMeter, StatsWriter, format_duration
from videovit.engine.mixup import VideoMixup, build_mixup, soft_targets
from videovit.engine.optim import build_optimizer
from videovit.engine.precision import autocast_factory, build_grad_scaler
from videovit.engine.schedule import build_scheduler, current_lr


class NonFiniteLossError(RuntimeError):
    """The loss became NaN or infinite and TRAIN.NONFINITE_LOSS is "stop"."""


@dataclass
class TrainParts:
    """Everything an optimiser step touches."""

    model: nn.Module                  # what runs forward/backward (DDP-wrapped when distributed)
    module: nn.Module                 # the bare model (checkpoints, EMA source, clipping)
    optimizer: torch.optim.Optimizer
    scheduler: CosineLRScheduler
    scaler: torch.amp.GradScaler
    ema: ModelEmaV3 | None
    mixup: VideoMixup | None
    autocast: Callable[[], AbstractContextManager]


def build_train_parts(cfg: CfgNode, module: nn.Module, ctx: DistContext, steps_per_epoch: int) -> TrainParts:
    """Optimiser, schedule, scaler, EMA and mixup for ``module`` (already on ``ctx.device``)."""
    optimizer = build_optimizer(cfg, module, ctx.world_size)
    ema = ModelEmaV3(module, decay=cfg.MODEL_EMA.DECAY) if cfg.MODEL_EMA.ENABLE else None
    return TrainParts(
        model=module, module=module, optimizer=optimizer,
        scheduler=build_scheduler(cfg, optimizer, steps_per_epoch, ctx.world_size),
        scaler=build_grad_scaler(cfg, ctx.device), ema=ema, mixup=build_mixup(cfg),
        autocast=autocast_factory(cfg, ctx.device))


def wrap_distributed(parts: TrainParts, ctx: DistContext) -> None:
    """Run ``parts.model`` under DistributedDataParallel when there are several processes."""
    if ctx.distributed:
        # Depthwise conv weights (C, 1, k, k) get gradients whose stride on the size-1 axis differs
        # from the bucket's; the layouts are equivalent and DDP's warning about it is a false alarm.
        warnings.filterwarnings("ignore", message="Grad strides do not match bucket view strides")
        device_ids = [ctx.device.index] if ctx.device.type == "cuda" else None
        parts.model = DistributedDataParallel(parts.module, device_ids=device_ids, gradient_as_bucket_view=True)


def _sync_context(model: nn.Module, synchronise: bool) -> AbstractContextManager:
    """DDP's ``no_sync`` for the micro-batches whose gradients are only accumulated."""
    if synchronise or not isinstance(model, DistributedDataParallel):
        return nullcontext()
    return model.no_sync()


def optimizer_step(parts: TrainParts, clip_grad: float, global_step: int) -> float:
    """Unscale, clip, step, update the scaler and the EMA; returns the gradient norm (nan if not clipped)."""
    grad_norm = float("nan")
    if clip_grad > 0:
        parts.scaler.unscale_(parts.optimizer)
        grad_norm = float(torch.nn.utils.clip_grad_norm_(parts.module.parameters(), clip_grad))
    parts.scaler.step(parts.optimizer)
    parts.scaler.update()
    parts.optimizer.zero_grad(set_to_none=True)
    if parts.ema is not None:
        parts.ema.update(parts.module, step=global_step)
    return grad_norm


class EpochCounters:
    """Sums kept during an epoch; reduced over processes when reported."""

    def __init__(self, device: torch.device) -> None:
        self.values = torch.zeros(4, dtype=torch.float64, device=device)  # loss sum, batches, failures, skipped

    def add(self, loss: float = 0.0, batches: int = 0, failures: int = 0, skipped: int = 0) -> None:
        """Accumulate this process's numbers."""
        self.values += torch.tensor([loss, batches, failures, skipped], dtype=torch.float64,
                                    device=self.values.device)

    def reduced(self) -> dict[str, float]:
        """Mean loss and counts over all processes (a collective call: every process must make it)."""
        loss_sum, batches, failures, skipped = all_reduce_sum(self.values).tolist()
        return {"loss": loss_sum / batches if batches else float("nan"),
                "failed_videos": int(failures), "skipped_steps": int(skipped)}


def train_one_epoch(cfg: CfgNode, parts: TrainParts, loader: DataLoader, epoch: int, state: TrainState,
                    ctx: DistContext, stats: StatsWriter, log: logging.Logger, last_checkpoint: str,
                    save_checkpoint: Callable[[], str]) -> dict[str, float]:
    """One pass over ``loader`` (0-based ``epoch``); advances ``state.global_step``; epoch stats.

    A resumed epoch starts at step ``state.epoch_step`` (its loader already skips the batches done
    before; the epoch stats then cover the steps run here). Every TRAIN.CHECKPOINT_EVERY_STEPS
    global steps within the epoch ``save_checkpoint`` is called (collective) and returns the path.
    """
    accum = cfg.TRAIN.ACCUM_STEPS
    first_step = state.epoch_step
    steps = first_step + len(loader) // accum
    save_every = cfg.TRAIN.CHECKPOINT_EVERY_STEPS
    criterion = SoftTargetCrossEntropy()
    meter = ProgressMeter(steps - first_step, steps * (cfg.TRAIN.EPOCHS - epoch - 1), ctx.world_size)
    epoch_counts, period_counts = EpochCounters(ctx.device), EpochCounters(ctx.device)
    failures_seen = 0
    parts.model.train()
    parts.optimizer.zero_grad(set_to_none=True)
    step_ok, step = True, first_step
    for index, batch in enumerate(loader):
        if index >= (steps - first_step) * accum:
            break
        meter.data_ready()
        for path, reason in batch["failures"]:
            failures_seen += 1
            log.warning(f"replaced a video that failed to decode: {path}: {reason} "
                        f"({failures_seen} this epoch on this process)")
        clips = batch["clip"].to(ctx.device, non_blocking=True)
        labels = batch["label"].to(ctx.device, non_blocking=True)
        if parts.mixup is not None:
            clips, targets = parts.mixup(clips, labels)
        else:
            targets = soft_targets(labels, cfg.MODEL.NUM_CLASSES, cfg.MIXUP.LABEL_SMOOTHING)
        closes_step = (index + 1) % accum == 0
        with _sync_context(parts.model, closes_step):
            with parts.autocast():
                logits = parts.model(clips)
            loss = criterion(logits.float(), targets)
            if any_process(not math.isfinite(loss.item()), ctx.device):
                _handle_nonfinite(cfg, loss.item(), epoch, step + 1, state.global_step + 1,
                                  batch["path"], last_checkpoint)
                step_ok = False
            elif step_ok:
                parts.scaler.scale(loss / accum).backward()
                for counts in (epoch_counts, period_counts):
                    counts.add(loss=loss.item(), batches=1)
        epoch_counts.add(failures=len(batch["failures"]))
        meter.step_done(clips.shape[0])
        if not closes_step:
            continue
        step += 1
        state.global_step += 1
        state.epoch_step = step
        if step_ok:
            grad_norm = optimizer_step(parts, cfg.SOLVER.CLIP_GRAD, state.global_step)
        else:
            parts.optimizer.zero_grad(set_to_none=True)
            epoch_counts.add(skipped=1)
            grad_norm = float("nan")
        lr = current_lr(parts.optimizer)
        parts.scheduler.step_update(num_updates=state.global_step)
        step_ok = True
        if step % cfg.LOG_PERIOD == 0 or step == steps:
            period = period_counts.reduced()
            period_counts = EpochCounters(ctx.device)
            timing = meter.stats(step - first_step)
            line = {"epoch": epoch + 1, "step": step, "loss": period["loss"], "lr": lr,
                    "grad_norm": grad_norm, **timing}
            stats.write("train", line, state.global_step)
            log.info(f"epoch {epoch + 1}/{cfg.TRAIN.EPOCHS} step {step}/{steps} loss {period['loss']:.4f} "
                     f"lr {lr:.3e} | {timing['clips_per_s']:.1f} clips/s, data {timing['data_s']:.3f}s "
                     f"compute {timing['compute_s']:.3f}s per step | eta {format_duration(timing['eta_s'])}")
        if save_every and state.global_step % save_every == 0 and step < steps:
            last_checkpoint = save_checkpoint()
    summary = {"epoch": epoch + 1, **epoch_counts.reduced(), **meter.stats(max(step - first_step, 1))}
    summary.pop("eta_s")
    return summary


def _handle_nonfinite(cfg: CfgNode, loss: float, epoch: int, step: int, global_step: int,
                      paths: list[str], last_checkpoint: str) -> None:
    """Raise ``NonFiniteLossError`` under "stop" (its message also goes to the log); under "skip" log
    the dropped step."""
    where = f"epoch {epoch + 1} step {step} (global step {global_step})"
    log = logging.getLogger("videovit.engine.train")
    shown = ", ".join(paths[:16]) + (f", ... (+{len(paths) - 16})" if len(paths) > 16 else "")
    if cfg.TRAIN.NONFINITE_LOSS == "skip":
        log.warning(f"non-finite loss on some process at {where}: step skipped (TRAIN.NONFINITE_LOSS "
                    f"skip). Videos of this process's batch: {shown}")
        return
    message = (f"non-finite loss (this process: {loss}) at {where}. Videos of this process's batch: {shown}. "
               f"Last good checkpoint: {last_checkpoint} (a rerun resumes from it). Lower SOLVER.BASE_LR, "
               f"keep SOLVER.CLIP_GRAD > 0 or AMP off, or set TRAIN.NONFINITE_LOSS skip to drop such steps")
    log.error(message)
    raise NonFiniteLossError(message)


__all__ = ["EpochCounters", "NonFiniteLossError", "TrainParts", "build_train_parts", "optimizer_step",
           "train_one_epoch", "wrap_distributed"]
