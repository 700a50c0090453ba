"""Shared tiny event fixtures for the events tests."""

import numpy as np
import pytest

from evdet.events import EVENT_DTYPE


def _random_events(n: int, height: int, width: int, seed: int = 0, t_max_us: int = 50_000,
                   t_min_us: int = 0) -> np.ndarray:
    """n random events, sorted by t, uniformly inside a height x width sensor."""
    rng = np.random.default_rng(seed)
    ev = np.zeros(n, dtype=EVENT_DTYPE)
    ev["t"] = np.sort(rng.integers(t_min_us, t_max_us, n))
    ev["x"] = rng.integers(0, width, n)
    ev["y"] = rng.integers(0, height, n)
    ev["p"] = rng.integers(0, 2, n)
    return ev


@pytest.fixture
def random_events():
    """Factory: random_events(n, height, width, seed=0, t_max_us=50_000, t_min_us=0)."""
    return _random_events
