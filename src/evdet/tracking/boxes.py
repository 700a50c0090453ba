"""Box geometry for tracking (NumPy): IoU between (x, y, w, h) boxes."""

from __future__ import annotations

import numpy as np

from evdet.data.labels import BBOX_DTYPE, LabelFormatError, to_bbox_array


def iou_xywh(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of boxes given as top-left corner plus size.

    Args:
        a: (N, 4) boxes (x, y, w, h) in pixels.
        b: (M, 4) boxes (x, y, w, h) in pixels.
    Returns:
        (N, M) float64 IoU; 0 where the union is empty.
    """
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    ax2, ay2 = a[:, 0] + a[:, 2], a[:, 1] + a[:, 3]
    bx2, by2 = b[:, 0] + b[:, 2], b[:, 1] + b[:, 3]
    iw = np.clip(np.minimum(ax2[:, None], bx2[None]) - np.maximum(a[:, None, 0], b[None, :, 0]), 0, None)
    ih = np.clip(np.minimum(ay2[:, None], by2[None]) - np.maximum(a[:, None, 1], b[None, :, 1]), 0, None)
    inter = iw * ih
    union = (a[:, 2] * a[:, 3])[:, None] + (b[:, 2] * b[:, 3])[None] - inter
    out = np.zeros_like(inter)
    np.divide(inter, union, out=out, where=union > 0)
    return out


def xywh(boxes: np.ndarray) -> np.ndarray:
    """(N, 4) float64 (x, y, w, h) columns of a ``BBOX_DTYPE`` array."""
    return np.stack([boxes["x"], boxes["y"], boxes["w"], boxes["h"]], axis=1).astype(np.float64)


def as_bbox_array(boxes: np.ndarray, source: str) -> np.ndarray:
    """``BBOX_DTYPE`` boxes sorted by time from any structured array holding its fields (extra fields,
    e.g. evdet's ``class_score``, are dropped; the score tracked is ``class_confidence``).

    Raises:
        ValueError: naming ``source`` when a field is missing or bad.
    """
    arr = np.asarray(boxes)
    if arr.dtype.names is None:
        if arr.size == 0:
            return np.zeros(0, dtype=BBOX_DTYPE)
        raise ValueError(f"{source}: expected a structured box array, got dtype {arr.dtype}")
    t_field = "t" if "t" in arr.dtype.names else "ts" if "ts" in arr.dtype.names else None
    if t_field is not None:
        arr = arr[np.argsort(arr[t_field], kind="stable")]
    if arr.dtype == BBOX_DTYPE:
        return arr
    try:
        return to_bbox_array(arr, source=source)
    except LabelFormatError as err:
        raise ValueError(str(err)) from None
