"""Every error a user can cause, under one base class (the bottom layer: imports nothing of videovit).

A ``UserError`` says what was wrong and what to do. Tools turn it into one ``error: ...`` line and
its ``status`` (``videovit.cli``); a run also writes that line as the last line of its log.txt.
``details`` are lines worth showing before that line (a load report, every problem of a config).
Anything that is not a ``UserError`` is a bug and keeps its traceback. See docs/architecture.md.
"""
from __future__ import annotations

import signal
from collections.abc import Sequence
from pathlib import Path


class UserError(Exception):
    """Base of every error a user can cause and fix; ``str(error)`` is the one-line message."""

    status = 2  # the tools' exit status for this error

    def __init__(self, message: str, details: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.details = tuple(details)

    def __reduce__(self):  # keep ``details`` when the error crosses processes
        return (type(self), (str(self), self.details))


class ConfigError(UserError, ValueError):
    """A configuration the user must change: the message names the key or file and what to do."""


class CheckpointError(UserError, ValueError):
    """A checkpoint file or model folder that cannot be used as asked: the message names it."""


class ModelOptionError(UserError, TypeError, ValueError):
    """A model name the registry does not have, or an architecture option its family does not have."""


class ListFileError(UserError, ValueError):
    """A list or classes file that cannot be used: the message names the file and line."""


class DataSetupError(UserError, ValueError):
    """The data of a split cannot be used as configured (missing list, class count, unreachable videos)."""


class BackendChoiceError(UserError, ValueError):
    """An unknown decoding backend, or one that cannot run in this environment."""


class UsageError(UserError, ValueError):
    """An option or argument the user gave that cannot work (the message says which and what would)."""


class InputPathError(UserError, FileNotFoundError):
    """A file or folder named on the command line does not exist or is of the wrong kind."""


class MissingDependencyError(UserError, ImportError):
    """An optional package a feature needs is not installed; the message says which extra brings it."""


class DecodeError(UserError, RuntimeError):
    """A video (or the frames asked of it) cannot be decoded; the message names the path and why."""

    def __init__(self, path: str | Path, reason: str) -> None:
        super().__init__(f"cannot decode {path}: {reason}")
        self.path = str(path)
        self.reason = reason

    def __reduce__(self):
        return (type(self), (self.path, self.reason))


class NonFiniteLossError(UserError, RuntimeError):
    """Training stopped on a non-finite loss; the message names the step, the batch and the last good
    checkpoint."""

    status = 1


class CheckFailedError(UserError, RuntimeError):
    """A result failed the check that guards it (an exported file that does not reproduce the model)."""

    status = 1


class Interrupted(BaseException):
    """A signal (Ctrl-C, SIGTERM) stopped the work; ``status`` is 128 + the signal's number.

    A BaseException, like KeyboardInterrupt, so that ``except Exception`` blocks let it through. Its
    message is the one line a tool prints: what was kept and how to continue. Without one it is
    ``bare`` ("interrupted by SIGINT"), and the code that knows what stopped says the rest
    (``videovit.signals``, docs/architecture.md "Interrupts").
    """

    def __init__(self, signum: int, message: str = "") -> None:
        self.bare = not message
        super().__init__(message or f"interrupted by {signal.Signals(signum).name}")
        self.signum = signum
        self.status = 128 + signum

    def __reduce__(self):
        return (type(self), (self.signum, "" if self.bare else str(self)))


__all__ = ["BackendChoiceError", "CheckFailedError", "CheckpointError", "ConfigError", "DataSetupError",
           "DecodeError", "InputPathError", "Interrupted", "ListFileError", "MissingDependencyError",
           "ModelOptionError", "NonFiniteLossError", "UsageError", "UserError"]
