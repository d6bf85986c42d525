"""Killed runs: SIGKILL at any step, or in the middle of a checkpoint write, loses nothing.

Every run here is the real command line (``tools/run_net.py`` in a subprocess, one CPU thread) on
the tiny generated dataset of tests/tiny_runs.py: 12 clips, 2 per step, so 6 steps per epoch, 2
epochs, a checkpoint every 2 steps (TRAIN.CHECKPOINT_EVERY_STEPS) besides the epoch ends, drop path
and mixup on (so the restored random streams matter) and DETERMINISTIC. A run is killed once its log
shows a chosen step, then the same command is run again; its final weights must equal those of an
uninterrupted run exactly.
"""
from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from saved_models import zero_four_kilobytes
from tiny_runs import (
    RUN_NET,
    RUN_TIMEOUT,
    SETTINGS,
    assert_same_final_state,
    cli_env,
    load_checkpoint,
    make_tiny_dataset,
    resumed_step,
    run_to_completion,
    stats_steps,
    tiny_overrides,
)

pytestmark = pytest.mark.slow  # subprocesses killed with SIGKILL and restarted

REPO_ROOT = Path(__file__).resolve().parents[1]

# Runs tools/run_net.py with os.replace patched: the KILL_AT_WRITE-th rename of a finished temporary
# file onto checkpoint_latest.pyth SIGKILLs the process instead, i.e. between write and rename.
KILL_DURING_WRITE = """
import os, runpy, signal, sys
writes, real_replace = 0, os.replace
def replace_or_die(source, target):
    global writes
    if os.path.basename(target) == "checkpoint_latest.pyth":
        writes += 1
        if writes == int(os.environ["KILL_AT_WRITE"]):
            os.kill(os.getpid(), signal.SIGKILL)
    real_replace(source, target)
os.replace = replace_or_die
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def kill_when_logged(args: list[str], output_dir: Path, line: str) -> str:
    """Start the CLI, SIGKILL it as soon as ``output_dir/log.txt`` contains ``line``; return the log."""
    log_file, stderr_file = output_dir / "log.txt", output_dir.with_name(f"{output_dir.name}.stderr")
    with stderr_file.open("w") as stderr, subprocess.Popen([sys.executable, str(RUN_NET), *args], cwd=REPO_ROOT,
                                                           env=cli_env(), stdout=subprocess.DEVNULL,
                                                           stderr=stderr) as process:
        deadline = time.monotonic() + RUN_TIMEOUT
        while not (log_file.is_file() and line in log_file.read_text()):
            assert process.poll() is None, f"the run ended before logging {line!r}:\n{stderr_file.read_text()}"
            assert time.monotonic() < deadline, f"{line!r} never appeared in {log_file}"
            time.sleep(0.01)
        os.kill(process.pid, signal.SIGKILL)
        assert process.wait() == -signal.SIGKILL
    return log_file.read_text()


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory) -> tuple[Path, Path]:
    return make_tiny_dataset(tmp_path_factory.mktemp("kill_data"), {"train": 4})


@pytest.fixture(scope="module")
def reference(tiny_data, tmp_path_factory) -> Path:
    """The uninterrupted run (no workers)."""
    output_dir = tmp_path_factory.mktemp("uninterrupted")
    log = run_to_completion(tiny_overrides(*tiny_data, output_dir, **SETTINGS))
    assert "(mid-epoch: epoch 1 step 2, global step 2)" in log and "(epoch 1, step 6)" in log
    return output_dir


@pytest.mark.parametrize("workers,kill_after", [(0, "epoch 2/2 step 3/6"), (2, "epoch 1/2 step 3/6")])
def test_sigkill_mid_epoch_then_same_command_gives_the_uninterrupted_weights(
        tiny_data, reference, tmp_path, workers: int, kill_after: str) -> None:
    output_dir = tmp_path / "killed"
    args = tiny_overrides(*tiny_data, output_dir, **SETTINGS, **{"DATA_LOADER.NUM_WORKERS": workers})
    killed_log = kill_when_logged(args, output_dir, kill_after)
    last_saved = int(re.findall(r"saved checkpoint \S+ \(.*step (\d+)\)", killed_log)[-1])

    restart_log = run_to_completion(args)

    name, step, into_epoch = resumed_step(restart_log)
    # The newest save the log reported, or (killed between its rename and its log line) the next one.
    assert name == "checkpoint_latest.pyth" and step in (last_saved, last_saved + 2)
    assert into_epoch == step % 6 and into_epoch > 0, "the kill was meant to land in the middle of an epoch"
    assert "continuing with its next batch" in restart_log
    first_logged = re.search(r"epoch (\d)/2 step (\d)/6", restart_log)
    assert (int(first_logged.group(1)) - 1) * 6 + int(first_logged.group(2)) == step + 1
    assert_same_final_state(output_dir, reference)
    assert stats_steps(output_dir) == stats_steps(reference), "replayed steps must not be recorded twice"


def test_sigkill_between_checkpoint_write_and_rename_keeps_the_previous_checkpoint(
        tiny_data, reference, tmp_path) -> None:
    output_dir = tmp_path / "killed_while_saving"
    args = tiny_overrides(*tiny_data, output_dir, **SETTINGS)
    dying = subprocess.run([sys.executable, "-c", KILL_DURING_WRITE, str(RUN_NET), *args], cwd=REPO_ROOT,
                           env=cli_env(KILL_AT_WRITE="3"), capture_output=True, text=True, timeout=RUN_TIMEOUT)
    assert dying.returncode == -signal.SIGKILL, dying.stderr[-3000:]
    folder = output_dir / "checkpoints"
    leftovers = list(folder.glob(".checkpoint_latest.pyth.*.tmp"))
    assert len(leftovers) == 1, "the third save (end of epoch 1) was killed after writing its temporary file"
    assert load_checkpoint(folder / "checkpoint_latest.pyth")["global_step"] == 4
    assert not (folder / "checkpoint_epoch_00001.pyth").exists()

    restart_log = run_to_completion(args)

    assert f"removed {leftovers[0]}: a checkpoint write that never finished" in restart_log
    assert resumed_step(restart_log) == ("checkpoint_latest.pyth", 4, 4)
    assert not list(folder.glob(".*.tmp"))
    assert_same_final_state(output_dir, reference)


@pytest.mark.parametrize("damage,reason", [
    (lambda whole: whole[: len(whole) // 2], "is a truncated or damaged zip archive"),
    (zero_four_kilobytes, "is damaged: its contents do not match the SHA-256 checksum saved in it"),
], ids=["torn", "zeroed_4k"])
def test_damaged_newest_checkpoint_is_skipped_with_the_reason_and_the_previous_one_used(
        tiny_data, reference, tmp_path, damage, reason) -> None:
    output_dir = tmp_path / "damaged"
    shutil.copytree(reference, output_dir)
    folder = output_dir / "checkpoints"
    whole = (folder / "checkpoint_latest.pyth").read_bytes()
    (folder / "checkpoint_latest.pyth").unlink()       # a hard link of epoch 2's: write a new file
    (folder / "checkpoint_latest.pyth").write_bytes(damage(whole))
    (folder / "checkpoint_epoch_00002.pyth").unlink()  # epoch 2's save tore before its periodic copy
    (output_dir / "log.txt").unlink()

    restart_log = run_to_completion(tiny_overrides(*tiny_data, output_dir, **SETTINGS))

    assert re.search(rf"skipping checkpoint_latest\.pyth, trying an older checkpoint: \S+checkpoint_latest\.pyth "
                     rf"{reason}", restart_log), restart_log
    assert resumed_step(restart_log) == ("checkpoint_epoch_00001.pyth", 6, 0)
    assert "epoch 1/2" not in restart_log and "epoch 2/2 step 1/6" in restart_log
    assert_same_final_state(output_dir, reference)
