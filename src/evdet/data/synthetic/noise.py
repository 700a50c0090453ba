"""Sensor noise that does not depend on the scene: background activity and hot pixels.

Both are Poisson processes (uniform in time); noise events do not interact with the signal
pixels' reference or refractory state (a simplification: at the rates used, a noise event
almost never lands on a pixel that is firing for a moving object at the same moment).
"""

from __future__ import annotations

import numpy as np


def background_activity(duration_us: int, height: int, width: int, rate_hz: float,
                        rng: np.random.Generator):
    """Leak / shot noise: ``rate_hz`` events per pixel per second at random pixels and times.

    Returns:
        (t_us, x, y, p) columns, unsorted.
    """
    n = int(rng.poisson(max(rate_hz, 0.0) * height * width * duration_us * 1e-6))
    return (rng.integers(0, duration_us, n, dtype=np.int64), rng.integers(0, width, n).astype(np.uint16),
            rng.integers(0, height, n).astype(np.uint16), rng.integers(0, 2, n).astype(np.uint8))


def hot_pixels(duration_us: int, height: int, width: int, fraction: float, rate_hz: float,
               rng: np.random.Generator):
    """A fixed set of ``fraction`` of the pixels fire at about ``rate_hz`` each (rates vary 0.5-2x).

    Returns:
        (t_us, x, y, p) columns, unsorted.
    """
    n_hot = int(round(fraction * height * width))
    if n_hot == 0 or rate_hz <= 0:
        empty = np.zeros(0, np.int64)
        return empty, empty.astype(np.uint16), empty.astype(np.uint16), empty.astype(np.uint8)
    idx = rng.choice(height * width, n_hot, replace=False)
    rates = rate_hz * rng.uniform(0.5, 2.0, n_hot)
    counts = rng.poisson(rates * duration_us * 1e-6)
    pix = np.repeat(idx, counts)
    t = rng.integers(0, duration_us, pix.size, dtype=np.int64)
    p = np.repeat(rng.integers(0, 2, n_hot), counts).astype(np.uint8)  # a hot pixel keeps its polarity
    return t, (pix % width).astype(np.uint16), (pix // width).astype(np.uint16), p
