"""Fixed-length time windows (50 ms by default) that end on a grid.

A window is half-open, ``[end - window_us, end)``; the event at time t falls in the window that
ends at ``(t // window_us + 1) * window_us``. Label frames are matched to the window that ends at
their timestamp, as RVT does.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np


def window_bounds(t_end_us: np.ndarray, window_us: int = 50_000) -> np.ndarray:
    """(N, 2) int64 ``[start, end)`` bounds of the windows ending at ``t_end_us`` (N,)."""
    if window_us <= 0:
        raise ValueError(f"window_us must be positive, got {window_us}")
    ends = np.asarray(t_end_us, dtype=np.int64).reshape(-1)
    return np.stack([ends - window_us, ends], axis=1)


def grid_window_ends(t_first_us: int, t_last_us: int, window_us: int = 50_000) -> np.ndarray:
    """(N,) int64 ends of the grid windows that cover ``[t_first_us, t_last_us]``.

    Ends are multiples of ``window_us``; the first window holds ``t_first_us`` and the last holds
    ``t_last_us``.
    """
    if window_us <= 0:
        raise ValueError(f"window_us must be positive, got {window_us}")
    if t_last_us < t_first_us:
        raise ValueError(f"t_last_us={t_last_us} precedes t_first_us={t_first_us}")
    first = (int(t_first_us) // window_us + 1) * window_us
    last = (int(t_last_us) // window_us + 1) * window_us
    return np.arange(first, last + 1, window_us, dtype=np.int64)


def iter_windows(t_first_us: int, t_last_us: int, window_us: int = 50_000) -> Iterator[tuple[int, int]]:
    """Yield ``(start_us, end_us)`` of each grid window covering ``[t_first_us, t_last_us]``."""
    for end in grid_window_ends(t_first_us, t_last_us, window_us):
        yield int(end) - window_us, int(end)


def window_slices(t_us: np.ndarray, bounds: np.ndarray) -> np.ndarray:
    """(N, 2) int64 index ranges ``[lo, hi)`` of sorted timestamps ``t_us`` inside each
    ``[start, end)`` row of ``bounds`` (N, 2) (binary search, no copy of the events)."""
    bounds = np.asarray(bounds, dtype=np.int64).reshape(-1, 2)
    lo = np.searchsorted(t_us, bounds[:, 0], side="left")
    hi = np.searchsorted(t_us, bounds[:, 1], side="left")
    return np.stack([lo, np.maximum(lo, hi)], axis=1).astype(np.int64)
