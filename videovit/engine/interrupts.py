"""How a run stops on SIGINT / SIGTERM in each phase; the rule itself is ``videovit.signals`` (see
docs/engine.md, "Interrupts and preemption").

Training defers a signal to the end of the current optimiser step (the Trainer shares it with every
process in the step's collective), checkpoints and stops. Every other phase stops at once, or at the
next batch inside the data loaders, and ``run_phase`` turns the bare ``Interrupted`` into the run's
one line: which phase stopped, what is kept, and the command that continues.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from videovit.errors import Interrupted
from videovit.signals import received_signal

RERUN = "rerun the same command"


@contextmanager
def run_phase(phase: str, kept: Callable[[], str]) -> Iterator[None]:
    """Inside, a bare ``Interrupted`` becomes "interrupted by SIG... during <phase>: <kept()>"
    (``kept()`` says what is kept and how to continue, evaluated when the signal stops the phase); so
    does any error once a signal was received (a loader worker the signal ended, say): the
    interruption caused it."""
    try:
        yield
    except Interrupted as stop:
        if not stop.bare:
            raise
        raise Interrupted(stop.signum, f"{stop} during {phase}: {kept()}") from None
    except Exception as error:
        signum = received_signal()
        if signum is None:
            raise
        raise Interrupted(signum, f"{Interrupted(signum)} during {phase}: {kept()}") from error


__all__ = ["RERUN", "run_phase"]
