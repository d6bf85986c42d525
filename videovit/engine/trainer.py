"""The Trainer: one object that owns a training run and its state (see docs/engine.md).

One optimiser step consumes TRAIN.ACCUM_STEPS micro-batches (gradients are synchronised across
processes only on the last one); micro-batches that cannot fill a whole step at the end of an epoch
are not used. Each micro-batch's loss stays on the device; at the end of the step one small
all-reduce carries "a loss was non-finite", "a signal arrived", the step's loss sum and its counts
over the processes, and one copy to the host reads it together with this process's losses and the
gradient norm: one host sync and one collective per optimiser step, none per micro-batch. Every
process then takes the same decision: step, skip the step untouched (TRAIN.NONFINITE_LOSS "skip"),
stop with a report (non-finite "stop"), or checkpoint and stop (a signal: the whole of ``fit`` is a
critical section of ``videovit.signals``, docs/engine.md "Interrupts and preemption").
"""
from __future__ import annotations

import itertools
import logging
import warnings
from collections.abc import Iterable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from timm.loss import SoftTargetCrossEntropy
from timm.utils import ModelEmaV3
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from yacs.config import CfgNode

from videovit.checkpoint import check_class_names, load_checkpoint_contents
from videovit.data.datasets import VideoDataset
from videovit.engine.checkpoint_files import CheckpointManager
from videovit.engine.interrupts import RERUN
from videovit.engine.loaders import eval_loader, start_epoch, train_loader
from videovit.engine.mixup import build_mixup, soft_targets
from videovit.engine.optim import build_optimizer, global_batch_size
from videovit.engine.randomness import StepRandomness
from videovit.engine.resume import find_resume_checkpoint, load_initial_weights, schedule_changes
from videovit.engine.run_log import ProgressMeter, StatsWriter, format_duration
from videovit.engine.schedule import build_scheduler, current_lr
from videovit.errors import CheckpointError, ConfigError, DataSetupError, Interrupted, NonFiniteLossError
from videovit.evaluation.views import validate_clips
from videovit.models import build_model
from videovit.runtime.compile import compile_if_configured
from videovit.runtime.distributed import (
    DistContext,
    all_reduce_sum,
    barrier,
    signal_flags,
    signal_from_flags,
    signal_on_any_process,
)
from videovit.runtime.precision import autocast_factory, build_grad_scaler
from videovit.signals import received_signal, signal_name, signals_blocked, signals_deferred

CHECKPOINT_FORMAT = 2  # 1 (no "format" key): per-rank global RNG states, no epoch sums
SHOWN_PATHS = 16
# The step's all-reduced vector: processes with a non-finite loss, with SIGTERM, with SIGINT
# (``signal_flags``); loss sum, micro-batches and replaced videos over the processes.
SHARED_SLOTS = ("nonfinite", "sigterm", "sigint", "loss_sum", "batches", "failed_videos")
SIGNAL_SLOTS = slice(1, 3)


@dataclass
class RunPosition:
    """Where training stands: completed epochs, optimiser steps taken, and steps already taken in the
    unfinished epoch (0 at an epoch's end)."""

    epoch: int = 0
    global_step: int = 0
    epoch_step: int = 0


@dataclass
class RunningSums:
    """Sums over all processes since an epoch (or a log period) began; checkpoints carry the epoch's."""

    loss_sum: float = 0.0
    batches: int = 0
    failed_videos: int = 0
    skipped_steps: int = 0

    def add(self, loss_sum: float, batches: int, failed_videos: int, skipped_steps: int) -> None:
        """Count one step's reduced figures."""
        self.loss_sum += loss_sum
        self.batches += batches
        self.failed_videos += failed_videos
        self.skipped_steps += skipped_steps

    def summary(self) -> dict[str, float | int]:
        """Mean loss per micro-batch and the counts, as the stats records show them."""
        return {"loss": self.loss_sum / self.batches if self.batches else float("nan"),
                "failed_videos": self.failed_videos, "skipped_steps": self.skipped_steps}


@dataclass
class StepOutcome:
    """What every process learnt at the end of a step (the step's one host sync)."""

    nonfinite: bool
    signum: int | None  # a signal that arrived on some process (None: none)
    loss_sum: float
    batches: int
    failed_videos: int
    local_losses: list[float] = field(default_factory=list)
    grad_norm: float = float("nan")


class Trainer:
    """A training run: config, processes, model (and its DDP wrapper), optimiser, schedule, scaler,
    EMA, mixup, loaders, position and running sums, stats writer and checkpoint files.

    ``fit()`` trains until TRAIN.EPOCHS (or TRAIN.MAX_STEPS), resuming from OUTPUT_DIR's newest
    checkpoint when TRAIN.AUTO_RESUME; ``run(cfg)`` (engine/run.py) builds one and calls it.
    """

    def __init__(self, cfg: CfgNode, ctx: DistContext, splits: dict[str, VideoDataset], stats: StatsWriter,
                 log: logging.Logger) -> None:
        self.cfg, self.ctx, self.stats, self.log = cfg, ctx, stats, log
        self.train_set: VideoDataset = splits["train"]
        self.loader = train_loader(cfg, self.train_set, ctx)
        self.val_loader = eval_loader(cfg, splits["val"], ctx) if "val" in splits else None
        self.accum = cfg.TRAIN.ACCUM_STEPS
        self.steps_per_epoch = len(self.loader) // self.accum
        self._check_data()
        self.list_hash = self.train_set.list_hash()
        log.info(f"training on {self.train_set.num_videos} videos ({self.train_set.source}, sha256 "
                 f"{self.list_hash[:12]}), {self.steps_per_epoch} steps per epoch of {cfg.TRAIN.BATCH_SIZE} clips x "
                 f"{ctx.world_size} processes x {self.accum} accumulation")

        self.module = build_model(cfg)
        self.checkpoints = CheckpointManager(cfg.OUTPUT_DIR, cfg.TRAIN.CHECKPOINT_PERIOD, cfg.TRAIN.CHECKPOINT_KEEP)
        if ctx.is_main:
            self.checkpoints.remove_unfinished_writes(log.warning)
        found = find_resume_checkpoint(cfg, self.checkpoints, log)
        load_initial_weights(cfg, self.module, found[0] if found else None, self.train_set.class_names, log)
        self.module.to(ctx.device)
        self.optimizer = build_optimizer(cfg, self.module, ctx.world_size)
        self.scheduler = build_scheduler(cfg, self.optimizer, self.steps_per_epoch, ctx.world_size)
        self.scaler = build_grad_scaler(cfg, ctx.device)
        self.ema = ModelEmaV3(self.module, decay=cfg.MODEL_EMA.DECAY) if cfg.MODEL_EMA.ENABLE else None
        compile_if_configured(self.module, cfg)  # after the EMA copy, which stays eager
        self.mixup = build_mixup(cfg)
        self.autocast = autocast_factory(cfg, ctx.device)
        self.criterion = SoftTargetCrossEntropy()
        self.randomness = StepRandomness(cfg.RNG_SEED, ctx.rank)
        self.position = RunPosition()
        self.epoch_sums, self.period_sums = RunningSums(), RunningSums()
        self.epoch_timing: dict[str, float] = {}
        self.meter = ProgressMeter(self.steps_per_epoch, 0, ctx.world_size)
        self._losses = torch.zeros(self.accum, device=ctx.device)
        self._shared = torch.zeros(len(SHARED_SLOTS), dtype=torch.float64, device=ctx.device)
        self.replaced_this_epoch = 0
        if found is not None:
            self.resume(*found)
        stats.rewind(self.position.global_step)  # steps past the checkpoint (or all, without one) run again
        self.model: nn.Module = self._wrap_distributed()

    # ------------------------------------------------------------------ set-up

    def _check_data(self) -> None:
        if self.steps_per_epoch == 0:
            raise DataSetupError(
                f"{self.train_set.source} has {self.train_set.num_videos} videos, fewer than one optimiser step "
                f"takes (TRAIN.BATCH_SIZE {self.cfg.TRAIN.BATCH_SIZE} x {self.ctx.world_size} processes x "
                f"TRAIN.ACCUM_STEPS {self.accum}); lower TRAIN.BATCH_SIZE or TRAIN.ACCUM_STEPS, or list more videos")

    def _wrap_distributed(self) -> nn.Module:
        """The module under DistributedDataParallel when there are several processes."""
        if not self.ctx.distributed:
            return self.module
        # Depthwise conv weights (C, 1, k, k) get gradients whose stride on the size-1 axis differs
        # from the bucket's; the layouts are equivalent and DDP's warning about it is a false alarm.
        warnings.filterwarnings("ignore", message="Grad strides do not match bucket view strides")
        device_ids = [self.ctx.device.index] if self.ctx.device.type == "cuda" else None
        return DistributedDataParallel(self.module, device_ids=device_ids, gradient_as_bucket_view=True)

    # ------------------------------------------------------------------ the run

    def fit(self) -> nn.Module:
        """Train the remaining epochs; return the weights to test (the EMA's when MODEL_EMA.ENABLE).

        Raises ``Interrupted`` after checkpointing when a signal arrived on any process: a first signal
        is only recorded until the end of the current step (the handler says so at once on stderr).
        """
        cfg = self.cfg
        if self.position.epoch >= cfg.TRAIN.EPOCHS:
            self.log.info(f"training already complete ({self.position.epoch} of {cfg.TRAIN.EPOCHS} epochs)")
        rank = f"[rank {self.ctx.rank}] " if self.ctx.distributed else ""
        with signals_deferred(first_signal=f"{rank}received {{name}}: stopping after the current step with a "
                                           f"checkpoint (send it again to exit at once, without one)",
                              second_signal="without a checkpoint", raise_at_end=not self.ctx.distributed):
            while self.position.epoch < cfg.TRAIN.EPOCHS and not self._step_cap_reached():
                self.train_epoch()
        if self.position.epoch < cfg.TRAIN.EPOCHS:
            self.log.info(f"stopped at TRAIN.MAX_STEPS {cfg.TRAIN.MAX_STEPS} (epoch {self.position.epoch + 1} "
                          f"step {self.position.epoch_step}); checkpoint {self.checkpoints.latest_path}")
        return self.ema.module if self.ema is not None else self.module

    def _step_cap_reached(self) -> bool:
        cap = self.cfg.TRAIN.MAX_STEPS
        return bool(cap) and self.position.global_step >= cap

    def train_epoch(self) -> None:
        """Train epoch ``position.epoch`` from step ``position.epoch_step`` to its end (or to
        TRAIN.MAX_STEPS); at its end: summary, validation when due, checkpoint."""
        cfg, position = self.cfg, self.position
        start_epoch(self.loader, position.epoch, skip_batches=position.epoch_step * self.accum)
        steps_after = self.steps_per_epoch * (cfg.TRAIN.EPOCHS - position.epoch - 1)
        self.meter = ProgressMeter(self.steps_per_epoch, steps_after, self.ctx.world_size, self.epoch_timing)
        self.replaced_this_epoch = 0
        self.model.train()
        self.optimizer.zero_grad(set_to_none=True)
        with signals_blocked():  # the loader's workers start with both signals blocked, until they ignore them
            batches = iter(self.loader)
        try:
            while position.epoch_step < self.steps_per_epoch:
                outcome = self.train_step(itertools.islice(batches, self.accum))
                if outcome.signum is not None:
                    self._stop_on_signal(outcome.signum)
                if self._step_cap_reached() and position.epoch_step < self.steps_per_epoch:
                    self.save()
                    return
                every = cfg.TRAIN.CHECKPOINT_EVERY_STEPS
                if every and position.global_step % every == 0 and position.epoch_step < self.steps_per_epoch:
                    self.save()
        finally:
            del batches  # the loader's workers end with their iterator: before the summary, or on the way out
        self._finish_epoch()

    def _finish_epoch(self) -> None:
        cfg, position = self.cfg, self.position
        timing = self.meter.stats(self.steps_per_epoch)
        timing.pop("eta_s")
        summary = {"epoch": position.epoch + 1, **self.epoch_sums.summary(), **timing}
        position.epoch, position.epoch_step = position.epoch + 1, 0
        self.stats.write("train_epoch", summary, position.global_step)
        self.log.info(f"epoch {position.epoch} done: mean loss {summary['loss']:.4f}, {summary['clips_per_s']:.1f} "
                      f"clips/s, {summary['failed_videos']} videos replaced, {summary['skipped_steps']} steps skipped")
        self.epoch_sums, self.period_sums, self.epoch_timing = RunningSums(), RunningSums(), {}
        if self.val_loader is not None and (position.epoch % cfg.TRAIN.EVAL_PERIOD == 0
                                            or position.epoch == cfg.TRAIN.EPOCHS):
            try:
                self.validate()
            except Interrupted as stop:  # stopped at a batch: the epoch's training is complete and kept
                path = self.save()
                raise Interrupted(stop.signum, f"{stop} during the validation after epoch {position.epoch}: "
                                               f"checkpoint {path} (epoch {position.epoch} complete, its "
                                               f"validation not run); {RERUN} to resume") from None
        self.save()
        signum = signal_on_any_process(self.ctx.device)
        if signum is not None:
            self._stop_on_signal(signum)

    def train_step(self, batches: Iterable[dict]) -> StepOutcome:
        """One optimiser step over the micro-batches ``batches`` (TRAIN.ACCUM_STEPS of them); advances
        the position, logs at LOG_PERIOD; returns what the processes agreed on."""
        position = self.position
        paths: list[str] = []
        failures = 0
        for micro, batch in enumerate(batches):
            self.meter.data_ready()
            failures += self._report_replaced_videos(batch)
            paths += batch["path"]
            clips = batch["clip"].to(self.ctx.device, non_blocking=True)
            labels = batch["label"].to(self.ctx.device, non_blocking=True)
            rng = self.randomness.micro_batch(position.global_step + 1, micro)
            if self.mixup is not None:
                clips, targets = self.mixup(clips, labels, rng)
            else:
                targets = soft_targets(labels, self.cfg.MODEL.NUM_CLASSES, self.cfg.MIXUP.LABEL_SMOOTHING)
            with self._gradient_sync(micro == self.accum - 1):
                with self.autocast():
                    logits = self.model(clips)
                loss = self.criterion(logits.float(), targets)
                self.scaler.scale(loss / self.accum).backward()
            self._losses[micro] = loss.detach()
            self.meter.step_done(clips.shape[0])
        grad_norm = self._clip_gradients()
        outcome = self._share_step(grad_norm, failures)
        where = (f"epoch {position.epoch + 1} step {position.epoch_step + 1} "
                 f"(global step {position.global_step + 1})")
        if outcome.nonfinite:
            self._handle_nonfinite(outcome, where, paths)
        else:
            self.scaler.step(self.optimizer)
            self.scaler.update()
            if self.ema is not None:
                self.ema.update(self.module, step=position.global_step + 1)
        self.optimizer.zero_grad(set_to_none=True)
        lr = current_lr(self.optimizer)
        position.global_step += 1
        position.epoch_step += 1
        self.scheduler.step_update(num_updates=position.global_step)
        skipped = int(outcome.nonfinite)
        kept_loss, kept_batches = (0.0, 0) if skipped else (outcome.loss_sum, outcome.batches)
        for sums in (self.epoch_sums, self.period_sums):
            sums.add(kept_loss, kept_batches, outcome.failed_videos, skipped)
        if position.epoch_step % self.cfg.LOG_PERIOD == 0 or position.epoch_step == self.steps_per_epoch:
            self._log_progress(lr, float("nan") if skipped else outcome.grad_norm)
        return outcome

    def _gradient_sync(self, last_micro_batch: bool) -> AbstractContextManager:
        """DDP's ``no_sync`` for the micro-batches whose gradients are only accumulated."""
        if last_micro_batch or not isinstance(self.model, DistributedDataParallel):
            return nullcontext()
        return self.model.no_sync()

    def _report_replaced_videos(self, batch: dict) -> int:
        for path, reason in batch["failures"]:
            self.replaced_this_epoch += 1
            self.log.warning(f"replaced a video that failed to decode: {path}: {reason} "
                             f"({self.replaced_this_epoch} this epoch on this process)")
        return len(batch["failures"])

    def _clip_gradients(self) -> torch.Tensor | None:
        """Unscale and clip to SOLVER.CLIP_GRAD; the norm stays on the device (None without clipping)."""
        if self.cfg.SOLVER.CLIP_GRAD <= 0:
            return None
        self.scaler.unscale_(self.optimizer)
        return torch.nn.utils.clip_grad_norm_(self.module.parameters(), self.cfg.SOLVER.CLIP_GRAD)

    def _share_step(self, grad_norm: torch.Tensor | None, failures: int) -> StepOutcome:
        """The step's one collective and one host sync: flags and sums over all processes, plus this
        process's losses and the gradient norm."""
        shared, losses = self._shared, self._losses
        self._set_signal_slots()
        shared[0] = (~torch.isfinite(losses)).any()
        shared[3] = losses.sum()
        shared[4].fill_(float(self.accum))
        shared[5].fill_(float(failures))
        local = [losses.double()] + ([grad_norm.double().reshape(1)] if grad_norm is not None else [])
        values = torch.cat([all_reduce_sum(shared)] + local).tolist()
        slots = dict(zip(SHARED_SLOTS, values, strict=False))
        return StepOutcome(slots["nonfinite"] > 0, signal_from_flags(values[SIGNAL_SLOTS]), slots["loss_sum"],
                           int(slots["batches"]),
                           int(slots["failed_videos"]), values[len(SHARED_SLOTS):len(SHARED_SLOTS) + self.accum],
                           values[-1] if grad_norm is not None else float("nan"))

    def _set_signal_slots(self) -> None:
        for slot, flag in zip(self._shared[SIGNAL_SLOTS], signal_flags(received_signal()), strict=True):
            slot.fill_(flag)  # a kernel launch, no host sync

    def _handle_nonfinite(self, outcome: StepOutcome, where: str, paths: list[str]) -> None:
        """Skip the step (weights, optimiser and EMA untouched) or raise ``NonFiniteLossError``."""
        shown = ", ".join(paths[:SHOWN_PATHS]) + (f", ... (+{len(paths) - SHOWN_PATHS})"
                                                  if len(paths) > SHOWN_PATHS else "")
        if self.cfg.TRAIN.NONFINITE_LOSS == "skip":
            if self.scaler.is_enabled() and self.cfg.SOLVER.CLIP_GRAD > 0:
                self.scaler.update()  # unscale_ ran: close the scaler's step without an optimiser step
            self.log.warning(f"non-finite loss on some process at {where}: step skipped (TRAIN.NONFINITE_LOSS "
                             f"skip). Videos of this process's batch: {shown}")
            return
        bad = [loss for loss in outcome.local_losses if loss != loss or abs(loss) == float("inf")]
        latest = self.checkpoints.latest_path
        last = str(latest) if latest.is_file() else "none yet"
        raise NonFiniteLossError(
            f"non-finite loss (this process: {(bad or outcome.local_losses)[0]}) at {where}. Videos of this "
            f"process's batch: {shown}. Last good checkpoint: {last} (a rerun resumes from it). Lower "
            f"SOLVER.BASE_LR, keep SOLVER.CLIP_GRAD > 0 or AMP off, or set TRAIN.NONFINITE_LOSS skip to drop "
            f"such steps")

    def _log_progress(self, lr: float, grad_norm: float) -> None:
        cfg, position = self.cfg, self.position
        period = self.period_sums.summary()
        self.period_sums = RunningSums()
        timing = self.meter.stats(position.epoch_step)
        line = {"epoch": position.epoch + 1, "step": position.epoch_step, "loss": period["loss"], "lr": lr,
                "grad_norm": grad_norm, **timing}
        self.stats.write("train", line, position.global_step)
        self.log.info(f"epoch {position.epoch + 1}/{cfg.TRAIN.EPOCHS} step {position.epoch_step}/"
                      f"{self.steps_per_epoch} loss {period['loss']:.4f} lr {lr:.3e} | {timing['clips_per_s']:.1f} "
                      f"clips/s, data {timing['data_s']:.3f}s compute {timing['compute_s']:.3f}s per step | eta "
                      f"{format_duration(timing['eta_s'])}")

    # ------------------------------------------------------------------ signals

    def _stop_on_signal(self, signum: int) -> None:
        """Checkpoint (resuming at the next batch) and raise ``Interrupted`` with the line that says so."""
        position = self.position
        path = self.save() if position.epoch_step else self.checkpoints.latest_path
        epoch, step = ((position.epoch + 1, position.epoch_step) if position.epoch_step
                       else (position.epoch, self.steps_per_epoch))
        raise Interrupted(signum, f"interrupted by {signal_name(signum)} at epoch {epoch} step {step}; "
                                  f"checkpoint {path}; {RERUN} to resume")

    # ------------------------------------------------------------------ validation

    def validate(self) -> None:
        """Clip-level validation of the model (and of its EMA), with the clips that could not be decoded."""
        if self.val_loader is None:
            return
        models = [("model", self.model)] + ([("EMA", self.ema.module)] if self.ema is not None else [])
        epoch, step = self.position.epoch, self.position.global_step
        for name, model in models:
            result = validate_clips(model, self.val_loader, self.ctx, self.autocast)
            failed = result.pop("failures")
            kind = "val" if name == "model" else "val_ema"
            self.stats.write(kind, {"epoch": epoch, **result}, step)
            note = "" if not failed else (
                f"; {len(failed)} could not be decoded and were left out: "
                + "; ".join(f"{path}: {reason}" for path, reason in failed[:SHOWN_PATHS])
                + (f"; ... (+{len(failed) - SHOWN_PATHS})" if len(failed) > SHOWN_PATHS else ""))
            self.log.info(f"clip-level validation ({name}, one clip per video, not the test protocol) after "
                          f"epoch {epoch}: top-1 {result['clip_top1']:.2f}% top-5 {result['clip_top5']:.2f}% "
                          f"loss {result['loss']:.4f} on {result['clips']} clips of {result['videos']} videos{note}")
        self.model.train()

    # ------------------------------------------------------------------ checkpoints

    def checkpoint_payload(self) -> dict[str, Any]:
        """Everything a resumed run needs (docs/engine.md, "Checkpoints"); built on rank 0 only."""
        position = self.position
        return {
            "format": CHECKPOINT_FORMAT,
            "model": self.module.state_dict(),
            "model_ema": self.ema.module.state_dict() if self.ema is not None else None,
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "grad_scaler": self.scaler.state_dict(),
            **asdict(position),
            "global_batch": global_batch_size(self.cfg, self.ctx.world_size),
            "rng": self.randomness.state(),
            "epoch_sums": asdict(self.epoch_sums) if position.epoch_step else None,
            "epoch_timing": self.meter.totals() if position.epoch_step else None,
            "config": self.cfg.dump(),
            "class_names": list(self.train_set.class_names),
            "list_hash": self.list_hash,
        }

    def save(self) -> Path:
        """Write the checkpoint (rank 0; every process waits for it); returns the latest checkpoint's path."""
        position = self.position
        mid_epoch = position.epoch_step > 0
        if self.ctx.is_main:
            path = self.checkpoints.save(self.checkpoint_payload(), position.epoch,
                                         final=position.epoch == self.cfg.TRAIN.EPOCHS, mid_epoch=mid_epoch)
            where = (f"mid-epoch: epoch {position.epoch + 1} step {position.epoch_step}, global" if mid_epoch
                     else f"epoch {position.epoch},")
            self.log.info(f"saved checkpoint {path} ({where} step {position.global_step})")
        barrier()
        return self.checkpoints.latest_path

    def resume(self, source: str, payload: dict[str, Any]) -> None:
        """Restore every saved state of checkpoint ``source`` (contents ``payload``).

        A checkpoint saved mid-epoch continues at the next batch of its epoch when the training list
        and the global batch are unchanged; otherwise that epoch restarts from its first batch.
        """
        cfg = self.cfg
        try:
            check_class_names(payload.get("class_names"), self.train_set.class_names,
                              f"{source}, the checkpoint to resume,")
        except CheckpointError as err:
            raise CheckpointError(f"{err}; to resume, use a new OUTPUT_DIR or restore the original lists") from err
        position = RunPosition(int(payload["epoch"]), int(payload["global_step"]), int(payload.get("epoch_step", 0)))
        changes = schedule_changes(payload["config"], cfg) if "config" in payload else []
        if changes and position.epoch < cfg.TRAIN.EPOCHS:
            raise ConfigError(
                f"{source} was saved by a run with another learning-rate plan ({'; '.join(changes)}); a resumed "
                f"run keeps its checkpoint's schedule, so the change would be silently ignored. Restore the "
                f"values to continue this run, or train with the new values in a new OUTPUT_DIR starting from "
                f"its weights (TRAIN.CHECKPOINT_FILE_PATH {source})")
        list_changed = payload.get("list_hash") not in (None, self.list_hash)
        if list_changed:
            self.log.warning("the training list changed since the checkpoint was saved (list hash differs); "
                             "resuming anyway")
        self._load_weights(source, payload)
        self.optimizer.load_state_dict(payload["optimizer"])
        self.scheduler.load_state_dict(payload["scheduler"])
        self.scaler.load_state_dict(payload["grad_scaler"])
        if payload.get("format") is None:
            self.log.warning(f"{source} was written by an earlier videovit (global RNG states, no epoch sums): "
                             f"it resumes, but mixup and drop path now draw from per-step streams, so the rest "
                             f"of the run is not bit-identical to an uninterrupted old run, and the summary of an "
                             f"epoch resumed mid-way covers only the steps run after the resume")
        global_batch = global_batch_size(cfg, self.ctx.world_size)
        if position.epoch_step and (list_changed or payload.get("global_batch") != global_batch):
            self.log.warning(f"{source} was saved {position.epoch_step} steps into epoch {position.epoch + 1} with "
                             f"{payload.get('global_batch')} clips per step (this run: {global_batch}) on "
                             f"{'another' if list_changed else 'the same'} training list: the batches already "
                             f"used cannot be identified, so epoch {position.epoch + 1} restarts from its first batch")
            position.epoch_step = 0
        if position.epoch_step:
            self.epoch_sums = RunningSums(**(payload.get("epoch_sums") or {}))
            self.epoch_timing = dict(payload.get("epoch_timing") or {})
        self.position = position
        self.scheduler.step_update(num_updates=position.global_step)
        within = (f", {position.epoch_step} of {self.steps_per_epoch} steps into epoch {position.epoch + 1}: "
                  f"continuing with its next batch" if position.epoch_step else "")
        self.log.info(f"resuming from {source} at epoch {position.epoch} step {position.global_step}{within}")

    def _load_weights(self, source: str, payload: dict[str, Any]) -> None:
        """The model's (and EMA's) exact weights, through the project's one loading path."""
        try:
            load_checkpoint_contents(self.module, payload, source, "videovit", exact=True)
        except CheckpointError as err:
            raise CheckpointError(
                f"{source} is a checkpoint of another model than the configured one ({err}); train this "
                f"configuration in a new OUTPUT_DIR, or set TRAIN.AUTO_RESUME False to start over here") from err
        if self.ema is None:
            return
        has_ema = payload.get("model_ema") is not None
        if not has_ema:
            self.log.warning("the checkpoint has no EMA weights: the EMA restarts from the current weights")
        load_checkpoint_contents(self.ema.module, payload, source, "videovit", exact=True, use_ema=has_ema)


__all__ = ["RunPosition", "RunningSums", "StepOutcome", "Trainer"]
