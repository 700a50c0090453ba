"""Class-balanced weights from class counts (used by sampling in ``data`` and loss weighting in ``models``).

Two variants, each normalised so that the weights of the classes with boxes average to 1:

    inverse:    w_c ~ 1 / n_c
    effective:  w_c ~ (1 - beta) / (1 - beta ** n_c)     (Cui et al., CVPR 2019, "effective number")

Classes with no box get weight 0 in both (nothing to balance).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np


def class_balanced_weights(counts: Sequence[float], mode: str, beta: float = 0.999) -> np.ndarray:
    """Per-class weights.

    Args:
        counts: (K,) boxes per class (>= 0).
        mode: "inverse" or "effective".
        beta: effective-number parameter in [0, 1).
    Returns:
        (K,) float64 weights, mean 1 over the classes with counts > 0, 0 elsewhere.
    Raises:
        ValueError: unknown mode, beta outside [0, 1), or negative counts.
    """
    n = np.asarray(counts, dtype=np.float64)
    if (n < 0).any():
        raise ValueError(f"class counts must be >= 0, got {n.tolist()}")
    present = n > 0
    raw = np.zeros_like(n)
    if mode == "inverse":
        raw[present] = 1.0 / n[present]
    elif mode == "effective":
        if not 0.0 <= beta < 1.0:
            raise ValueError(f"class balance beta must lie in [0, 1), got {beta}")
        raw[present] = (1.0 - beta) / (1.0 - beta ** n[present])
    else:
        raise ValueError(f"class balance mode must be 'inverse' or 'effective', got {mode!r}")
    if not present.any():
        return raw
    return raw * present.sum() / raw[present].sum()
