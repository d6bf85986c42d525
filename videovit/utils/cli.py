"""Command-line tools share one rule: a user's mistake is one ``error:`` line and status 2, no traceback."""
from __future__ import annotations

import sys
from collections.abc import Callable

from videovit.checkpoint import CheckpointError
from videovit.config import ConfigError
from videovit.data.decoding import BackendChoiceError, DecodeError
from videovit.data.lists import ListFileError

# Mistakes in what the user gave (config, lists, checkpoint, video), as opposed to bugs.
USER_ERRORS: tuple[type[Exception], ...] = (ConfigError, CheckpointError, DecodeError,
                                            FileNotFoundError, NotADirectoryError, ListFileError,
                                            BackendChoiceError)


def line_buffered_console() -> None:
    """Flush stdout and stderr at every newline, also when they are redirected to a file, so that a
    redirected log reads in the order things happened."""
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(line_buffering=True)


def exit_status(action: Callable[[], object],
                user_errors: tuple[type[Exception], ...] = USER_ERRORS) -> int:
    """Run ``action``: 0 when it returns, 2 after printing ``error: ...`` for a user error."""
    line_buffered_console()
    try:
        action()
    except user_errors as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0
