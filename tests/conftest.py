"""Shared test fixtures: where the team's shared reference material lives."""
from __future__ import annotations

from pathlib import Path

import os

import pytest
import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DIR = REPO_ROOT.parent / "shared"


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """``../shared`` next to the checkout (spec and fixtures); tests needing it skip without it."""
    if not SHARED_DIR.is_dir():
        pytest.skip(f"shared reference material not found at {SHARED_DIR}")
    return SHARED_DIR


def pytest_configure(config: pytest.Config) -> None:
    """One thread count for the whole session, set before any fixture trains a model (results of
    a module-scoped training fixture and a later test must come from the same kernels); under
    pytest-xdist each of the two workers takes one core."""
    torch.set_num_threads(1 if os.environ.get("PYTEST_XDIST_WORKER") else 2)
    config.addinivalue_line("markers", "slow: subprocesses, torchrun, compilation or more than 10 s")


@pytest.fixture(autouse=True)
def _seed() -> None:
    """Every test starts from the same random state."""
    torch.manual_seed(0)
