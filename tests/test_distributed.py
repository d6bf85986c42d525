"""Two gloo processes under torchrun behave like one process with the same global batch.

Training: 2 processes x 2 clips must reach the weights of 1 process x 4 clips after 3 steps (no
dropout, drop path or mixup; augmentation is seeded per sample, so it may stay on). Testing: 7
videos x 3 views (21 views, not divisible by 2, one video broken) must score every good video
exactly once with the same probabilities whatever the number of processes.
"""
from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from built_once import built_once
from tiny_runs import assert_same_tensors, load_checkpoint, make_tiny_dataset, run_tiny, tiny_overrides

pytestmark = pytest.mark.slow  # torchrun with two gloo processes

REPO_ROOT = Path(__file__).resolve().parents[1]
SETTINGS = {"TRAIN.EPOCHS": 1, "TRAIN.EVAL_PERIOD": 0, "SOLVER.WARMUP_EPOCHS": 0.5, "TEST.NUM_SPATIAL_CROPS": 3}


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory) -> tuple[Path, Path]:
    return built_once(tmp_path_factory, "ddp_data",
                      lambda root: make_tiny_dataset(root, {"train": 4, "test": 2}, broken_in=("test",)))


@pytest.fixture(scope="module")
def two_process_run(tiny_data, tmp_path_factory) -> Path:
    """tools/run_net.py under ``torchrun --nproc_per_node 2``: train 3 steps of 2 x 2 clips, then test (one run
    per session, shared by both tests)."""
    def train_and_test(output_dir: Path) -> Path:
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                   "tools/run_net.py",
                   *tiny_overrides(*tiny_data, output_dir, **SETTINGS, **{"TRAIN.BATCH_SIZE": 2})]
        done = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, f"torchrun failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        return output_dir

    return built_once(tmp_path_factory, "two_processes", train_and_test)


def test_two_processes_match_one_process_with_the_same_global_batch(two_process_run, tiny_data, tmp_path) -> None:
    run_tiny(*tiny_data, tmp_path, **SETTINGS, **{"TRAIN.BATCH_SIZE": 4, "TEST.ENABLE": False})
    one = load_checkpoint(tmp_path / "checkpoints" / "checkpoint_latest.pyth")
    two = load_checkpoint(two_process_run / "checkpoints" / "checkpoint_latest.pyth")
    assert one["global_step"] == two["global_step"] == 3
    assert_same_tensors(one["model"], two["model"], atol=1e-5)
    initial_lr = one["optimizer"]["param_groups"][0]["initial_lr"]
    assert initial_lr == two["optimizer"]["param_groups"][0]["initial_lr"] == pytest.approx(1e-3)
    log = (two_process_run / "log.txt").read_text()
    assert "2 process(es), backend gloo" in log and "2 clips x 2 processes" in log


def test_multiview_test_scores_each_video_once_whatever_the_process_count(two_process_run, tiny_data,
                                                                          tmp_path) -> None:
    checkpoint = two_process_run / "checkpoints" / "checkpoint_latest.pyth"
    run_tiny(*tiny_data, tmp_path, **SETTINGS, **{"TRAIN.ENABLE": False, "TEST.CHECKPOINT_FILE_PATH": checkpoint})
    for output_dir in (two_process_run, tmp_path):
        metrics = json.loads((output_dir / "metrics.json").read_text())
        assert (metrics["videos_scored"], metrics["videos_total"]) == (6, 7)
        assert metrics["views_per_video"] == 3 and len(metrics["failed_videos"]) == 1
        rows = list(csv.DictReader((output_dir / "predictions.csv").open()))
        assert sorted(int(r["video_index"]) for r in rows) == list(range(6))
    two = np.load(two_process_run / "probabilities.npy")
    one = np.load(tmp_path / "probabilities.npy")
    assert np.isnan(one[6]).all() and np.isnan(two[6]).all()
    assert np.allclose(one[:6], two[:6], atol=1e-5)
    assert np.allclose(one[:6].sum(axis=1), 1.0, atol=1e-5)
