"""Tools called in this process: ``tools/<name>.py``'s ``main(argv)`` with its console captured (a helper
module, not tests).

A tool is a thin ``main(argv)`` over ``videovit.cli.run_tool``, so its status, stdout and stderr are the
same in-process as from its real command line, without a Python start-up per call; tests start a
subprocess only where a real process is the point (signals, torchrun, start-up). ``call_tool`` captures
the console itself (so module-scoped fixtures can call tools too) and puts back the torch thread count a
tool may set (``--threads``), so later tests compute with the session's.
"""
from __future__ import annotations

import io
import runpy
from collections.abc import Callable
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path

import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
TOOLS = REPO_ROOT / "tools"


@dataclass(frozen=True)
class ToolRun:
    """What one call of a tool returned and printed."""

    status: int
    out: str
    err: str

    @property
    def errors(self) -> list[str]:
        """The ``error: ...`` lines of stderr."""
        return [line for line in self.err.splitlines() if line.startswith("error: ")]


def tool_main(name: str) -> Callable[[list[str]], int]:
    """``main`` of ``tools/<name>`` (e.g. ``"run_net.py"``), loaded from its file as the command line does."""
    return runpy.run_path(str(TOOLS / name))["main"]


def call_tool(name: str, argv: list[str]) -> ToolRun:
    """``tools/<name> argv`` in this process: its status and what it printed on stdout and stderr."""
    out, err = io.StringIO(), io.StringIO()
    threads = torch.get_num_threads()
    try:
        with redirect_stdout(out), redirect_stderr(err):
            status = tool_main(name)(argv)
    finally:
        torch.set_num_threads(threads)
    return ToolRun(status, out.getvalue(), err.getvalue())
