"""Preemption: SIGTERM / SIGINT during training are acknowledged at once, finish the step, checkpoint,
print one line and exit 143 / 130; the same command then resumes at the next batch and ends with the
uninterrupted run's weights. (The other phases of a run: tests/test_interrupts.py.)

Real signals to real processes: ``tools/run_net.py`` in a subprocess (test_reliability_kill.py's tiny
run: 6 steps per epoch, 2 epochs, mixup and drop path on, DETERMINISTIC) and a 2-process gloo
``torchrun`` whose rank 1 alone gets the signal. Mid-epoch checkpoints are off
(TRAIN.CHECKPOINT_EVERY_STEPS 0), so the checkpoint the rerun resumes from is the one the signal wrote.
"""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from built_once import built_once
from tiny_runs import (
    LATEST,
    RUN_NET,
    RUN_TIMEOUT,
    SETTINGS,
    assert_same_final_state,
    assert_same_tensors,
    cli_env,
    load_checkpoint,
    make_tiny_dataset,
    read_stats,
    resumed_step,
    run_to_completion,
    tiny_overrides,
)

REPO_ROOT = Path(__file__).resolve().parents[1]
NO_MID_EPOCH_SAVES = {**SETTINGS, "TRAIN.CHECKPOINT_EVERY_STEPS": 0}
# Two processes x 1 clip: the same 6 steps per epoch on 12 clips.
TWO_PROCESSES = {**NO_MID_EPOCH_SAVES, "TRAIN.BATCH_SIZE": 1}
TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", str(RUN_NET)]
INTERRUPTED = re.compile(r"interrupted by (SIG\w+) at epoch (\d+) step (\d+); checkpoint (\S+); "
                         r"rerun the same command to resume$")
pytestmark = pytest.mark.slow

# Runs tools/run_net.py with os.replace slowed down for checkpoint_latest.pyth: a save then hangs
# between writing its temporary file and renaming it, long enough to send a second signal.
SLOW_SAVE = """
import os, runpy, sys, time
real_replace = os.replace
def slow_replace(source, target):
    if os.path.basename(target) == "checkpoint_latest.pyth":
        time.sleep(120)
    real_replace(source, target)
os.replace = slow_replace
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory) -> tuple[Path, Path]:
    return built_once(tmp_path_factory, "preempt_data", lambda root: make_tiny_dataset(root, {"train": 4}))


@pytest.fixture(scope="module")
def reference(tiny_data, tmp_path_factory) -> Path:
    """The uninterrupted single-process run."""
    output_dir = tmp_path_factory.mktemp("uninterrupted")
    run_to_completion(tiny_overrides(*tiny_data, output_dir, **NO_MID_EPOCH_SAVES))
    return output_dir


def wait_for_line(log_file: Path, line: str, process: subprocess.Popen) -> None:
    """Poll ``log_file`` until it contains ``line`` (the process must still be running)."""
    deadline = time.monotonic() + RUN_TIMEOUT
    while not (log_file.is_file() and line in log_file.read_text()):
        assert process.poll() is None, f"the run ended before logging {line!r}"
        assert time.monotonic() < deadline, f"{line!r} never appeared in {log_file}"
        time.sleep(0.01)


def interrupt_when_logged(command: list[str], output_dir: Path, line: str, signum: int,
                          whole_group: bool = False) -> tuple[int, str, str]:
    """Start ``command``, send ``signum`` once ``line`` is logged (to the process, or to its whole
    process group like a terminal's Ctrl-C); return (status, stdout, stderr)."""
    with subprocess.Popen(command, cwd=REPO_ROOT, env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True, start_new_session=True) as process:
        wait_for_line(output_dir / "log.txt", line, process)
        if whole_group:
            os.killpg(process.pid, signum)
        else:
            process.send_signal(signum)
        stdout, stderr = process.communicate(timeout=RUN_TIMEOUT)
    return process.returncode, stdout, stderr


def epoch_summaries(output_dir: Path) -> list[tuple[int, float, int, int]]:
    """(epoch, mean loss, videos replaced, steps skipped) of every train_epoch record."""
    return [(r["epoch"], r["loss"], r["failed_videos"], r["skipped_steps"])
            for r in read_stats(output_dir, "train_epoch")]


def check_interrupted_then_resumed(args_or_command: list[str], output_dir: Path, reference_dir: Path,
                                   signal_name: str, status: int, stderr: str, torchrun: bool = False) -> None:
    """The interrupted run printed its line last (stderr) and logged it last (log.txt), and saved a
    mid-epoch checkpoint; the same command resumes at the next batch and ends with the reference's
    weights and epoch summaries."""
    log_lines = (output_dir / "log.txt").read_text().splitlines()
    found = INTERRUPTED.search(log_lines[-1])
    assert found, f"the log's last line is not the interruption: {log_lines[-3:]}"
    name, epoch, step, path = found.groups()
    assert name == signal_name and Path(path) == output_dir / LATEST
    saved = load_checkpoint(output_dir / LATEST)
    assert (saved["epoch"] + 1, saved["epoch_step"]) == (int(epoch), int(step)) and saved["epoch_step"] > 0
    if not torchrun:
        assert status == {"SIGTERM": 143, "SIGINT": 130}[signal_name]
        assert INTERRUPTED.search(stderr.strip().splitlines()[-1]), "the console's last line is the interruption"
        assert f"received {signal_name}: stopping after the current step" in stderr, "the signal is acknowledged"

    if torchrun:
        done = subprocess.run(args_or_command, cwd=REPO_ROOT, env=cli_env(), capture_output=True, text=True,
                              timeout=RUN_TIMEOUT)
        assert done.returncode == 0, done.stderr[-3000:]
        restart_log = (output_dir / "log.txt").read_text()
    else:
        restart_log = run_to_completion(args_or_command)
    assert resumed_step(restart_log)[1:] == (saved["global_step"], saved["epoch_step"])
    assert "continuing with its next batch" in restart_log
    assert_same_final_state(output_dir, reference_dir)
    assert epoch_summaries(output_dir) == epoch_summaries(reference_dir), \
        "the interrupted epoch's summary must cover all its steps, before and after the resume"


def test_sigterm_checkpoints_the_next_batch_exits_143_and_the_rerun_matches(tiny_data, reference, tmp_path) -> None:
    output_dir = tmp_path / "sigterm"
    args = tiny_overrides(*tiny_data, output_dir, **NO_MID_EPOCH_SAVES)
    status, _, stderr = interrupt_when_logged([sys.executable, str(RUN_NET), *args], output_dir,
                                              "epoch 1/2 step 3/6", signal.SIGTERM)
    check_interrupted_then_resumed(args, output_dir, reference, "SIGTERM", status, stderr)


def test_ctrl_c_with_loader_workers_exits_130_and_the_rerun_matches(tiny_data, reference, tmp_path) -> None:
    """SIGINT to the whole process group, as a terminal's Ctrl-C: the workers must leave it to the run."""
    output_dir = tmp_path / "sigint"
    args = tiny_overrides(*tiny_data, output_dir, **NO_MID_EPOCH_SAVES, **{"DATA_LOADER.NUM_WORKERS": 2})
    status, _, stderr = interrupt_when_logged([sys.executable, str(RUN_NET), *args], output_dir,
                                              "epoch 2/2 step 2/6", signal.SIGINT, whole_group=True)
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr, stderr[-3000:]
    check_interrupted_then_resumed(args, output_dir, reference, "SIGINT", status, stderr)


def test_a_second_signal_exits_at_once_without_a_checkpoint(tiny_data, tmp_path) -> None:
    output_dir = tmp_path / "twice"
    args = tiny_overrides(*tiny_data, output_dir, **NO_MID_EPOCH_SAVES)
    with subprocess.Popen([sys.executable, "-c", SLOW_SAVE, str(RUN_NET), *args], cwd=REPO_ROOT, env=cli_env(),
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) as process:
        wait_for_line(output_dir / "log.txt", "epoch 1/2 step 2/6", process)
        process.send_signal(signal.SIGTERM)
        folder = output_dir / "checkpoints"
        deadline = time.monotonic() + RUN_TIMEOUT
        while not list(folder.glob(".checkpoint_latest.pyth.*.tmp")):  # the save is hanging in its rename
            assert process.poll() is None and time.monotonic() < deadline
            time.sleep(0.01)
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=30)  # well before the 120 s the save still sleeps
    assert process.returncode == 143
    assert "second signal (SIGTERM): exiting at once, without a checkpoint" in stderr
    assert not (folder / "checkpoint_latest.pyth").exists()
    assert "received SIGTERM: stopping after the current step" in stderr


# ---------------------------------------------------------------------------- two processes

def worker_pid(launcher: subprocess.Popen, rank: int) -> int:
    """The pid of torchrun's worker of ``rank`` (from the workers' environment)."""
    deadline = time.monotonic() + RUN_TIMEOUT
    while time.monotonic() < deadline:
        for task in Path(f"/proc/{launcher.pid}/task").iterdir():
            for child in (task / "children").read_text().split():
                try:
                    environ = Path(f"/proc/{child}/environ").read_bytes().split(b"\0")
                except (FileNotFoundError, ProcessLookupError):
                    continue
                if f"RANK={rank}".encode() in environ:
                    return int(child)
        time.sleep(0.05)
    raise AssertionError(f"no worker of rank {rank} found")


@pytest.fixture(scope="module")
def two_process_reference(tiny_data, tmp_path_factory) -> Path:
    """The uninterrupted 2-process run (one per session: both workers' torchrun tests compare with it)."""
    def train(output_dir: Path) -> Path:
        done = subprocess.run(TORCHRUN + tiny_overrides(*tiny_data, output_dir, **TWO_PROCESSES), cwd=REPO_ROOT,
                              env=cli_env(), capture_output=True, text=True, timeout=RUN_TIMEOUT)
        assert done.returncode == 0, done.stderr[-3000:]
        return output_dir

    return built_once(tmp_path_factory, "two_uninterrupted", train)


def test_sigterm_to_one_rank_of_torchrun_stops_both_after_the_same_step(tiny_data, two_process_reference,
                                                                         tmp_path) -> None:
    output_dir = tmp_path / "two_sigterm"
    command = TORCHRUN + tiny_overrides(*tiny_data, output_dir, **TWO_PROCESSES)
    with subprocess.Popen(command, cwd=REPO_ROOT, env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True) as launcher:
        wait_for_line(output_dir / "log.txt", "epoch 1/2 step 3/6", launcher)
        os.kill(worker_pid(launcher, rank=1), signal.SIGTERM)
        _, stderr = launcher.communicate(timeout=RUN_TIMEOUT)
    assert re.search(r"exitcode\s*:\s*143", stderr), stderr[-3000:]   # torchrun reports its workers' status
    assert re.search(r"\[rank 1\] received SIGTERM: stopping after the current step", stderr), stderr[-3000:]
    assert "[rank 0] received" not in stderr, "rank 0 got no signal of its own"
    check_interrupted_then_resumed(command, output_dir, two_process_reference, "SIGTERM", launcher.returncode,
                                   stderr, torchrun=True)


def test_sigkill_of_a_torchrun_job_then_the_same_command_gives_the_uninterrupted_weights(
        tiny_data, two_process_reference, tmp_path) -> None:
    output_dir = tmp_path / "two_sigkill"
    command = TORCHRUN + tiny_overrides(*tiny_data, output_dir, **{**TWO_PROCESSES, "TRAIN.CHECKPOINT_EVERY_STEPS": 2})
    with subprocess.Popen(command, cwd=REPO_ROOT, env=cli_env(), stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL) as launcher:
        wait_for_line(output_dir / "log.txt", "epoch 1/2 step 5/6", launcher)
        workers = [worker_pid(launcher, rank) for rank in (0, 1)]  # torchrun starts them in their own sessions
        for pid in [*workers, launcher.pid]:
            os.kill(pid, signal.SIGKILL)
        launcher.wait()
    saved = load_checkpoint(output_dir / LATEST)
    assert saved["epoch_step"] >= 4 and "rng" in saved
    done = subprocess.run(command, cwd=REPO_ROOT, env=cli_env(), capture_output=True, text=True, timeout=RUN_TIMEOUT)
    assert done.returncode == 0, done.stderr[-3000:]
    assert resumed_step((output_dir / "log.txt").read_text())[1] == saved["global_step"]
    assert_same_final_state(output_dir, two_process_reference)
    final = load_checkpoint(output_dir / LATEST)
    assert_same_tensors(final["model"], load_checkpoint(two_process_reference / LATEST)["model"])
    assert json.loads((output_dir / "stats.jsonl").read_text().splitlines()[-1])["kind"] == "train_epoch"
