"""Expensive fixtures built once per test session rather than once per xdist worker (a helper module,
not tests).

pytest-xdist gives each worker process its own module fixtures, so a module whose tests land on both
workers would start the same torchrun job, or train the same run, twice. ``built_once`` builds into a
folder that every worker of the session sees (the session's common temporary root), under a file lock:
the first process to ask builds it, the others wait and reuse it. A build must be deterministic, return
something picklable (paths, numbers), and leave its folder unchanged afterwards (tests write elsewhere).
"""
from __future__ import annotations

import os
import pickle
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest
from filelock import FileLock

Built = TypeVar("Built")


def built_once(tmp_path_factory: pytest.TempPathFactory, name: str, build: Callable[[Path], Built]) -> Built:
    """``build(folder)``'s result, computed by the first process of the session that asks for ``name``."""
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # pytest-N/popen-gwK -> pytest-N, shared by the session's workers
    folder, result = root / name, root / f"{name}.pickle"
    with FileLock(str(root / f"{name}.lock")):
        if not result.exists():
            shutil.rmtree(folder, ignore_errors=True)  # what a failed build of another worker left
            folder.mkdir()
            built = build(folder)
            result.write_bytes(pickle.dumps(built))
            return built
    return pickle.loads(result.read_bytes())
