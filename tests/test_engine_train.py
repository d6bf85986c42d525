"""Short CPU training runs on a tiny generated dataset: learning, checkpoints, resume, failures.

The dataset (tests/tiny_runs.py) is written by the test itself: 3 classes told apart by colour,
4-frame 32x32 H.264 clips, one zero-byte "video" in the training list (replaced and counted) and
one in the test list (excluded from the metrics).
"""
from __future__ import annotations

import json
import re
import runpy
import shutil
from pathlib import Path

import pytest
import torch
from tiny_runs import (
    BROKEN,
    CLASSES,
    assert_same_tensors,
    load_checkpoint,
    make_tiny_dataset,
    read_stats,
    run_tiny,
    tiny_overrides,
)

from videovit.config import load_config
from videovit.engine.randomness import STREAMS
from videovit.engine.trainer import CHECKPOINT_FORMAT
from videovit.errors import ConfigError, NonFiniteLossError

REPO_ROOT = Path(__file__).resolve().parents[1]

@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory) -> tuple[Path, Path]:
    return make_tiny_dataset(tmp_path_factory.mktemp("tiny"), {"train": 4, "val": 1, "test": 2},
                             broken_in=("train", "test"))


@pytest.fixture(scope="module")
def trained(tiny_data, tmp_path_factory) -> tuple[Path, dict]:
    """One 3-epoch run (3 steps per epoch) with validation and the multi-view test."""
    output_dir = tmp_path_factory.mktemp("trained")
    metrics = run_tiny(*tiny_data, output_dir)
    return output_dir, metrics


def test_training_lowers_the_loss_and_writes_its_outputs(trained) -> None:
    output_dir, metrics = trained
    epochs = read_stats(output_dir, "train_epoch")
    assert [e["epoch"] for e in epochs] == [1, 2, 3]
    assert epochs[-1]["loss"] < 0.8 * epochs[0]["loss"]
    steps = read_stats(output_dir, "train")
    assert [s["global_step"] for s in steps] == list(range(1, 10))
    assert all(s["clips_per_s"] > 0 and s["data_s"] >= 0 and s["compute_s"] > 0 for s in steps)
    assert len(read_stats(output_dir, "val")) == 3
    log = (output_dir / "log.txt").read_text()
    assert "clip-level validation" in log and "eta" in log
    assert (output_dir / "config.yaml").is_file()
    saved = json.loads((output_dir / "metrics.json").read_text())
    assert saved == json.loads(json.dumps(metrics))
    assert (saved["videos_scored"], saved["videos_total"]) == (6, 7)
    assert saved["failed_videos"][0]["path"].endswith(BROKEN)
    assert "scored 6 of 7 videos" in log and "softmax probabilities averaged" in log


def test_broken_training_video_is_replaced_logged_and_counted(trained) -> None:
    output_dir, _ = trained
    log = (output_dir / "log.txt").read_text()
    assert "replaced a video that failed to decode: " in log and BROKEN in log
    assert all(e["failed_videos"] == 1 for e in read_stats(output_dir, "train_epoch"))


def test_checkpoints_hold_the_full_state_and_rotate(trained) -> None:
    output_dir, _ = trained
    folder = output_dir / "checkpoints"
    assert sorted(p.name for p in folder.iterdir()) == [
        "checkpoint_epoch_00001.pyth", "checkpoint_epoch_00002.pyth", "checkpoint_epoch_00003.pyth",
        "checkpoint_latest.pyth"]
    state = load_checkpoint(folder / "checkpoint_latest.pyth")
    assert (state["epoch"], state["global_step"]) == (3, 9)
    assert state["class_names"] == CLASSES and len(state["list_hash"]) == 64
    assert "MODEL:" in state["config"] and state["optimizer"]["state"]
    assert state["rng"] == {"seed": 0, "streams": STREAMS}, "no per-process generator state is gathered"
    assert state["format"] == CHECKPOINT_FORMAT and state["epoch_sums"] is None  # sums only mid-epoch


def test_resume_after_a_stop_continues_at_the_right_step_with_equal_weights(trained, tiny_data, tmp_path) -> None:
    reference_dir, _ = trained
    reference = load_checkpoint(reference_dir / "checkpoints" / "checkpoint_latest.pyth")
    output_dir = tmp_path / "stopped"
    shutil.copytree(reference_dir, output_dir)
    for name in ("checkpoint_latest.pyth", "checkpoint_epoch_00003.pyth"):   # the run "stopped" in epoch 3
        (output_dir / "checkpoints" / name).unlink()
    (output_dir / "log.txt").unlink()

    run_tiny(*tiny_data, output_dir, **{"TEST.ENABLE": False})

    log = (output_dir / "log.txt").read_text()
    assert "checkpoint_epoch_00002.pyth at epoch 2 step 6" in log and "resuming from" in log
    assert "epoch 1/3" not in log and "epoch 3/3 step 1/3" in log
    resumed = load_checkpoint(output_dir / "checkpoints" / "checkpoint_latest.pyth")
    assert (resumed["epoch"], resumed["global_step"]) == (3, 9)
    assert_same_tensors(resumed["model"], reference["model"])
    first_state = reference["optimizer"]["state"][0]
    assert torch.equal(resumed["optimizer"]["state"][0]["exp_avg"], first_state["exp_avg"])


def test_unreadable_newest_checkpoint_falls_back_to_an_older_one(trained, tiny_data, tmp_path) -> None:
    output_dir = tmp_path / "corrupt"
    shutil.copytree(trained[0], output_dir)
    latest = output_dir / "checkpoints" / "checkpoint_latest.pyth"
    latest.unlink()
    latest.write_bytes(b"not a checkpoint")
    (output_dir / "checkpoints" / "checkpoint_epoch_00003.pyth").unlink()
    run_tiny(*tiny_data, output_dir, **{"TEST.ENABLE": False, "TRAIN.EPOCHS": 2})
    log = (output_dir / "log.txt").read_text()
    assert "skipping checkpoint_latest.pyth, trying an older checkpoint: " in log
    assert "checkpoint_latest.pyth is a text file, not a checkpoint" in log
    assert "checkpoint_epoch_00002.pyth at epoch 2 step 6" in log and "training already complete" in log


def test_initial_weights_are_finetuned_unless_the_run_resumes(trained, tiny_data, tmp_path) -> None:
    initial = trained[0] / "checkpoints" / "checkpoint_epoch_00001.pyth"
    fresh = tmp_path / "fresh"
    run_tiny(*tiny_data, fresh, **{"TRAIN.CHECKPOINT_FILE_PATH": initial, "TRAIN.EPOCHS": 1,
                                    "TRAIN.EVAL_PERIOD": 0, "TEST.ENABLE": False})
    log = (fresh / "log.txt").read_text()
    assert f"finetuning from {initial}" in log and "load report" in log

    run_tiny(*tiny_data, fresh, **{"TRAIN.CHECKPOINT_FILE_PATH": initial, "TRAIN.EPOCHS": 1,
                                    "TRAIN.EVAL_PERIOD": 0, "TEST.ENABLE": False})
    log = (fresh / "log.txt").read_text()
    assert "ignoring TRAIN.CHECKPOINT_FILE_PATH" in log and "because the run resumes from" in log


def test_nonfinite_loss_stops_with_a_report(tiny_data, tmp_path) -> None:
    exploding = {"SOLVER.BASE_LR": 1e6, "SOLVER.WARMUP_EPOCHS": 0.0, "SOLVER.CLIP_GRAD": 0.0,
                 "SOLVER.WEIGHT_DECAY": 0.0, "TRAIN.EVAL_PERIOD": 0, "TEST.ENABLE": False}
    with pytest.raises(NonFiniteLossError) as error:
        run_tiny(*tiny_data, tmp_path / "stop", **exploding)
    message = str(error.value)
    assert "non-finite loss" in message and "global step" in message
    assert ".mp4" in message and "Last good checkpoint" in message

    run_tiny(*tiny_data, tmp_path / "skip", **exploding, **{"TRAIN.NONFINITE_LOSS": "skip", "TRAIN.EPOCHS": 1})
    epoch = read_stats(tmp_path / "skip", "train_epoch")[0]
    assert epoch["skipped_steps"] >= 1
    assert load_checkpoint(tmp_path / "skip" / "checkpoints" / "checkpoint_latest.pyth")["global_step"] == 3


def test_a_changed_schedule_on_resume_is_refused_and_the_error_ends_the_log(trained, tiny_data, tmp_path) -> None:
    output_dir = tmp_path / "longer"
    shutil.copytree(trained[0], output_dir)
    with pytest.raises(ConfigError, match=r"another learning-rate plan \(TRAIN.EPOCHS 3 -> 4\)") as error:
        run_tiny(*tiny_data, output_dir, **{"TRAIN.EPOCHS": 4, "TEST.ENABLE": False})
    assert "TRAIN.CHECKPOINT_FILE_PATH" in str(error.value)
    last = (output_dir / "log.txt").read_text().splitlines()[-1]
    assert last.endswith(f"error: {error.value}".splitlines()[-1]), "the log ends with the error"
    assert load_checkpoint(output_dir / "checkpoints" / "checkpoint_latest.pyth")["global_step"] == 9


def test_a_bug_writes_its_traceback_into_the_log(tiny_data, tmp_path, monkeypatch) -> None:
    from videovit.engine.trainer import Trainer

    def broken_fit(self):
        raise RuntimeError("a bug in the engine")

    monkeypatch.setattr(Trainer, "fit", broken_fit)
    with pytest.raises(RuntimeError):
        run_tiny(*tiny_data, tmp_path, **{"TEST.ENABLE": False, "TRAIN.EVAL_PERIOD": 0})
    log = (tmp_path / "log.txt").read_text()
    assert "error: a bug in the engine\nTraceback (most recent call last):" in log
    assert log.splitlines()[-1] == "RuntimeError: a bug in the engine"


def test_max_steps_caps_the_run_and_a_run_without_the_cap_continues(trained, tiny_data, tmp_path) -> None:
    output_dir = tmp_path / "capped"
    smoke = {"TRAIN.EVAL_PERIOD": 0, "TEST.ENABLE": False}
    run_tiny(*tiny_data, output_dir, **smoke, **{"TRAIN.MAX_STEPS": 4})
    capped = load_checkpoint(output_dir / "checkpoints" / "checkpoint_latest.pyth")
    assert (capped["epoch"], capped["global_step"], capped["epoch_step"]) == (1, 4, 1)
    assert "stopped at TRAIN.MAX_STEPS 4 (epoch 2 step 1)" in (output_dir / "log.txt").read_text()
    assert capped["epoch_sums"]["batches"] == 1, "the unfinished epoch's sums travel with the checkpoint"

    run_tiny(*tiny_data, output_dir, **smoke)
    final = load_checkpoint(output_dir / "checkpoints" / "checkpoint_latest.pyth")
    reference = load_checkpoint(trained[0] / "checkpoints" / "checkpoint_latest.pyth")
    assert final["global_step"] == 9
    assert_same_tensors(final["model"], reference["model"])  # validation draws nothing from the streams


def test_a_checkpoint_written_before_the_trainer_still_resumes(trained, tiny_data, tmp_path) -> None:
    output_dir = tmp_path / "old_format"
    shutil.copytree(trained[0], output_dir)
    folder = output_dir / "checkpoints"
    for name in ("checkpoint_latest.pyth", "checkpoint_epoch_00003.pyth"):
        (folder / name).unlink()
    old = load_checkpoint(folder / "checkpoint_epoch_00002.pyth")
    for key in ("format", "epoch_sums", "epoch_timing"):
        del old[key]
    old["rng"] = [{"torch": torch.get_rng_state(), "cuda": [], "numpy": {}, "python": {}}]  # per-process states
    (folder / "checkpoint_epoch_00002.pyth").unlink()
    torch.save(old, folder / "checkpoint_epoch_00002.pyth")
    run_tiny(*tiny_data, output_dir, **{"TEST.ENABLE": False})
    log = (output_dir / "log.txt").read_text()
    assert "was written by an earlier videovit" in log and "resuming from" in log
    assert load_checkpoint(folder / "checkpoint_latest.pyth")["global_step"] == 9


def test_validation_names_the_clips_it_could_not_decode(tiny_data, tmp_path) -> None:
    lists = tmp_path / "lists"
    shutil.copytree(tiny_data[0], lists)
    with (lists / "val.csv").open("a") as stream:
        stream.write(f"{BROKEN} 1\n")
    run_tiny(lists, tiny_data[1], tmp_path / "out", **{"TRAIN.EPOCHS": 1, "TEST.ENABLE": False})
    log = (tmp_path / "out" / "log.txt").read_text()
    assert re.search(rf"on 3 clips of 4 videos; 1 could not be decoded and were left out: \S+{BROKEN}: ", log)
    assert read_stats(tmp_path / "out", "val")[0]["failed_videos"] == 1


@pytest.mark.parametrize("overrides,expected", [
    (["TRAIN.BATCH_SIZE", "0"], "TRAIN.BATCH_SIZE = 0 must be >= 1"),
    (["DATA.PATH_TO_DATA_DIR", "no/such/lists"], "cannot build the train dataset"),
])
def test_run_net_prints_user_errors_without_traceback(tmp_path, capsys, overrides: list[str],
                                                      expected: str) -> None:
    main = runpy.run_path(str(REPO_ROOT / "tools" / "run_net.py"))["main"]
    assert main(["OUTPUT_DIR", str(tmp_path), "DEVICE", "cpu", *overrides]) == 2
    stderr = capsys.readouterr().err
    assert stderr.startswith("error: ") and expected in stderr and "Traceback" not in stderr


# ---------------------------------------------------------------------------- optimiser and schedule

def _tiny_cfg(tmp_path: Path, **extra: object):
    return load_config([], tiny_overrides(tmp_path / "lists", tmp_path / "videos", tmp_path / "out", **extra))


def test_weight_decay_skips_norms_biases_embeddings_and_relative_position_tables(tmp_path) -> None:
    from videovit.engine.optim import build_optimizer
    from videovit.models import build_model

    model = build_model(_tiny_cfg(tmp_path))
    optimizer = build_optimizer(_tiny_cfg(tmp_path, **{"SOLVER.WEIGHT_DECAY": 0.05}), model, world_size=1)
    names = {id(p): n for n, p in model.named_parameters()}
    no_decay = {names[id(p)] for g in optimizer.param_groups if g["weight_decay"] == 0 for p in g["params"]}
    decay = {names[id(p)] for g in optimizer.param_groups if g["weight_decay"] == 0.05 for p in g["params"]}
    assert no_decay | decay == set(names.values()) and not no_decay & decay
    assert "time_embed.weight" in no_decay
    assert any(n.endswith(".rel_pos") for n in no_decay) and not any(n.endswith(".rel_pos") for n in decay)
    params = dict(model.named_parameters())
    assert all(params[n].ndim <= 1 or n == "time_embed.weight" or n.endswith(".rel_pos") for n in no_decay)
    assert "head.weight" in decay and "head.bias" in no_decay and "norm.weight" in no_decay
    assert any(".temporal.attn.qkv.weight" in n for n in decay)


def test_layer_decay_scales_blocks_from_the_stem_to_the_head(tmp_path) -> None:
    from videovit.engine.optim import layer_ids, parameter_groups
    from videovit.models import build_model

    model = build_model(_tiny_cfg(tmp_path))          # 4 R2L blocks
    ids = layer_ids(model)
    assert ids["patch_embed.proj.0.weight"] == ids["regional_embed.proj.weight"] == 0
    assert ids["layers.0.blocks.0.attn.qkv.weight"] == 1 and ids["layers.3.blocks.0.mlp.fc1.weight"] == 4
    assert ids["layers.1.downsample.proj.2.weight"] == 2                   # joins the next block
    assert ids["head.weight"] == ids["norm.weight"] == 5
    groups = parameter_groups(model, weight_decay=0.05, layer_decay=0.5)
    scale_of = {id(p): g["lr_scale"] for g in groups for p in g["params"]}
    named = dict(model.named_parameters())
    assert scale_of[id(named["head.weight"])] == 1.0
    assert scale_of[id(named["layers.0.blocks.0.attn.qkv.weight"])] == pytest.approx(0.5 ** 4)
    assert scale_of[id(named["time_embed.weight"])] == pytest.approx(0.5 ** 5)


@pytest.mark.parametrize("world_size,accum,scaling,expected", [(1, 1, "linear", 1e-3), (2, 1, "linear", 2e-3),
                                                               (2, 3, "linear", 6e-3), (2, 3, "none", 1e-3)])
def test_learning_rate_follows_the_global_batch(tmp_path, world_size, accum, scaling, expected) -> None:
    from videovit.engine.optim import build_optimizer, global_batch_size
    from videovit.models import build_model

    cfg = _tiny_cfg(tmp_path, **{"TRAIN.ACCUM_STEPS": accum, "SOLVER.LR_SCALING": scaling})
    assert global_batch_size(cfg, world_size) == 4 * world_size * accum
    optimizer = build_optimizer(cfg, build_model(cfg), world_size)
    assert [g["lr"] for g in optimizer.param_groups] == pytest.approx([expected] * len(optimizer.param_groups))


def test_adam_and_adamw_use_the_fused_kernel_on_cuda_and_it_steps_like_the_default(tmp_path) -> None:
    from videovit.engine.optim import build_optimizer, uses_fused_kernel
    from videovit.models import build_model

    cuda, cpu = torch.device("cuda"), torch.device("cpu")
    assert uses_fused_kernel("adamw", cuda) and uses_fused_kernel("AdamW", cuda) and uses_fused_kernel("adam", cuda)
    assert not uses_fused_kernel("adamw", cpu) and not uses_fused_kernel("sgd", cuda)
    cfg = _tiny_cfg(tmp_path, **{"SOLVER.OPTIMIZER": "adamw"})
    assert not build_optimizer(cfg, build_model(cfg), 1).defaults.get("fused")  # a CPU model: the default path
    steps = []
    for fused in (False, True):  # PyTorch's fused AdamW also runs on CPU, so its step is checked here
        torch.manual_seed(0)
        model = build_model(cfg)
        optimizer = build_optimizer(cfg, model, 1, fused=fused)
        assert bool(optimizer.defaults.get("fused")) == fused
        model(torch.randn(2, 3, cfg.DATA.NUM_FRAMES, 32, 32)).sum().backward()
        optimizer.step()
        steps.append(torch.cat([p.detach().flatten() for p in model.parameters()]))
    assert torch.allclose(steps[0], steps[1], atol=1e-6)


def test_schedule_warms_up_linearly_then_follows_a_cosine_to_the_minimum(tmp_path) -> None:
    from videovit.engine.optim import build_optimizer
    from videovit.engine.schedule import build_scheduler, current_lr
    from videovit.models import build_model

    cfg = _tiny_cfg(tmp_path, **{"TRAIN.EPOCHS": 4, "SOLVER.WARMUP_EPOCHS": 1.0, "SOLVER.BASE_LR": 1e-3,
                                 "SOLVER.WARMUP_START_LR": 1e-5, "SOLVER.MIN_LR": 1e-5})
    optimizer = build_optimizer(cfg, build_model(cfg), world_size=1)
    scheduler = build_scheduler(cfg, optimizer, steps_per_epoch=10, world_size=1)
    rates = []
    for step in range(41):
        scheduler.step_update(num_updates=step)
        rates.append(current_lr(optimizer))
    assert rates[0] == pytest.approx(1e-5)
    assert rates[5] == pytest.approx(1e-5 + 0.5 * (1e-3 - 1e-5))          # half-way through warm-up
    assert rates[10] == pytest.approx(1e-3)                               # peak after 10 steps
    assert rates[25] == pytest.approx(1e-5 + 0.5 * (1e-3 - 1e-5))         # cosine mid-point
    assert rates[40] == pytest.approx(1e-5)
    assert all(a >= b for a, b in zip(rates[10:], rates[11:], strict=False))
