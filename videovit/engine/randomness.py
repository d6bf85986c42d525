"""The random streams of training, derived from (RNG_SEED, rank, optimiser step, micro-batch).

Sampling and augmentation are seeded per epoch and sample by the data pipeline. The draws the
training step makes itself (mixup/CutMix, drop path, dropout) come from generators reseeded before
every micro-batch from the run's seed, the process's rank, the optimiser step being taken and the
micro-batch's index. A step's randomness is thus a function of where the run stands, so a
checkpoint needs no generator state: resuming at step N draws exactly what an uninterrupted run
draws at step N, on every process, without gathering any state across processes (see
docs/engine.md).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

SEED_BITS = 63
STREAMS = "derived per micro-batch from (RNG_SEED, rank, global step, micro-batch)"


def derived_seed(*parts: int) -> int:
    """A 63-bit seed mixing ``parts`` (neighbouring values give unrelated streams)."""
    return int(np.random.SeedSequence(list(parts)).generate_state(1, np.uint64)[0]) & (2**SEED_BITS - 1)


@dataclass(frozen=True)
class StepRandomness:
    """The seed of one training process's streams."""

    seed: int
    rank: int

    def micro_batch(self, global_step: int, micro_batch: int) -> np.random.Generator:
        """Reseed torch's default generators (drop path, dropout: they live inside the model) for the
        micro-batch ``micro_batch`` of optimiser step ``global_step`` (1-based) and return the
        generator for mixup."""
        seed = derived_seed(self.seed, self.rank, global_step, micro_batch)
        torch.manual_seed(seed)
        return np.random.default_rng(seed)

    def state(self) -> dict[str, int | str]:
        """What a checkpoint records about the streams (the seed; nothing per process)."""
        return {"seed": self.seed, "streams": STREAMS}


__all__ = ["STREAMS", "StepRandomness", "derived_seed"]
