"""Bad numbers: a loss that overflows stops the run with a report, or its steps are skipped untouched.

The loss is made to overflow for real, through the real training loop and ``tools/run_net.py``'s
``main(argv)`` (in this process, tests/tool_calls.py): SOLVER.BASE_LR 1e6
without warm-up, gradient clipping or weight decay, AMP off. On the tiny dataset of
tests/tiny_runs.py (2 clips per step, 6 steps, a checkpoint after every step) step 1 trains,
step 2's loss is huge but finite, and from step 3 on the loss is NaN. The step is not hard-coded:
the stop run's report names it, and the skip run is checked against it.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from tiny_runs import (
    LATEST,
    assert_same_tensors,
    load_checkpoint,
    make_tiny_dataset,
    read_stats,
    tiny_overrides,
)
from tool_calls import call_tool
from torch.utils.data import DistributedSampler

from videovit.data.lists import read_list

STEPS = 6
EXPLODING = {"SOLVER.BASE_LR": 1e6, "SOLVER.WARMUP_EPOCHS": 0.0, "SOLVER.CLIP_GRAD": 0.0, "SOLVER.WEIGHT_DECAY": 0.0,
             "AMP.ENABLE": False, "TRAIN.EPOCHS": 1, "TRAIN.BATCH_SIZE": 2, "TRAIN.CHECKPOINT_EVERY_STEPS": 1,
             "TRAIN.EVAL_PERIOD": 0, "TEST.ENABLE": False}


def batch_paths(lists: Path, videos: Path, step: int, batch_size: int = 2) -> list[str]:
    """Videos of 1-based ``step`` of epoch 1, in the training sampler's shuffled order (seed 0)."""
    entries = read_list(lists / "train.csv")
    sampler = DistributedSampler(entries, num_replicas=1, rank=0, shuffle=True, seed=0, drop_last=True)
    sampler.set_epoch(0)
    order = list(sampler)[(step - 1) * batch_size: step * batch_size]
    return [str(videos / entries[i].path) for i in order]


def adam_state(checkpoint: dict) -> dict:
    """Every parameter's AdamW step count and moments in a checkpoint."""
    return {(index, key): state[key] for index, state in checkpoint["optimizer"]["state"].items()
            for key in ("step", "exp_avg", "exp_avg_sq")}


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory) -> tuple[Path, Path]:
    return make_tiny_dataset(tmp_path_factory.mktemp("numbers_data"), {"train": 4})


@pytest.fixture(scope="module")
def stopped(tiny_data, tmp_path_factory) -> tuple[Path, str, int]:
    """The stop run: output folder, its stderr, and the global step its report names."""
    output_dir = tmp_path_factory.mktemp("stop")
    done = call_tool("run_net.py", tiny_overrides(*tiny_data, output_dir, **EXPLODING))
    assert done.status == 1, done.err[-3000:]
    found = re.search(r"at epoch 1 step (\d+) \(global step (\d+)\)", done.err)
    assert found and found.group(1) == found.group(2), done.err[-3000:]
    return output_dir, done.err, int(found.group(2))


def test_nonfinite_loss_stops_with_the_step_the_batch_and_the_last_good_checkpoint(tiny_data, stopped) -> None:
    output_dir, stderr, step = stopped
    assert 1 < step <= STEPS, "step 1 starts from finite random weights; a later step must overflow"
    assert stderr.startswith("error: non-finite loss (this process: ") and "Traceback" not in stderr
    videos = ", ".join(batch_paths(*tiny_data, step))
    assert f"Videos of this process's batch: {videos}. " in stderr
    latest = output_dir / LATEST
    assert f"Last good checkpoint: {latest} (a rerun resumes from it)" in stderr
    assert load_checkpoint(latest)["global_step"] == step - 1
    assert "TRAIN.NONFINITE_LOSS skip" in stderr and "Lower SOLVER.BASE_LR" in stderr
    message = stderr.removeprefix("error: ").strip()
    assert message in (output_dir / "log.txt").read_text(), "the report is also in the run's log"


def test_skipped_steps_are_counted_and_leave_the_weights_unchanged(tiny_data, stopped, tmp_path) -> None:
    stop_dir, _, first_bad = stopped
    output_dir = tmp_path / "skip"
    skip = {**EXPLODING, "TRAIN.NONFINITE_LOSS": "skip"}
    done = call_tool("run_net.py", tiny_overrides(*tiny_data, output_dir, **skip))
    assert done.status == 0, done.err[-3000:]

    skipped = STEPS - first_bad + 1
    assert read_stats(output_dir, "train_epoch")[0]["skipped_steps"] == skipped
    log = (output_dir / "log.txt").read_text()
    for step in range(first_bad, STEPS + 1):
        videos = ", ".join(batch_paths(*tiny_data, step))
        assert (f"non-finite loss on some process at epoch 1 step {step} (global step {step}): step skipped "
                f"(TRAIN.NONFINITE_LOSS skip). Videos of this process's batch: {videos}") in log
    assert f"{skipped} steps skipped" in log
    final, before_first_bad = load_checkpoint(output_dir / LATEST), load_checkpoint(stop_dir / LATEST)
    assert (final["global_step"], before_first_bad["global_step"]) == (STEPS, first_bad - 1)
    assert_same_tensors(final["model"], before_first_bad["model"])
    assert_same_tensors(adam_state(final), adam_state(before_first_bad))
