"""SIGTERM / SIGINT during a run: finish the step, checkpoint, exit 143 / 130 (see docs/engine.md).

While training, the first signal only sets a flag: the Trainer shares it with every process at the
end of the current optimiser step (inside the step's one collective), so all processes stop after
the same step, rank 0 saves a checkpoint that resumes at the next batch, and ``Interrupted``
carries the exit status out. A second signal exits at once (no checkpoint). Outside training (the
test phase) the first signal raises ``Interrupted`` immediately: there is nothing to save.
"""
from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable
from types import FrameType
from typing import Any

from videovit.cli import HANDLED_SIGNALS
from videovit.errors import Interrupted


class InterruptGuard:
    """Signal handlers of one run (install with ``with``; the previous handlers come back after)."""

    def __init__(self, notify: Callable[[str], None]) -> None:
        self.notify = notify
        self.signum: int | None = None
        self.deferred = False
        self._previous: dict[int, Any] = {}

    @property
    def requested(self) -> bool:
        """True once a signal arrived on this process."""
        return self.signum is not None

    @property
    def name(self) -> str:
        """The received signal's name (SIGTERM, SIGINT)."""
        return signal.Signals(self.signum).name if self.signum is not None else ""

    def __enter__(self) -> InterruptGuard:
        for signum in HANDLED_SIGNALS:
            self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if self.signum is not None:
            sys.stderr.write(f"second signal ({name}): exiting at once, without a checkpoint\n")
            sys.stderr.flush()
            os._exit(128 + signum)
        self.signum = signum
        if not self.deferred:
            message = f"interrupted by {name} outside training (nothing to save); rerun the same command to redo it"
            self.notify(message)
            raise Interrupted(signum, message)
        self.notify(f"received {name}: stopping after the current step with a checkpoint "
                    f"(send it again to exit at once)")


__all__ = ["InterruptGuard"]
