"""One run per OUTPUT_DIR: the run (rank 0 of a torchrun job) holds ``OUTPUT_DIR/run.lock`` for its lifetime.

The lock is a POSIX record lock (``fcntl.lockf``) on that file, which the kernel (or, on NFS, the lock
manager) releases when the holding process ends in any way, SIGKILL included; the file itself says who
holds it (host, pid, start time) and carries a heartbeat the holder rewrites every
``HEARTBEAT_SECONDS``. A second run on the same folder stops before any work with one ``error:`` line
naming the holder. A holder that is gone is taken over with a warning: on the same host when its process
no longer runs, from another host when its heartbeat is older than ``STALE_SECONDS`` (a node that died
while a network file system still records its lock). What holds on NFS-like file systems:
docs/engine.md, "One run per output folder".
"""
from __future__ import annotations

import datetime
import errno
import fcntl
import json
import os
import socket
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from videovit.errors import ConfigError
from videovit.files import writing
from videovit.runtime.distributed import DistContext, any_process

LOCK_FILE = "run.lock"
HEARTBEAT_SECONDS = 30.0
STALE_SECONDS = 120.0  # a holder on another host whose heartbeat is older than this is gone
_NO_LOCKING = (errno.ENOLCK, errno.EOPNOTSUPP, errno.EINVAL)  # file systems without record locks
_RECORD_WAIT = 2.0  # seconds to wait for a holder that has the lock but has not written its record yet


@dataclass(frozen=True)
class Holder:
    """Who holds an output folder: where, which process, since when, and its last heartbeat."""

    host: str
    pid: int
    started: str  # local time, ISO 8601
    heartbeat: float  # time.time() of the last heartbeat
    boot_id: str = ""  # tells a process of an earlier boot of the same host from a live one
    process_start: int = 0  # the process's start time in clock ticks after boot (tells a reused pid)

    def describe(self) -> str:
        """``host H, pid P, started T``."""
        return f"host {self.host}, pid {self.pid}, started {self.started}"

    def gone_because(self, now: float) -> str | None:
        """Why this holder is certainly gone, seen from this host at ``now``; None when it may still run."""
        if self.host == socket.gethostname():
            if self.boot_id and self.boot_id != _boot_id():
                return "its host has rebooted since"
            if not _process_alive(self.pid, self.process_start):
                return "its process no longer runs"
            return None
        silent = now - self.heartbeat
        return f"its heartbeat stopped {silent:.0f} s ago" if silent > STALE_SECONDS else None


def this_process() -> Holder:
    """The Holder record of the calling process, heartbeat now."""
    return Holder(socket.gethostname(), os.getpid(), datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
                  time.time(), _boot_id(), _process_start(os.getpid()))


class OutputDirLock:
    """The hold of one run on its output folder (``acquire``, then ``release`` when the run ends).

    ``note`` is the takeover warning to log once the run's log is set up (empty when none).
    """

    def __init__(self, output_dir: str | Path) -> None:
        self.path = Path(output_dir) / LOCK_FILE
        self.note = ""
        self._fd: int | None = None
        self._me: Holder | None = None
        self._stop = threading.Event()
        self._heartbeat: threading.Thread | None = None

    def acquire(self) -> None:
        """Hold the folder, or raise ConfigError naming the run that holds it."""
        with writing(self.path):
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            locked = _try_lock(fd)
            previous = _read_holder(fd, wait=not locked)
            self.note = self._judge(previous, locked)
            self._me = this_process()
            with writing(self.path):
                _write_holder(fd, self._me)
        except BaseException:
            os.close(fd)  # also drops the lock, if taken
            raise
        self._fd = fd
        self._heartbeat = threading.Thread(target=self._beat, name="videovit-run-lock", daemon=True)
        self._heartbeat.start()

    def _judge(self, previous: Holder | None, locked: bool) -> str:
        """The takeover note when ``previous`` (the record found) is gone; ConfigError when it holds on."""
        if previous is None and locked:
            return ""
        if previous is None:
            raise self._refusal("another run (it holds the lock but has not said who it is yet)")
        gone = previous.gone_because(time.time())
        if gone is None or (not locked and previous.host == socket.gethostname()):
            beat = f", last heartbeat {time.time() - previous.heartbeat:.0f} s ago" if not locked else ""
            raise self._refusal(f"another run ({previous.describe()}{beat})")
        return (f"{self.path.parent} was held by a run that is gone ({previous.describe()}; {gone}): taking the "
                f"folder over")

    def _refusal(self, holder: str) -> ConfigError:
        return ConfigError(f"OUTPUT_DIR {self.path.parent} is in use by {holder}; two runs would overwrite each "
                           f"other's checkpoints and logs: wait for it to end or stop it, or choose another "
                           f"OUTPUT_DIR ({self.path} says who holds it)")

    def _beat(self) -> None:
        """Rewrite the record's heartbeat until released (a failed write is retried at the next beat)."""
        while not self._stop.wait(HEARTBEAT_SECONDS):
            if self._fd is None or self._me is None:
                return
            try:
                _write_holder(self._fd, Holder(**{**asdict(self._me), "heartbeat": time.time()}))
            except OSError:  # e.g. a full disk: the kernel lock still holds; the next beat tries again
                continue

    def release(self) -> None:
        """Stop the heartbeat, clear the record (a clean end) and drop the lock."""
        self._stop.set()
        if self._heartbeat is not None:
            self._heartbeat.join()
        if self._fd is None:
            return
        try:
            os.ftruncate(self._fd, 0)
            os.fsync(self._fd)
        except OSError:  # the next run then sees a holder whose process is gone, and takes over
            pass
        finally:
            os.close(self._fd)  # drops the lock
            self._fd = None


def hold_output_dir(output_dir: str | Path, ctx: DistContext) -> OutputDirLock | None:
    """Rank 0 holds ``output_dir`` (the other processes of a job hold nothing and get None); when it
    cannot, every process raises (rank 0 with the holder's name) before any work."""
    lock = OutputDirLock(output_dir) if ctx.is_main else None
    refusal: ConfigError | None = None
    if lock is not None:
        try:
            lock.acquire()
        except ConfigError as err:
            refusal = err
    if any_process(refusal is not None, ctx.device):
        raise refusal or ConfigError(f"OUTPUT_DIR {output_dir} is in use by another run (rank 0 names it)")
    return lock


def _try_lock(fd: int) -> bool:
    """Take the exclusive record lock without waiting; False when another process holds it. A file
    system without record locks counts as unlocked (the record alone then decides)."""
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as err:
        if err.errno in (errno.EACCES, errno.EAGAIN):
            return False
        if err.errno in _NO_LOCKING:
            return True
        raise
    return True


def _read_holder(fd: int, wait: bool) -> Holder | None:
    """The record in the lock file, or None when it is empty; ``wait`` gives a holder that has just
    taken the lock a moment to write it."""
    deadline = time.monotonic() + (_RECORD_WAIT if wait else 0.0)
    while True:
        size = os.fstat(fd).st_size
        text = os.pread(fd, size, 0).decode("utf-8", errors="replace").strip() if size else ""
        holder = _parse_holder(text)
        if holder is not None or time.monotonic() >= deadline:
            return holder
        time.sleep(0.1)


def _parse_holder(text: str) -> Holder | None:
    try:
        fields: Any = json.loads(text) if text else None
        return Holder(**fields) if isinstance(fields, dict) else None
    except (ValueError, TypeError):  # torn or foreign content: nobody identifiable holds it
        return None


def _write_holder(fd: int, holder: Holder) -> None:
    data = (json.dumps(asdict(holder)) + "\n").encode("utf-8")
    os.pwrite(fd, data, 0)
    os.ftruncate(fd, len(data))
    os.fsync(fd)


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:  # not Linux
        return ""


def _process_start(pid: int) -> int:
    """Start time of process ``pid`` in clock ticks after boot (0 where /proc does not say)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0
    return int(stat.rsplit(")", 1)[1].split()[19])


def _process_alive(pid: int, process_start: int) -> bool:
    """Whether process ``pid`` runs and is the one that started at ``process_start`` (not a reused pid)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, under another user
        pass
    return not process_start or _process_start(pid) in (0, process_start)


__all__ = ["HEARTBEAT_SECONDS", "Holder", "LOCK_FILE", "OutputDirLock", "STALE_SECONDS", "hold_output_dir",
           "this_process"]
