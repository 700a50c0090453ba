"""Shared fixtures."""

from pathlib import Path

import pytest

REAL_DATA = Path(__file__).resolve().parent / "fixtures" / "real"


@pytest.fixture(scope="session")
def real_data_dir() -> Path:
    """Small real recordings (copied with their licenses from the shared data set)."""
    return REAL_DATA
