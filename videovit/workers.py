"""Worker processes for the tools' parallel jobs: they leave signals to their parent and die with it.

``WorkerPool(function, workers)`` runs ``function(job)`` in ``workers`` processes; ``pool.run(jobs)``
yields ``(job index, result)`` as the jobs finish. Each worker starts with SIGINT and SIGTERM blocked,
ignores both (a terminal's Ctrl-C and a cluster's SIGTERM reach the whole process group: the parent
decides), asks the kernel to SIGKILL it when its parent dies (Linux ``prctl(PR_SET_PDEATHSIG)``
through ctypes, so even a SIGKILLed parent leaves no worker behind), then checks that its parent is
still the process that started it (it may have died before the request). The parent waits in short
slices inside a critical section (``videovit.signals``), so a signal stops it within a fraction of a
second; leaving the pool early (a signal, an error, a crashed worker) SIGKILLs every worker: a job
in flight holds nothing worth saving, and its writer cleans up after it (docs/architecture.md,
"Interrupts").
"""
from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from typing import Any, Generic, TypeVar, cast

from videovit.signals import ignore_signals, raise_if_interrupted, signals_blocked, signals_deferred

Job = TypeVar("Job")
Result = TypeVar("Result")
PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
POLL_SECONDS = 0.2  # how often a waiting parent looks at the signal record


class WorkerDiedError(RuntimeError):
    """A worker process ended without returning its job's result (killed, or crashed in native code)."""


def die_with_parent(parent_pid: int) -> None:
    """In a child process: be SIGKILLed when the parent dies (Linux), and exit now if it already has."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    if os.getppid() != parent_pid:
        os._exit(1)


def _serve(function: Callable[[Any], Any], connection: Connection, parent_pid: int) -> None:
    """A worker's life: take a job, send back ``(True, result)`` or ``(False, exception)``, until None."""
    ignore_signals()  # and lift the block the parent started it under
    die_with_parent(parent_pid)
    while (job := connection.recv()) is not None:
        try:
            reply: tuple[bool, Any] = (True, function(job))
        except Exception as error:  # noqa: BLE001 - handed to the parent, which raises it
            reply = (False, error)
        try:
            connection.send(reply)
        except Exception as error:  # noqa: BLE001 - an exception or result that does not pickle
            connection.send((False, RuntimeError(f"{type(error).__name__}: {error}")))


def _ending(exitcode: int | None) -> str:
    """How a process ended, from its exit code."""
    if exitcode is not None and exitcode < 0:
        return f"killed by {signal.Signals(-exitcode).name}"
    return f"exit status {exitcode}"


@dataclass
class _Worker:
    process: BaseProcess
    connection: Connection
    job: int | None = None  # index of the job it is on


class WorkerPool(Generic[Job, Result]):
    """``workers`` processes running ``function``; use as a context manager around ``run``.

    ``start_method`` is multiprocessing's ("fork", "spawn"; None: the platform's default).
    """

    def __init__(self, function: Callable[[Job], Result], workers: int, start_method: str | None = None) -> None:
        if workers < 1:
            raise ValueError(f"a pool needs at least one worker, got {workers}")
        self.function, self.size = function, workers
        self.context = multiprocessing.get_context(start_method)
        self._workers: list[_Worker] = []
        self._deferred = signals_deferred()

    def __enter__(self) -> WorkerPool[Job, Result]:
        self._deferred.__enter__()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, trace: Any) -> None:
        self._end_workers()
        self._deferred.__exit__(kind, error, trace)

    def _start(self, count: int) -> None:
        with signals_blocked():  # a worker starts with both blocked, until it ignores them
            for _ in range(count):
                parent_end, child_end = self.context.Pipe()
                process = self.context.Process(  # type: ignore[attr-defined]
                    target=_serve, args=(self.function, child_end, os.getpid()))
                process.start()
                child_end.close()
                self._workers.append(_Worker(process, parent_end))

    def _end_workers(self) -> None:
        """Idle workers finish; busy ones (the pool is left early) are killed."""
        for worker in self._workers:
            if worker.job is not None:
                worker.process.kill()
                continue
            try:
                worker.connection.send(None)
            except OSError:  # it already ended
                worker.process.kill()
        for worker in self._workers:
            worker.process.join()
            worker.connection.close()
        self._workers = []

    def run(self, jobs: Sequence[Job]) -> Iterator[tuple[int, Result]]:
        """``(index, function(jobs[index]))`` for every job, in the order they finish; a job's exception
        is raised here, as is ``WorkerDiedError`` for a worker that ended on its job; a signal raises
        ``Interrupted`` within ``POLL_SECONDS``."""
        if not self._workers:
            self._start(min(self.size, len(jobs)))
        pending = iter(range(len(jobs)))

        def hand_out(worker: _Worker) -> None:
            worker.job = next(pending, None)
            if worker.job is not None:
                worker.connection.send(jobs[worker.job])

        for worker in self._workers:
            hand_out(worker)
        while busy := [worker for worker in self._workers if worker.job is not None]:
            raise_if_interrupted()
            ready = set(wait([w.connection for w in busy] + [w.process.sentinel for w in busy], POLL_SECONDS))
            for worker in busy:
                if worker.connection not in ready and worker.process.sentinel not in ready:
                    continue
                index = cast(int, worker.job)
                try:
                    ok, value = worker.connection.recv()
                except EOFError:  # it ended without a result
                    worker.process.join()
                    raise WorkerDiedError(f"a worker process ended ({_ending(worker.process.exitcode)}) while on "
                                          f"job {index}: {jobs[index]!r}") from None
                if not ok:
                    raise value
                hand_out(worker)
                yield index, value


__all__ = ["WorkerDiedError", "WorkerPool", "die_with_parent"]
