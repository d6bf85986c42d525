"""The one rule of every command-line tool: a user's mistake is its details, then one ``error:`` line as
the last thing printed, and the error's status; a signal is one line saying what was kept and how to
continue, and 128 + its number (``videovit.signals``). No traceback for either (docs/architecture.md).
Imports nothing heavy, so that a tool's ``--help`` stays instant.
"""
from __future__ import annotations

import signal
import sys
from collections.abc import Callable
from typing import Any

from videovit.errors import Interrupted, UserError
from videovit.signals import raise_if_interrupted, received_signal, signals_handled

NOTHING_WRITTEN = "nothing was written; rerun the same command to do it"


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


def _work(action: Callable[[], Any]) -> Any:
    """``action()`` under the interrupt rule; once a signal was received, whatever ends the work (a
    late check, an error the interruption caused) ends it as that signal."""
    with signals_handled():
        try:
            result = action()
            raise_if_interrupted()  # a signal Python swallowed somewhere still ends the tool with its status
        except Interrupted:
            raise
        except (Exception, KeyboardInterrupt) as error:
            signum = received_signal()
            if signum is None:
                raise
            raise Interrupted(signum) from error
    return result


def run_tool(action: Callable[[], Any], interrupted: str = NOTHING_WRITTEN) -> int:
    """Run a tool's work: its own status when it returns an int, 0 when it returns anything else;
    a ``UserError``'s status after ``print_error``; after a signal (Ctrl-C included) one line and 128 +
    the signal's number. ``interrupted`` completes that line when the work did not say what it kept."""
    line_buffered_console()
    try:
        result = _work(action)
    except UserError as error:
        print_error(error)
        return error.status
    except Interrupted as stop:
        print(f"{stop}: {interrupted}" if stop.bare else str(stop), file=sys.stderr)
        return stop.status
    except KeyboardInterrupt:  # a Ctrl-C before the handlers were installed
        print(f"interrupted by SIGINT: {interrupted}", file=sys.stderr)
        return 128 + signal.SIGINT
    return result if isinstance(result, int) and not isinstance(result, bool) else 0


__all__ = ["NOTHING_WRITTEN", "line_buffered_console", "print_error", "run_tool"]
