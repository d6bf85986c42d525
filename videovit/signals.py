"""The one interrupt rule of every tool and run (docs/architecture.md, "Interrupts").

The first SIGINT or SIGTERM is recorded. Outside a critical section it also raises ``Interrupted``
at once (plain Python work: imports, model building, a loop of our own). Inside one
(``signals_deferred``: data-loader iteration, worker pools, training steps, file writes) the handler
only records it; the section's code checks ``raise_if_interrupted`` at its safe points (between
steps, batches, videos) and leaving the section raises. Raising at an arbitrary point inside a data
loader, a process pool, a fork hook or a finalizer is what swallowed signals ("Exception ignored
in ...") and left runs hanging; the record stays, so a raise that Python swallowed anyway comes
back at the next check, and ``videovit.cli.run_tool`` never returns 0 after a signal.

A second signal exits at once: one line, status 128 + its number, nothing saved. In a forked child
the inherited handlers do nothing (the parent decides how its workers end; ``videovit.workers``).
"""
from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

from videovit.errors import Interrupted

HANDLED_SIGNALS = (signal.SIGTERM, signal.SIGINT)


@dataclass
class _Record:
    """This process's handlers: whose they are, what arrived, how deep in critical sections."""

    owner: int | None = None  # pid that installed the handlers (None: not installed)
    signum: int | None = None  # the first signal received
    depth: int = 0  # nesting of signals_deferred sections
    first_notes: list[str] = field(default_factory=list)  # what a deferred first signal will do, innermost last
    second_notes: list[str] = field(default_factory=list)  # what a second signal abandons, innermost last


_record = _Record()


def signal_name(signum: int) -> str:
    """SIGINT, SIGTERM, ..."""
    return signal.Signals(signum).name


def received_signal() -> int | None:
    """The first SIGINT/SIGTERM this process received under ``signals_handled``, else None."""
    return _record.signum if _record.owner == os.getpid() else None


def raise_if_interrupted() -> None:
    """A safe point: raise ``Interrupted`` (its bare message) when a signal was received."""
    signum = received_signal()
    if signum is not None:
        raise Interrupted(signum)


def _handle(signum: int, frame: FrameType | None) -> None:
    if _record.owner != os.getpid():
        return  # a forked worker before it set its own handlers: its parent decides
    if _record.signum is not None:
        note = f", {_record.second_notes[-1]}" if _record.second_notes else ""
        os.write(2, f"second signal ({signal_name(signum)}): exiting at once{note}\n".encode())
        os._exit(128 + signum)
    _record.signum = signum
    if _record.depth == 0:
        raise Interrupted(signum)
    if _record.first_notes:  # os.write: no lock of Python's buffered streams is taken in a handler
        os.write(2, (_record.first_notes[-1].format(name=signal_name(signum)) + "\n").encode())


@contextmanager
def signals_handled() -> Iterator[None]:
    """Install the rule's handlers for the block (the previous ones come back after). Nested use and
    use outside the main thread change nothing."""
    if _record.owner == os.getpid() or threading.current_thread() is not threading.main_thread():
        yield
        return
    previous: dict[signal.Signals, Any] = {handled: signal.getsignal(handled) for handled in HANDLED_SIGNALS}
    _record.owner, _record.signum, _record.depth = os.getpid(), None, 0
    _record.first_notes, _record.second_notes = [], []
    for handled in HANDLED_SIGNALS:
        signal.signal(handled, _handle)
    try:
        yield
    finally:
        for handled, handler in previous.items():
            signal.signal(handled, handler)
        _record.owner = None


@contextmanager
def signals_deferred(first_signal: str = "", second_signal: str = "", raise_at_end: bool = True) -> Iterator[None]:
    """A critical section: a first signal is only recorded (check ``received_signal`` at safe points).

    Leaving the section normally with one recorded raises ``Interrupted`` when ``raise_at_end`` (not
    where processes must first meet in a collective). ``first_signal``, when given, is printed on
    stderr as the signal arrives ("{name}" becomes its name): for sections whose safe points can be
    seconds apart. ``second_signal`` says what a second signal inside abandons ("without a checkpoint").
    """
    _record.depth += 1
    notes = [(_record.first_notes, first_signal), (_record.second_notes, second_signal)]
    for stack, note in notes:
        if note:
            stack.append(note)
    try:
        yield
    finally:
        for stack, note in notes:
            if note:
                stack.pop()
        _record.depth -= 1
    if raise_at_end:
        raise_if_interrupted()


@contextmanager
def signals_blocked() -> Iterator[None]:
    """SIGINT/SIGTERM blocked in this thread for the block (a signal arriving meanwhile waits, then is
    handled). Processes forked inside start with both blocked and lift the block once they ignore them
    (``ignore_signals``): a signal to the process group never finds a worker half-started, with its
    library's default handlers."""
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, HANDLED_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def ignore_signals() -> None:
    """In a worker process: leave SIGINT/SIGTERM to the parent (a terminal's Ctrl-C and a cluster's
    SIGTERM reach the whole process group); the parent ends its workers itself. Lifts the block a
    worker started under (``signals_blocked``): what arrived meanwhile is dropped."""
    for signum in HANDLED_SIGNALS:
        signal.signal(signum, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, HANDLED_SIGNALS)


__all__ = ["HANDLED_SIGNALS", "ignore_signals", "raise_if_interrupted", "received_signal", "signal_name",
           "signals_blocked", "signals_deferred", "signals_handled"]
