"""Storage errors are user errors: a run whose disk fills up (or whose files the storage refuses) ends
with one ``error:`` line naming the file and the intact checkpoint, damages nothing written before, and
the same command resumes once there is room.

Without privileges, in any container: the run's own files can point at ``/dev/full`` (ENOSPC on every
write), and a child process can run under a file size limit (RLIMIT_FSIZE: EFBIG past it). Where user
namespaces allow it, the disk-full run also fills a real, small tmpfs (reached through
``/proc/PID/root`` of the process that holds the mount).
"""
from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from tiny_runs import (
    LATEST,
    RUN_NET,
    RUN_TIMEOUT,
    SETTINGS,
    assert_same_final_state,
    cli_env,
    make_tiny_dataset,
    resumed_step,
    run_to_completion,
    stats_steps,
    tiny_overrides,
    write_colour_clip,
)
from tool_calls import TOOLS, call_tool

from videovit.engine.run_log import LOG_FILE, STATS_FILE, StatsWriter, log_failure, setup_logging
from videovit.errors import NonFiniteLossError, StorageError

DEV_FULL = Path("/dev/full")
needs_dev_full = pytest.mark.skipif(not DEV_FULL.exists(), reason="no /dev/full on this system")
REPO_ROOT = Path(__file__).resolve().parents[1]
# Runs a command (argv[2:]) under a file size limit of argv[1] bytes (writes past it fail with EFBIG).
UNDER_FILE_SIZE_LIMIT = ("import os, resource, sys; limit = int(sys.argv[1]); "
                         "resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit)); "
                         "os.execv(sys.executable, [sys.executable, *sys.argv[2:]])")
TMPFS_MEGABYTES = 64


def close_handlers(log: logging.Logger) -> None:
    """Leave no handler of this test's run on the project's logger."""
    for handler in list(log.handlers):
        log.removeHandler(handler)
        handler.close()


@needs_dev_full
def test_a_log_the_disk_refuses_stops_the_run_with_one_error_naming_it(tmp_path: Path, capsys) -> None:
    (tmp_path / LOG_FILE).symlink_to(DEV_FULL)
    log = setup_logging(tmp_path)
    with pytest.raises(StorageError, match=rf"^cannot write {tmp_path / LOG_FILE}: no space left on device"):
        log.info("the first line that does not fit")
    log.info("later lines are dropped, not raised again")  # e.g. the error line itself, logged while failing
    assert "Logging error" not in capsys.readouterr().err
    close_handlers(log)


@needs_dev_full
def test_an_error_the_full_log_cannot_take_is_still_the_error_raised(tmp_path: Path) -> None:
    (tmp_path / LOG_FILE).symlink_to(DEV_FULL)
    log = setup_logging(tmp_path)
    log_failure(log, NonFiniteLossError("non-finite loss at epoch 1 step 2"), with_traceback=False)  # no raise
    close_handlers(log)


@needs_dev_full
def test_stats_the_disk_refuses_are_one_error_naming_the_file(tmp_path: Path) -> None:
    (tmp_path / STATS_FILE).symlink_to(DEV_FULL)
    with pytest.raises(StorageError, match=rf"^cannot write {tmp_path / STATS_FILE}: no space left on device"):
        StatsWriter(tmp_path, active=True, tensorboard=False).write("train", {"loss": 1.0}, step=1)


# ---------------------------------------------------------------------------- a run that fills its disk

def file_digests(folder: Path) -> dict[str, str]:
    return {path.name: hashlib.sha256(path.read_bytes()).hexdigest() for path in sorted(folder.glob("*.pyth"))}


def fill(path: Path, leave: int) -> None:
    """Write zeros to ``path`` until only ``leave`` bytes stay free on its file system."""
    stats = os.statvfs(path.parent)
    left = stats.f_bavail * stats.f_frsize - leave
    with path.open("wb") as stream:
        while left > 0:
            left -= stream.write(bytes(min(left, 2**20)))


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory) -> tuple[Path, Path]:
    return make_tiny_dataset(tmp_path_factory.mktemp("storage_data"), {"train": 4})


@pytest.fixture(scope="module")
def reference(tiny_data, tmp_path_factory) -> Path:
    """The run that never met a full disk."""
    output_dir = tmp_path_factory.mktemp("uninterrupted")
    run_to_completion(tiny_overrides(*tiny_data, output_dir, **SETTINGS))
    return output_dir


@pytest.fixture
def small_tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A TMPFS_MEGABYTES tmpfs mounted in a user namespace (skipped where that is not allowed), as a path
    every process can write through."""
    if shutil.which("unshare") is None:
        pytest.skip("no unshare command")
    mount_point = tmp_path / "mnt"
    mount_point.mkdir()
    script = f"mount -t tmpfs -o size={TMPFS_MEGABYTES}m tmpfs {mount_point} && echo mounted && exec sleep 3600"
    holder = subprocess.Popen(["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", script],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        if holder.stdout.readline().strip() != "mounted":
            pytest.skip(f"cannot mount a tmpfs in a user namespace here: {holder.stderr.read().strip()[-300:]}")
        yield Path(f"/proc/{holder.pid}/root") / mount_point.relative_to("/")
    finally:
        holder.kill()
        holder.wait()


def run_cli(args: list[str], file_size_limit: int | None = None) -> subprocess.CompletedProcess:
    command = [str(RUN_NET), *args]
    if file_size_limit is not None:
        command = ["-c", UNDER_FILE_SIZE_LIMIT, str(file_size_limit), *command]
    return subprocess.run([sys.executable, *command], cwd=REPO_ROOT, env=cli_env(), capture_output=True,
                          text=True, timeout=RUN_TIMEOUT)


@pytest.mark.slow
@pytest.mark.parametrize("storage", ["file_size_limit", "full_tmpfs"])
def test_a_full_disk_during_a_save_is_one_error_line_damages_nothing_and_the_rerun_resumes(
        storage: str, tiny_data, reference, request, tmp_path: Path) -> None:
    root = request.getfixturevalue("small_tmpfs") if storage == "full_tmpfs" else tmp_path
    output_dir = root / "out"
    args = tiny_overrides(*tiny_data, output_dir, **SETTINGS)
    run_to_completion([*args, "TRAIN.MAX_STEPS", "6"])  # epoch 1 and its checkpoint
    folder, latest = output_dir / "checkpoints", output_dir / LATEST
    before = {"checkpoints": file_digests(folder), "stats": (output_dir / STATS_FILE).read_text(),
              "log": (output_dir / LOG_FILE).read_text()}
    room = latest.stat().st_size // 2  # too little for the next checkpoint
    filler = root / "filler"
    if storage == "full_tmpfs":
        fill(filler, leave=room)

    full = run_cli(args, file_size_limit=room if storage == "file_size_limit" else None)

    reason, remedy = (("no space left on device (ENOSPC)", "free space on that file system") if storage == "full_tmpfs"
                      else ("file too large (EFBIG)",
                            "raise the file size limit (ulimit -f) or write to another file system"))
    expected = (f"error: cannot write {latest}: {reason}; its previous version, the last good checkpoint, is "
                f"intact; {remedy}, then rerun the same command to resume from it")
    assert full.returncode == 1 and "Traceback" not in full.stderr, full.stderr[-3000:]
    assert full.stderr.strip().splitlines() == [expected]
    print(expected)
    assert file_digests(folder) == before["checkpoints"], "a checkpoint written before changed"
    assert not list(folder.glob(".*.tmp")), "the failed save left its temporary file"
    assert (output_dir / STATS_FILE).read_text().startswith(before["stats"])
    log = (output_dir / LOG_FILE).read_text()
    assert log.startswith(before["log"]) and log.rstrip().endswith(expected.removeprefix("error: "))
    filler.unlink(missing_ok=True)

    rerun = run_to_completion(args)

    assert resumed_step(rerun) == ("checkpoint_latest.pyth", 6, 0)
    assert_same_final_state(output_dir, reference)
    assert stats_steps(output_dir) == stats_steps(reference), "steps replayed after the failure recorded twice"


@pytest.mark.slow  # the tool under a file size limit, in a child process
def test_prepare_videos_stops_at_the_storages_refusal_with_one_line_and_the_rerun_finishes(tmp_path: Path) -> None:
    src, out = tmp_path / "src", tmp_path / "out"
    src.mkdir()
    for i in range(4):
        write_colour_clip(src / f"clip_{i}.mp4", colour=i % 3, seed=i, frames=8, size=64)
    args = ["--src", str(src), "--out", str(out), "--workers", "2"]
    limited = subprocess.run([sys.executable, "-c", UNDER_FILE_SIZE_LIMIT, "512", str(TOOLS / "prepare_videos.py"),
                              *args], cwd=REPO_ROOT, env=cli_env(), capture_output=True, text=True,
                             timeout=RUN_TIMEOUT)

    # Every output is larger than the limit: the first refusal stops the tool, instead of failing each video.
    assert limited.returncode == 1 and "Traceback" not in limited.stderr, limited.stderr[-3000:]
    assert re.fullmatch(
        rf"error: cannot write {re.escape(str(out))}/clip_\d\.mp4: file too large \(EFBIG\); the 0 videos prepared "
        rf"so far are kept in {re.escape(str(out))}, no partial file is left; raise the file size limit \(ulimit -f\) "
        r"or write to another file system, then rerun the same command to continue \(it skips them\)",
        limited.stderr.strip().splitlines()[-1]), limited.stderr[-3000:]
    assert not list(out.rglob("*.partial"))

    rerun = call_tool("prepare_videos.py", args)

    assert rerun.status == 0 and "prepared 4 videos" in rerun.out and "0 failed" in rerun.out, rerun.out + rerun.err
