"""Linear assignment with a cost limit (ByteTrack's ``lapjv(..., cost_limit)``): ``lap`` or SciPy."""

from __future__ import annotations

from typing import Literal

import numpy as np


def linear_assignment(cost: np.ndarray, max_cost: float, solver: Literal["lap", "scipy"] | None = None
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One-to-one pairs minimising the sum of ``cost - max_cost`` over kept pairs.

    Leaving a row and a column unmatched costs ``max_cost``, so only pairs with ``cost <= max_cost``
    are ever kept (lap's ``cost_limit`` semantics).

    Args:
        cost: (N, M) cost matrix; non-finite entries never pair.
        max_cost: the largest cost a kept pair may have.
        solver: "lap" (``lap.lapjv``), "scipy" (``linear_sum_assignment``), or None = lap if installed.
    Returns:
        matches (K, 2) int rows/cols, unmatched rows (N - K,), unmatched cols (M - K,).
    """
    cost = np.asarray(cost, dtype=np.float64)
    n, m = cost.shape
    if n == 0 or m == 0:
        return np.zeros((0, 2), dtype=np.int64), np.arange(n), np.arange(m)
    allowed = np.isfinite(cost) & (cost <= max_cost)
    if solver is None:
        try:
            import lap
            solver = "lap"
        except ImportError:
            solver = "scipy"
    if solver == "lap":
        import lap

        big = max_cost + 1.0
        _, row_to_col, _ = lap.lapjv(np.where(allowed, cost, big), extend_cost=True,
                                     cost_limit=float(np.nextafter(max_cost, np.inf)))
        rows = np.flatnonzero(row_to_col >= 0)
        cols = row_to_col[rows]
    elif solver == "scipy":
        from scipy.optimize import linear_sum_assignment

        # a disallowed pair costs 0 = the same as leaving both unmatched
        rows, cols = linear_sum_assignment(np.where(allowed, cost - max_cost, 0.0))
    else:
        raise ValueError(f"solver must be 'lap', 'scipy' or None, got {solver!r}")
    keep = allowed[rows, cols]
    matches = np.stack([rows[keep], cols[keep]], axis=1).astype(np.int64)
    return (matches, np.setdiff1d(np.arange(n), matches[:, 0]), np.setdiff1d(np.arange(m), matches[:, 1]))
