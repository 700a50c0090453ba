"""Constant-velocity Kalman filter on box centre and size (the ByteTrack / BoT-SORT ``xywh`` model).

State (8,): centre x, centre y, width, height (pixels) and their velocities (pixels per frame step).
Noise scales with the box size, so the filter behaves alike for near and far objects. Steps may be
fractional (``dt_steps``): event-camera detections need not arrive at a fixed rate.
"""

from __future__ import annotations

import numpy as np

STD_POSITION = 1.0 / 20   # measurement / position noise as a fraction of the box side
STD_VELOCITY = 1.0 / 160  # velocity noise as a fraction of the box side, per step


def _size_scales(w: float, h: float) -> np.ndarray:
    return np.array([w, h, w, h], dtype=np.float64)


def initiate(box_cxcywh: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean (8,) and covariance (8, 8) of a new track from its first box (cx, cy, w, h)."""
    box = np.asarray(box_cxcywh, dtype=np.float64)
    mean = np.concatenate([box, np.zeros(4)])
    s = _size_scales(box[2], box[3])
    std = np.concatenate([2 * STD_POSITION * s, 10 * STD_VELOCITY * s])
    return mean, np.diag(std ** 2)


def predict(mean: np.ndarray, cov: np.ndarray, dt_steps: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """State after ``dt_steps`` frame steps of constant velocity (new arrays)."""
    f = np.eye(8)
    f[:4, 4:] = dt_steps * np.eye(4)
    s = _size_scales(mean[2], mean[3])
    q = np.diag(np.concatenate([STD_POSITION * s, STD_VELOCITY * s]) ** 2) * max(dt_steps, 0.0)
    return f @ mean, f @ cov @ f.T + q


def update(mean: np.ndarray, cov: np.ndarray, box_cxcywh: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Posterior state after measuring ``box_cxcywh`` (new arrays)."""
    h = np.eye(4, 8)
    r = np.diag((STD_POSITION * _size_scales(mean[2], mean[3])) ** 2)
    s = h @ cov @ h.T + r
    gain = np.linalg.solve(s, h @ cov).T          # cov H^T S^-1 (S symmetric)
    innovation = np.asarray(box_cxcywh, dtype=np.float64) - h @ mean
    return mean + gain @ innovation, cov - gain @ s @ gain.T
