"""The one rule of every command-line tool: a user's mistake is its details, then one ``error:`` line as
the last thing printed, and the error's status; a signal is one line and 128 + its number. No traceback
for either (docs/architecture.md). Imports nothing heavy, so that a tool's ``--help`` stays instant.
"""
from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

from videovit.errors import Interrupted, UserError

HANDLED_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def line_buffered_console() -> None:
    """Flush stdout and stderr at every newline, also when they are redirected to a file, so that a
    redirected log reads in the order things happened."""
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(line_buffering=True)


def print_error(error: UserError) -> None:
    """The error's details, then ``error: <message>`` on stderr."""
    for line in error.details:
        print(line, file=sys.stderr)
    print(f"error: {error}", file=sys.stderr)


@contextmanager
def signals_raise() -> Iterator[None]:
    """Inside the block the first SIGINT/SIGTERM raises ``Interrupted``; a second one exits at once."""
    received: list[int] = []

    def handle(signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if received:
            sys.stderr.write(f"second signal ({name}): exiting at once\n")
            sys.stderr.flush()
            os._exit(128 + signum)
        received.append(signum)
        raise Interrupted(signum, f"interrupted by {name}")

    previous = {signum: signal.signal(signum, handle) for signum in HANDLED_SIGNALS}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def run_tool(action: Callable[[], Any]) -> int:
    """Run a tool's work: its own status when it returns an int, 0 when it returns anything else;
    a ``UserError``'s status after ``print_error``; 128 + the signal's number after one line for a
    signal (Ctrl-C included)."""
    line_buffered_console()
    try:
        with signals_raise():
            result = action()
    except UserError as error:
        print_error(error)
        return error.status
    except Interrupted as stop:
        print(f"{stop}: stopped", file=sys.stderr)
        return stop.status
    except KeyboardInterrupt:
        print("interrupted by SIGINT: stopped", file=sys.stderr)
        return 128 + signal.SIGINT
    return result if isinstance(result, int) and not isinstance(result, bool) else 0


__all__ = ["HANDLED_SIGNALS", "line_buffered_console", "print_error", "run_tool", "signals_raise"]
