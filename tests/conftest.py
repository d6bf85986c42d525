"""Shared test fixtures and settings: the reference data folder, the ``slow`` tier, and a clean start for
every test (one seed)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

TEST_DATA = Path(__file__).resolve().parent / "data"


@pytest.fixture(scope="session")
def test_data() -> Path:
    """``tests/data``: checkpoint manifests, official numerical references and annotation samples
    (what each file is: tests/data/README.md)."""
    return TEST_DATA


def pytest_configure(config: pytest.Config) -> None:
    """Register the ``slow`` tier (``make test-fast`` leaves it out), and set one thread count for
    the whole session before any fixture trains a model (results of a module-scoped training
    fixture and a later test must come from the same kernels); under pytest-xdist each of the two
    workers takes one core."""
    config.addinivalue_line("markers", "slow: subprocesses, torchrun, signals, the end-to-end demo")
    torch.set_num_threads(1 if os.environ.get("PYTEST_XDIST_WORKER") else 2)


@pytest.fixture(autouse=True)
def _seed() -> None:
    """Every test starts from the same random state."""
    torch.manual_seed(0)
