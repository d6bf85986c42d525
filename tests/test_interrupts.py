"""The one interrupt rule (videovit/signals.py, docs/architecture.md "Interrupts"): real signals, in this
process for the rule itself and its worker pool, and to real tools in every phase of a run.

A subprocess test waits for a sign that the phase is under way (a library being mapped, a file being
written, or a marker the ``SLOWED`` launcher writes when the slowed function of that phase is called),
never for a fixed time; then it sends SIGINT to the whole process group, as a terminal's Ctrl-C does,
or SIGTERM, and checks: status 130 / 143, the last line says what was kept and how to continue, no
traceback, and no process of the tool is left.
"""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from saved_models import save_checkpoint
from tiny_runs import LATEST, RUN_TIMEOUT, cli_env, make_tiny_dataset, run_tiny, tiny_overrides
from videos import make_indexed_video

from videovit.cli import run_tool
from videovit.errors import Interrupted
from videovit.signals import raise_if_interrupted, received_signal, signals_deferred, signals_handled
from videovit.workers import WorkerDiedError, WorkerPool

REPO_ROOT = Path(__file__).resolve().parents[1]
TOOLS = REPO_ROOT / "tools"
WORKERS = {"DATA_LOADER.NUM_WORKERS": 2}

# Runs a tool with one function slowed down: each call appends this process's pid to $MARKERS, then
# sleeps $SLOW_SECONDS. $SLOW_TARGET is "module:attribute" or "module:Class.method"; with $SLOW_SPLIT
# only calls on a dataset of that split are slowed (the function runs in loader workers too: they fork).
SLOWED = """
import importlib, os, runpy, sys, time
module_name, _, attribute = os.environ["SLOW_TARGET"].partition(":")
owner = importlib.import_module(module_name)
*path, name = attribute.split(".")
for part in path:
    owner = getattr(owner, part)
real = getattr(owner, name)
def slowed(*args, **kwargs):
    split = os.environ.get("SLOW_SPLIT")
    if split is None or getattr(args[0], "split", None) == split:
        with open(os.environ["MARKERS"], "a") as markers:
            markers.write(f"{os.getpid()}\\n")
        time.sleep(float(os.environ.get("SLOW_SECONDS", "0.5")))
    return real(*args, **kwargs)
setattr(owner, name, slowed)
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


# ---------------------------------------------------------------------------- the rule, in this process

def _send_to_self(signum: int) -> None:
    os.kill(os.getpid(), signum)
    time.sleep(0.5)  # the handler runs at the next bytecode; the sleep is cut short when it raises


def test_outside_a_critical_section_the_first_signal_raises_at_once() -> None:
    with signals_handled(), pytest.raises(Interrupted) as caught:
        _send_to_self(signal.SIGTERM)
    assert (caught.value.status, str(caught.value), caught.value.bare) == (143, "interrupted by SIGTERM", True)


def test_inside_a_critical_section_a_signal_is_recorded_and_raised_when_it_ends() -> None:
    finished = False
    with signals_handled(), pytest.raises(Interrupted):
        with signals_deferred():
            os.kill(os.getpid(), signal.SIGINT)
            assert received_signal() == signal.SIGINT
            finished = True  # the section's work goes on to its end
    assert finished and received_signal() is None  # the handlers are gone with the block


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")  # the swallowed raise
def test_a_raise_python_swallows_comes_back_at_the_next_check_and_the_tool_never_exits_0(capsys) -> None:
    class SignalledWhileFinalised:
        def __del__(self) -> None:  # a raise in a finalizer is printed as "Exception ignored" and dropped
            _send_to_self(signal.SIGINT)

    def work() -> int:
        SignalledWhileFinalised()
        return 0

    assert run_tool(work) == 130
    assert capsys.readouterr().err.splitlines()[-1] == ("interrupted by SIGINT: nothing was written; rerun the same "
                                                        "command to do it")
    with signals_handled():
        SignalledWhileFinalised()
        with pytest.raises(Interrupted):
            raise_if_interrupted()


def test_a_forked_child_leaves_the_inherited_handlers_to_its_parent() -> None:
    with signals_handled():
        pid = os.fork()
        if pid == 0:  # the child: the parent's handler must neither raise nor record here
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.2)
            os._exit(0 if received_signal() is None else 3)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0 and received_signal() is None


def _square(value: int) -> int:
    return value * value


def _sleep(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


def _fail(value: int) -> int:
    raise ValueError(f"job {value} failed")


def _die(value: int) -> int:
    os._exit(7)


def test_a_worker_pool_returns_every_result_and_raises_a_job_error_or_a_dead_worker() -> None:
    with WorkerPool(_square, 2) as pool:
        assert sorted(pool.run(list(range(7)))) == [(i, i * i) for i in range(7)]
    with pytest.raises(ValueError, match="job 1 failed"), WorkerPool(_fail, 2) as pool:
        list(pool.run([1]))
    with pytest.raises(WorkerDiedError, match=r"\(exit status 7\) while on job 0: 5"), WorkerPool(_die, 1) as pool:
        list(pool.run([5]))


def test_a_signal_stops_a_worker_pool_within_its_poll_and_kills_the_workers() -> None:
    workers: list[int] = []

    def interrupt_once_both_work() -> None:
        while len(workers) < 2:
            workers[:] = [pid for pid in children_of(os.getpid()) if _alive(pid)]
        os.kill(os.getpid(), signal.SIGINT)

    timer = threading.Thread(target=interrupt_once_both_work)
    with signals_handled(), pytest.raises(Interrupted) as caught, WorkerPool(_sleep, 2) as pool:
        timer.start()
        for _ in pool.run([60.0, 60.0, 60.0]):
            pass
    timer.join()
    assert caught.value.signum == signal.SIGINT
    assert not [pid for pid in workers if _alive(pid)]  # killed, not left to finish their minute


# ---------------------------------------------------------------------------- helpers for real tools

def _alive(pid: int) -> bool:
    """True while ``pid`` is a process that has not ended (a zombie has ended)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False


def group_members(group: int) -> list[int]:
    """Live processes of process group ``group``."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        if int(fields[2]) == group and fields[0] != "Z":
            members.append(int(stat.parent.name))
    return members


def children_of(pid: int) -> list[int]:
    """The child processes of ``pid``, from /proc."""
    return [int(child) for task in Path(f"/proc/{pid}/task").iterdir()
            for child in (task / "children").read_text().split()]


class Tool:
    """A tool in its own session (its pid is its process group), output to files."""

    def __init__(self, folder: Path, command: list[str], **env: str) -> None:
        self.folder = folder
        self.markers = folder / "markers.txt"
        self.stdout, self.stderr = folder / "stdout.txt", folder / "stderr.txt"
        with self.stdout.open("w") as out, self.stderr.open("w") as err:
            self.process = subprocess.Popen(command, cwd=REPO_ROOT, stdout=out, stderr=err, start_new_session=True,
                                            env=cli_env(MARKERS=str(self.markers), **env))

    def wait_for(self, condition: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + RUN_TIMEOUT
        while not condition():
            assert self.process.poll() is None, f"the tool ended before {what}:\n{self.stderr.read_text()[-3000:]}"
            assert time.monotonic() < deadline, f"{what} never happened"
            time.sleep(0.01)

    def wait_for_marker(self) -> None:
        self.wait_for(lambda: self.markers.is_file() and self.markers.read_text().strip() != "", "the slowed call")

    def interrupt(self, signum: int = signal.SIGINT, whole_group: bool = True) -> tuple[int, str]:
        """Send ``signum`` (to the process group, like Ctrl-C); the status and the last line of stderr,
        after checking that nothing printed a traceback and no process of the tool is left."""
        if whole_group:
            os.killpg(self.process.pid, signum)
        else:
            self.process.send_signal(signum)
        status = self.process.wait(timeout=RUN_TIMEOUT)
        err = self.stderr.read_text()
        assert "Traceback" not in err and "Exception ignored" not in err, err[-3000:]
        deadline = time.monotonic() + 30  # loader workers notice a vanished parent within 5 s
        while group_members(self.process.pid):
            assert time.monotonic() < deadline, f"processes left: {group_members(self.process.pid)}"
            time.sleep(0.05)
        return status, err.strip().splitlines()[-1]


def run_net(folder: Path, args: list[str], slow: str | None = None, split: str | None = None) -> Tool:
    launcher = ["-c", SLOWED] if slow else []
    env = {"SLOW_TARGET": slow} if slow else {}
    if split:
        env["SLOW_SPLIT"] = split
    return Tool(folder, [sys.executable, *launcher, str(TOOLS / "run_net.py"), *args], **env)


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory) -> tuple[Path, Path]:
    return make_tiny_dataset(tmp_path_factory.mktemp("interrupt_data"), {"train": 2, "val": 2, "test": 2})


def _libtorch_mapped(pid: int) -> Callable[[], bool]:
    return lambda: "libtorch_cpu" in Path(f"/proc/{pid}/maps").read_text()


# ---------------------------------------------------------------------------- run_net, phase by phase
# (training itself: tests/test_preemption.py, SIGTERM and Ctrl-C with loader workers, and a second signal)

@pytest.mark.slow
def test_run_net_ctrl_c_while_importing_torch(tiny_data, tmp_path) -> None:
    out = tmp_path / "out"
    tool = run_net(tmp_path, tiny_overrides(*tiny_data, out, **WORKERS))
    tool.wait_for(_libtorch_mapped(tool.process.pid), "torch being imported")
    status, line = tool.interrupt()
    assert status == 130
    assert re.fullmatch(r"interrupted by SIGINT(: stopped during start-up, nothing was written| during start-up: no "
                        r"checkpoint was written \(.*\)); rerun the same command( to start)?", line), line
    assert not (out / LATEST).exists()


@pytest.mark.slow
def test_run_net_sigterm_during_the_data_set_up(tiny_data, tmp_path) -> None:
    out = tmp_path / "out"
    tool = run_net(tmp_path, tiny_overrides(*tiny_data, out, **WORKERS), slow="videovit.engine.run:load_splits")
    tool.wait_for_marker()
    status, line = tool.interrupt(signal.SIGTERM, whole_group=False)
    assert status == 143
    assert line == (f"interrupted by SIGTERM during the data set-up: no checkpoint was written ({out / 'checkpoints'} "
                    f"is as it was); rerun the same command to start")
    assert (out / "log.txt").read_text().strip().endswith(line)


def ctrl_c_while_loading(tiny_data, folder: Path, split: str, signum: int = signal.SIGINT,
                         **settings: object) -> tuple[Path, str]:
    """Ctrl-C (or ``signum``) to run_net's process group, loader workers on, while its ``split`` loader
    produces a batch: (OUTPUT_DIR, the last line), after checking the status."""
    out = folder / "out"
    args = tiny_overrides(*tiny_data, out, **WORKERS, **{"TRAIN.BATCH_SIZE": 2, **settings})
    tool = run_net(folder, args, slow="videovit.data.datasets:VideoDataset.__getitem__", split=split)
    tool.wait_for_marker()
    status, line = tool.interrupt(signum)
    assert status == 128 + signum
    return out, line


@pytest.mark.slow
def test_run_net_ctrl_c_during_validation_keeps_the_epoch(tiny_data, tmp_path) -> None:
    out, line = ctrl_c_while_loading(tiny_data, tmp_path, "val", **{"TRAIN.EPOCHS": 2, "TRAIN.EVAL_PERIOD": 1,
                                                                    "TEST.ENABLE": False})
    assert line == (f"interrupted by SIGINT during the validation after epoch 1: checkpoint {out / LATEST} (epoch 1 "
                    f"complete, its validation not run); rerun the same command to resume")
    saved = torch.load(out / LATEST, map_location="cpu", weights_only=True)
    assert (saved["epoch"], saved["epoch_step"]) == (1, 0)


@pytest.mark.slow
def test_run_net_ctrl_c_during_the_test_with_loader_workers_writes_no_result(tiny_data, tmp_path) -> None:
    """Today's hang: the test phase with loader workers logged the interruption twice, then waited forever."""
    out, line = ctrl_c_while_loading(tiny_data, tmp_path, "test", **{"TRAIN.EPOCHS": 1, "TRAIN.EVAL_PERIOD": 0,
                                                                     "TEST.BATCH_SIZE": 1})
    assert line == (f"interrupted by SIGINT during the test: training is complete (checkpoint {out / LATEST}), no "
                    f"test result was written; rerun the same command to test it")
    assert not (out / "metrics.json").exists() and not (out / "predictions.csv").exists()
    log = (out / "log.txt").read_text()
    assert log.count("interrupted by") == 1 and log.strip().endswith(line)


@pytest.fixture(scope="module")
def trained(tiny_data, tmp_path_factory) -> Path:
    """A checkpoint of one tiny epoch, for test-only runs."""
    out = tmp_path_factory.mktemp("trained")
    run_tiny(*tiny_data, out, **{"TRAIN.EPOCHS": 1, "TEST.ENABLE": False, "TRAIN.EVAL_PERIOD": 0})
    return out / LATEST


@pytest.mark.slow
def test_run_net_sigterm_to_the_group_during_a_test_only_run(tiny_data, trained, tmp_path) -> None:
    """A cluster's SIGTERM reaches the loader workers too, also one still starting (which used to die of
    it, a "DataLoader worker exited unexpectedly" traceback, and the wrong phase in the line)."""
    out, line = ctrl_c_while_loading(tiny_data, tmp_path, "test", signal.SIGTERM, **{
        "TRAIN.ENABLE": False, "TEST.CHECKPOINT_FILE_PATH": trained, "TEST.BATCH_SIZE": 1})
    assert line == "interrupted by SIGTERM during the test: no test result was written; rerun the same command to test"
    assert "Traceback" not in (out / "log.txt").read_text()


# ---------------------------------------------------------------------------- the other tools

def _videos(folder: Path, count: int, frames: int = 24, size: tuple[int, int] = (96, 64)) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    return [make_indexed_video(folder / f"clip {i}.mp4", frames, size=size) for i in range(count)]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    return save_checkpoint(tmp_path_factory.mktemp("interrupt_model"))[0]


def prepare_videos_encoding(folder: Path, videos: int) -> tuple[Path, list[str], Tool]:
    """prepare_videos with 2 workers on ``videos`` sources, once a video is being encoded: (--out, the
    command, the tool)."""
    _videos(folder / "src", videos, frames=90, size=(192, 128))
    out = folder / "out"
    command = [sys.executable, str(TOOLS / "prepare_videos.py"), "--src", str(folder / "src"), "--out", str(out),
               "--workers", "2", "--short-side", "128", "--preset", "slow"]
    tool = Tool(folder, command)
    tool.wait_for(lambda: bool(list(out.glob("*.partial"))), "a video being encoded")
    return out, command, tool


@pytest.mark.slow
def test_prepare_videos_ctrl_c_keeps_the_finished_videos_and_a_rerun_finishes(tmp_path) -> None:
    out, command, tool = prepare_videos_encoding(tmp_path, 6)
    status, line = tool.interrupt()
    assert status == 130
    found = re.fullmatch(r"interrupted by SIGINT after (\d) of 6 videos: the (\d) prepared are kept in (.*), no "
                         r"partial file is left; rerun the same command to continue \(it skips them\)", line)
    assert found and Path(found[3]) == out, line
    assert not list(out.glob("*.partial")) and len(list(out.glob("*.mp4"))) == int(found[2])
    done = subprocess.run(command, cwd=REPO_ROOT, env=cli_env(), capture_output=True, text=True, timeout=RUN_TIMEOUT)
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"prepared {6 - int(found[2])} videos into {out}, {found[2]} were already there, 0 failed" in done.stdout


@pytest.mark.slow
def test_prepare_videos_killed_leaves_no_worker_and_a_rerun_beside_its_files_finishes(tmp_path) -> None:
    """SIGKILL, as a scheduler sends after its grace period: the workers die with the tool (they used to
    run on with parent 1, and a rerun collided with their shared temporary name)."""
    out, command, tool = prepare_videos_encoding(tmp_path, 4)
    workers = children_of(tool.process.pid)
    assert len(workers) == 2
    tool.process.kill()
    tool.process.wait()
    deadline = time.monotonic() + 30
    while [pid for pid in workers if _alive(pid)]:
        assert time.monotonic() < deadline, f"workers outlived the killed tool: {workers}"
        time.sleep(0.05)
    assert group_members(tool.process.pid) == []
    done = subprocess.run(command, cwd=REPO_ROOT, env=cli_env(), capture_output=True, text=True, timeout=RUN_TIMEOUT)
    assert done.returncode == 0 and "0 failed" in done.stdout, done.stdout + done.stderr[-3000:]
    assert len(list(out.glob("*.mp4"))) == 4 and not list(out.glob("*.partial"))


@pytest.mark.slow
def test_check_videos_ctrl_c_writes_no_report(tmp_path) -> None:
    _videos(tmp_path / "videos", 6)
    (tmp_path / "train.csv").write_text("".join(f"clip {i}.mp4 0\n" for i in range(6)))
    report = tmp_path / "problems.txt"
    tool = Tool(tmp_path, [sys.executable, "-c", SLOWED, str(TOOLS / "check_videos.py"), "--list",
                           str(tmp_path / "train.csv"), "--prefix", str(tmp_path / "videos"), "--workers", "2",
                           "--out", str(report)], SLOW_TARGET="videovit.prep.check:check_video")
    tool.wait_for_marker()
    status, line = tool.interrupt()
    assert status == 130
    assert re.fullmatch(r"interrupted by SIGINT after checking \d of 6 videos: no report was written; rerun the "
                        r"same command to check them all", line), line
    assert not report.exists()


@pytest.mark.slow
def test_predict_ctrl_c_with_loader_workers_writes_no_predictions(checkpoint, tmp_path) -> None:
    _videos(tmp_path / "videos", 3)
    out = tmp_path / "predictions.csv"
    tool = Tool(tmp_path, [sys.executable, "-c", SLOWED, str(TOOLS / "predict.py"), "--checkpoint", str(checkpoint),
                           "--folder", str(tmp_path / "videos"), "--out", str(out), "DATA_LOADER.NUM_WORKERS", "2"],
                SLOW_TARGET="videovit.data.datasets:VideoDataset.__getitem__")
    tool.wait_for_marker()
    status, line = tool.interrupt()
    assert (status, line) == (130, "interrupted by SIGINT: nothing was written; rerun the same command to do it")
    assert not out.exists()


@pytest.mark.slow
def test_demo_window_ctrl_c_between_windows(checkpoint, tmp_path) -> None:
    video = make_indexed_video(tmp_path / "long.mp4", 100, size=(96, 64))
    timeline = tmp_path / "timeline.png"
    tool = Tool(tmp_path, [sys.executable, "-c", SLOWED, str(TOOLS / "demo.py"), "--checkpoint", str(checkpoint),
                           "--video", str(video), "--window", "0.5", "--timeline", str(timeline),
                           "--output", str(tmp_path / "annotated.mp4")],
                SLOW_TARGET="videovit.deploy.windows:make_sample", SLOW_SECONDS="0.2")
    tool.wait_for_marker()
    status, line = tool.interrupt(signal.SIGTERM)
    assert (status, line) == (143, "interrupted by SIGTERM: nothing was written; rerun the same command to do it")
    assert not timeline.exists() and not list(tmp_path.glob("annotated.mp4*"))


@pytest.mark.slow
def test_export_onnx_ctrl_c_during_the_export(checkpoint, tmp_path) -> None:
    pytest.importorskip("onnxruntime")
    out = tmp_path / "exported"
    tool = Tool(tmp_path, [sys.executable, "-c", SLOWED, str(TOOLS / "export.py"), str(checkpoint), str(out),
                           "--onnx"], SLOW_TARGET="videovit.deploy.onnx:export_onnx", SLOW_SECONDS="0")
    tool.wait_for_marker()
    status, line = tool.interrupt()
    assert (status, line) == (130, f"interrupted by SIGINT: {out} is as it was (an export is moved in only when "
                                   f"complete); rerun the same command")
    assert not out.exists() and not list(tmp_path.glob(".exported*"))


@pytest.mark.slow
def test_make_synthetic_data_ctrl_c_says_what_to_delete(tmp_path) -> None:
    root = tmp_path / "synthetic"
    tool = Tool(tmp_path, [sys.executable, str(TOOLS / "make_synthetic_data.py"), "--root", str(root),
                           "--train-per-class", "20", "--val-per-class", "0", "--test-per-class", "0",
                           "--frames", "16", "--workers", "2"])
    tool.wait_for(lambda: any(root.glob("videos/**/*.mp4")), "the first clip")
    status, line = tool.interrupt()
    assert status == 130
    assert re.fullmatch(rf"interrupted by SIGINT after \d+ of 160 clips: {re.escape(str(root / 'videos'))} is "
                        r"incomplete and has no annotations; delete it and run again", line), line
    assert not list(root.rglob("*.partial")) and not (root / "annotations").exists()

