"""One run per OUTPUT_DIR: a second run stops before any work naming the holder; a holder that is gone is
taken over with a warning (on this host: its process no longer runs; from another host: its heartbeat
stopped more than STALE_SECONDS ago), so a requeued job resumes by itself.

The record of a holder on another host is written by the test (one machine cannot be two hosts); every
other case uses real processes and the kernel's record locks.
"""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

import pytest
from tiny_runs import RUN_NET, RUN_TIMEOUT, cli_env, make_tiny_dataset, tiny_overrides
from tool_calls import call_tool

from videovit.engine import run_lock
from videovit.engine.run_lock import LOCK_FILE, STALE_SECONDS, Holder, OutputDirLock, this_process
from videovit.errors import ConfigError

REPO_ROOT = Path(__file__).resolve().parents[1]
# A process that holds a folder until it is killed (prints "held" once it does).
HOLDER = """
import sys, time
from videovit.engine.run_lock import OutputDirLock
OutputDirLock(sys.argv[1]).acquire()
print("held", flush=True)
time.sleep(600)
"""


def write_record(folder: Path, holder: Holder) -> None:
    """A lock file as a holder that is not this process left it (no record lock held on it)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / LOCK_FILE).write_text(json.dumps(asdict(holder)) + "\n")


def acquired(folder: Path) -> OutputDirLock:
    lock = OutputDirLock(folder)
    lock.acquire()
    return lock


def test_a_free_folder_is_held_with_a_record_and_released_clean(tmp_path: Path) -> None:
    lock = acquired(tmp_path / "out")
    record = json.loads((tmp_path / "out" / LOCK_FILE).read_text())
    me = this_process()
    assert (record["host"], record["pid"], record["boot_id"]) == (me.host, os.getpid(), me.boot_id) and not lock.note
    lock.release()
    assert (tmp_path / "out" / LOCK_FILE).read_text() == ""
    again = acquired(tmp_path / "out")  # a run after a clean end: no warning
    assert not again.note
    again.release()


def test_the_heartbeat_is_rewritten_while_held(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(run_lock, "HEARTBEAT_SECONDS", 0.05)
    lock = acquired(tmp_path)
    first = json.loads((tmp_path / LOCK_FILE).read_text())["heartbeat"]
    time.sleep(0.5)
    assert json.loads((tmp_path / LOCK_FILE).read_text())["heartbeat"] > first
    lock.release()


def test_a_holder_on_this_host_whose_process_is_gone_is_taken_over(tmp_path: Path) -> None:
    ended = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    gone = replace(this_process(), pid=int(ended.stdout), process_start=0)
    write_record(tmp_path, gone)
    lock = acquired(tmp_path)
    assert lock.note == (f"{tmp_path} was held by a run that is gone (host {gone.host}, pid {gone.pid}, started "
                         f"{gone.started}; its process no longer runs): taking the folder over")
    lock.release()


def test_a_holder_of_an_earlier_boot_is_taken_over(tmp_path: Path) -> None:
    write_record(tmp_path, replace(this_process(), pid=1, boot_id="an earlier boot"))
    lock = acquired(tmp_path)
    assert "its host has rebooted since" in lock.note
    lock.release()


def test_a_holder_on_another_host_is_taken_over_only_once_its_heartbeat_is_stale(tmp_path: Path) -> None:
    elsewhere = replace(this_process(), host="node-elsewhere", pid=4242, heartbeat=time.time() - 5)
    write_record(tmp_path, elsewhere)
    with pytest.raises(ConfigError) as caught:  # alive there (on NFS without locks, only the record tells)
        acquired(tmp_path)
    assert str(caught.value).startswith(
        f"OUTPUT_DIR {tmp_path} is in use by another run (host node-elsewhere, pid 4242, started {elsewhere.started})")
    write_record(tmp_path, replace(elsewhere, heartbeat=time.time() - STALE_SECONDS - 60))
    lock = acquired(tmp_path)
    assert re.search(r"\(host node-elsewhere, pid 4242, started \S+; its heartbeat stopped 1[89]\d s ago\): taking "
                     r"the folder over", lock.note), lock.note
    lock.release()


@pytest.mark.slow
def test_a_second_process_is_refused_until_the_holder_is_killed(tmp_path: Path) -> None:
    with subprocess.Popen([sys.executable, "-c", HOLDER, str(tmp_path)], stdout=subprocess.PIPE, text=True,
                          cwd=REPO_ROOT) as holder:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(ConfigError) as caught:
            acquired(tmp_path)
        record = json.loads((tmp_path / LOCK_FILE).read_text())
        assert f"is in use by another run (host {record['host']}, pid {holder.pid}, started {record['started']}" \
            in str(caught.value)
        holder.kill()
    lock = acquired(tmp_path)  # SIGKILL: the kernel dropped its lock, its record says who it was
    assert f"pid {holder.pid}" in lock.note and "its process no longer runs" in lock.note
    lock.release()


@pytest.mark.slow
def test_two_runs_on_one_output_dir_the_second_stops_before_any_work(tmp_path: Path) -> None:
    lists, videos = make_tiny_dataset(tmp_path / "data", {"train": 4})
    output_dir = tmp_path / "out"
    args = tiny_overrides(lists, videos, output_dir, **{"TRAIN.EPOCHS": 50, "TRAIN.BATCH_SIZE": 2,
                                                         "TRAIN.EVAL_PERIOD": 0, "TEST.ENABLE": False})
    log = output_dir / "log.txt"
    with subprocess.Popen([sys.executable, str(RUN_NET), *args], cwd=REPO_ROOT, env=cli_env(),
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) as first:
        deadline = time.monotonic() + RUN_TIMEOUT
        while not (log.is_file() and "saved checkpoint" in log.read_text()):  # a checkpoint to resume from
            assert first.poll() is None and time.monotonic() < deadline, "the first run saved no checkpoint"
            time.sleep(0.05)
        record = json.loads((output_dir / LOCK_FILE).read_text())

        second = call_tool("run_net.py", args)  # in this process: the first run is the real process here

        assert first.poll() is None, "the first run must be untouched"
        first.send_signal(signal.SIGKILL)
    errors = second.errors
    assert second.status == 2 and "Traceback" not in second.err, second.err[-2000:]
    assert len(errors) == 1 and re.fullmatch(
        re.escape(f"error: OUTPUT_DIR {output_dir} is in use by another run (host {record['host']}, pid {first.pid}, "
                  f"started {record['started']}, last heartbeat ") + r"\d+ s ago\); two runs would overwrite .*",
        errors[0]), second.err[-2000:]
    assert second.out == "", "the second run must not log anything"
    assert log.read_text().count("videovit run on") == 1, "the second run wrote to the first one's log"
    print(errors[0])

    third = call_tool("run_net.py", [*args, "TRAIN.MAX_STEPS", "8"])  # a requeued job after the kill

    assert third.status == 0, third.err[-2000:]
    assert f"was held by a run that is gone (host {record['host']}, pid {first.pid}" in third.out
    assert "its process no longer runs): taking the folder over" in third.out
    assert re.search(r"resuming from \S+checkpoint_latest\.pyth at epoch \d+ step \d+", third.out), third.out
