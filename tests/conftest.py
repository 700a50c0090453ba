"""Shared fixtures."""

from pathlib import Path

import pytest
import torch

REAL_DATA = Path(__file__).resolve().parent / "fixtures" / "real"


@pytest.fixture(scope="session")
def real_data_dir() -> Path:
    """Small real recordings (copied with their licenses from the shared data set)."""
    return REAL_DATA


@pytest.fixture(scope="session", autouse=True)
def one_thread():
    """The machine is shared: one torch thread is much faster than oversubscribed cores (restored after)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
