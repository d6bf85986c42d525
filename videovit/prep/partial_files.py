"""Temporary names for outputs being written: ``<name>.<host>-<pid>.partial``, renamed into place when whole.

The name is unique per writing process, so a rerun started beside a run that is still dying (a
SIGKILLed tool whose workers have not ended yet, a requeued job) never writes or removes the other's
file. A rerun removes only the partial files whose writer is gone: written on this host by a process
that no longer exists. Partial files of other hosts (a shared folder) are left alone.
"""
from __future__ import annotations

import os
import re
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

PARTIAL_SUFFIX = ".partial"
_WRITER = re.compile(r"\.(?P<host>[^./]+)-(?P<pid>\d+)\.partial$")


def _host() -> str:
    return socket.gethostname().split(".")[0] or "host"


def partial_path(destination: Path) -> Path:
    """The temporary name this process writes ``destination`` under."""
    return destination.with_name(f"{destination.name}.{_host()}-{os.getpid()}{PARTIAL_SUFFIX}")


@contextmanager
def written_whole(destination: Path) -> Iterator[Path]:
    """Yield the temporary path to write; on success rename it to ``destination``, on any exception
    (a signal included) remove it."""
    partial = partial_path(destination)
    try:
        yield partial
        os.replace(partial, destination)
    finally:
        partial.unlink(missing_ok=True)


def _writer_gone(path: Path) -> bool:
    found = _WRITER.search(path.name)
    if found is None:
        return True  # an older run's name (no writer recorded): no live process of ours owns it
    if found["host"] != _host():
        return False
    return not _running(int(found["pid"]))


def _running(pid: int) -> bool:
    """True while process ``pid`` runs (a zombie, ended but not yet reaped, does not)."""
    stat = Path(f"/proc/{pid}/stat")
    if Path("/proc/self/stat").is_file():  # Linux
        try:
            return stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"
        except (FileNotFoundError, ProcessLookupError):
            return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's
        return True
    return True


def remove_orphaned_partials(folder: Path) -> int:
    """Remove the partial files under ``folder`` whose writer is gone; return how many."""
    removed = 0
    for path in folder.rglob(f"*{PARTIAL_SUFFIX}"):
        if path.is_file() and _writer_gone(path):
            path.unlink(missing_ok=True)
            removed += 1
    return removed


__all__ = ["PARTIAL_SUFFIX", "partial_path", "remove_orphaned_partials", "written_whole"]
