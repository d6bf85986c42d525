"""Datasets and data loaders for each split, sharded over the processes of a run.

Training uses ``EpochSampler``, a ``DistributedSampler`` (shuffled from RNG_SEED and the epoch, tail
dropped so every process runs the same number of steps) that can start an epoch past the batches a
resumed run already trained on. The training loader draws its workers' base seed from its own
generator, reseeded every epoch, never from the global torch generator: creating an epoch's
iterator then leaves the random stream of the model (drop path) and mixup exactly as a checkpoint
restored it.

Workers ignore SIGINT and SIGTERM (a Ctrl-C or a cluster's SIGTERM reaches the whole process group):
the main process alone decides how the run stops, and ends its workers itself.

Validation and test use ``ShardSampler``: contiguous, unpadded shards, so the views of one video
stay together (decoded once) and no sample is scored twice; the evaluation still de-duplicates by
(video, view) after gathering.
"""
from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from pathlib import Path

import torch
from torch.utils.data import DataLoader, DistributedSampler, Sampler
from yacs.config import CfgNode

from videovit.data.datasets import VideoDataset, build_dataset, collate_clips, collate_views
from videovit.data.lists import read_classes
from videovit.errors import DataSetupError, UserError
from videovit.runtime.distributed import DistContext
from videovit.signals import ignore_signals


def load_split(cfg: CfgNode, split: str) -> VideoDataset:
    """``build_dataset(cfg, split)`` with its list/config problems turned into ``DataSetupError``."""
    try:
        return build_dataset(cfg, split)
    except UserError as err:
        raise DataSetupError(f"cannot build the {split} dataset: {err}") from err


def class_names(cfg: CfgNode) -> list[str]:
    """The classes of DATA.PATH_TO_DATA_DIR's classes.txt, read before any dataset is built (a test-only
    run checks its checkpoint against them before loading weights)."""
    try:
        return read_classes(Path(cfg.DATA.PATH_TO_DATA_DIR) / "classes.txt")
    except UserError as err:
        raise DataSetupError(f"cannot read the classes: {err}") from err


def load_splits(cfg: CfgNode) -> dict[str, VideoDataset]:
    """Every dataset the run uses, in the order train, val (when TRAIN.EVAL_PERIOD > 0), test (when
    TEST.ENABLE): a bad list or classes file fails before any training starts."""
    wanted = {"train": cfg.TRAIN.ENABLE, "val": cfg.TRAIN.ENABLE and cfg.TRAIN.EVAL_PERIOD > 0,
              "test": cfg.TEST.ENABLE}
    return {split: load_split(cfg, split) for split, used in wanted.items() if used}


class ShardSampler(Sampler[int]):
    """Indices ``[rank * n / W, (rank + 1) * n / W)`` in order: a contiguous shard, no padding."""

    def __init__(self, num_samples: int, rank: int, world_size: int) -> None:
        self.start = math.floor(rank * num_samples / world_size)
        self.stop = math.floor((rank + 1) * num_samples / world_size)

    def __iter__(self) -> Iterator[int]:
        return iter(range(self.start, self.stop))

    def __len__(self) -> int:
        return self.stop - self.start


class EpochSampler(DistributedSampler):
    """``DistributedSampler`` whose epoch can start after its first ``skip`` indices (mid-epoch resume)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.skip = 0

    def __iter__(self) -> Iterator[int]:
        return itertools.islice(super().__iter__(), self.skip, None)

    def __len__(self) -> int:
        return super().__len__() - self.skip


def _worker_start(worker_id: int) -> None:
    """Leave SIGINT/SIGTERM to the main process."""
    ignore_signals()


def _loader(cfg: CfgNode, dataset: VideoDataset, sampler: ShardSampler | EpochSampler, batch_size: int,
            ctx: DistContext, train: bool) -> DataLoader:
    batches = math.ceil(len(sampler) / batch_size)  # no more worker processes than batches (one video: one)
    return DataLoader(
        dataset, batch_size=batch_size, sampler=sampler, drop_last=train,
        num_workers=min(cfg.DATA_LOADER.NUM_WORKERS, batches),
        pin_memory=cfg.DATA_LOADER.PIN_MEMORY and ctx.device.type == "cuda",
        collate_fn=collate_views if dataset.split == "test" else collate_clips,
        worker_init_fn=_worker_start, generator=torch.Generator() if train else None)


def train_loader(cfg: CfgNode, dataset: VideoDataset, ctx: DistContext) -> DataLoader:
    """Shuffled training batches of TRAIN.BATCH_SIZE; call ``start_epoch`` before each epoch."""
    sampler = EpochSampler(dataset, num_replicas=ctx.world_size, rank=ctx.rank, shuffle=True,
                           seed=cfg.RNG_SEED, drop_last=True)
    return _loader(cfg, dataset, sampler, cfg.TRAIN.BATCH_SIZE, ctx, train=True)


def eval_loader(cfg: CfgNode, dataset: VideoDataset, ctx: DistContext) -> DataLoader:
    """In-order batches of this process's shard (validation clips or test views)."""
    sampler = ShardSampler(len(dataset), ctx.rank, ctx.world_size)
    batch_size = cfg.TEST.BATCH_SIZE if dataset.split == "test" else cfg.TRAIN.BATCH_SIZE
    return _loader(cfg, dataset, sampler, batch_size, ctx, train=False)


def start_epoch(loader: DataLoader, epoch: int, skip_batches: int = 0) -> None:
    """Select epoch ``epoch``'s shuffle and augmentation draws (0-based); the training loader
    (``train_loader``) also skips the epoch's first ``skip_batches`` batches (trained on before a resume)."""
    if isinstance(loader.sampler, EpochSampler):
        loader.sampler.set_epoch(epoch)
        loader.sampler.skip = 0
        if not 0 <= skip_batches <= len(loader):
            raise ValueError(f"cannot skip {skip_batches} batches of an epoch of {len(loader)}")
        loader.sampler.skip = skip_batches * (loader.batch_size or 1)
        loader.generator.manual_seed(loader.sampler.seed + epoch)
    if isinstance(loader.dataset, VideoDataset):
        loader.dataset.set_epoch(epoch)


__all__ = ["DataSetupError", "EpochSampler", "ShardSampler", "eval_loader", "load_split", "load_splits",
           "start_epoch", "train_loader"]
