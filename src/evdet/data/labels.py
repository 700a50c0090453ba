"""Prophesee box labels (``*_bbox.npy``): the one box array format used everywhere in evdet.

Ground truth and detections are both arrays of ``BBOX_DTYPE``; detections put their score in
``class_confidence``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from evdet.utils.atomic import save_npy_atomic

BBOX_DTYPE = np.dtype(
    [
        ("t", "<i8"),
        ("x", "<f4"),
        ("y", "<f4"),
        ("w", "<f4"),
        ("h", "<f4"),
        ("class_id", "<u4"),
        ("track_id", "<u4"),
        ("class_confidence", "<f4"),
    ]
)
# Detections of evdet's models: BBOX_DTYPE (score obj x cls in class_confidence) plus the best class's
# probability alone (YOLOX's class_conf, the score RVT's evaluation ranks by).
DETECTION_DTYPE = np.dtype(BBOX_DTYPE.descr + [("class_score", "<f4")])
_LEGACY_NAMES = {"ts": "t", "confidence": "class_confidence"}
_REQUIRED = ("t", "x", "y", "w", "h", "class_id")


class LabelFormatError(ValueError):
    """A label file or array does not follow the Prophesee box format."""


def empty_boxes(n: int = 0) -> np.ndarray:
    """A zero-filled box array of length n."""
    return np.zeros(n, dtype=BBOX_DTYPE)


def to_bbox_array(arr: np.ndarray, source: str = "<array>") -> np.ndarray:
    """Convert a structured array (legacy field names accepted) to ``BBOX_DTYPE``.

    Raises:
        LabelFormatError: naming ``source`` and the missing field, non-finite / negative sizes, or
            class ids that are not whole numbers in 0..2**32-1 (never truncated or wrapped).
    """
    if arr.dtype.names is None:
        raise LabelFormatError(f"{source}: not a structured array (dtype {arr.dtype})")
    names = {_LEGACY_NAMES.get(n, n): n for n in arr.dtype.names}
    missing = [f for f in _REQUIRED if f not in names]
    if missing:
        raise LabelFormatError(f"{source}: missing field(s) {missing}; found {list(arr.dtype.names)}")
    _check_class_ids(arr[names["class_id"]], source)
    out = empty_boxes(len(arr))
    for field in BBOX_DTYPE.names:
        if field in names:
            out[field] = arr[names[field]]
        elif field == "class_confidence":
            out[field] = 1.0
    for field in ("x", "y", "w", "h"):
        if not np.all(np.isfinite(out[field])):
            raise LabelFormatError(f"{source}: field {field!r} holds non-finite values")
    for field in ("w", "h"):
        bad = np.flatnonzero(out[field] < 0)
        if bad.size:
            raise LabelFormatError(f"{source}: field {field!r} is negative at row {bad[0]}")
    bad = np.flatnonzero(np.diff(out["t"]) < 0)
    if bad.size:
        raise LabelFormatError(f"{source}: field 't' decreases at row {bad[0] + 1}")
    return out


def _check_class_ids(ids: np.ndarray, source: str) -> None:
    """Class ids must survive the cast to uint32 unchanged: whole numbers in 0..2**32-1."""
    if ids.dtype.kind not in "iuf":
        raise LabelFormatError(f"{source}: field 'class_id' has dtype {ids.dtype}, expected integers")
    if ids.dtype.kind == "f":
        bad = np.flatnonzero(~np.isfinite(ids) | (ids != np.round(ids)))
        if bad.size:
            raise LabelFormatError(f"{source}: field 'class_id' holds {ids[bad[0]]} at row {bad[0]}, "
                                   "not a whole number")
    bad = np.flatnonzero(ids < 0)
    if bad.size:
        raise LabelFormatError(f"{source}: field 'class_id' is negative ({ids[bad[0]]}) at row {bad[0]}")
    bad = np.flatnonzero(ids > np.iinfo(np.uint32).max)
    if bad.size:
        raise LabelFormatError(f"{source}: field 'class_id' holds {ids[bad[0]]} at row {bad[0]}, "
                               "beyond uint32")


def load_labels(path: str | Path) -> np.ndarray:
    """Read a ``*_bbox.npy`` file into a ``BBOX_DTYPE`` array (sorted by t, legacy names accepted)."""
    path = Path(path)
    try:
        arr = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as err:          # EOFError: empty or truncated file
        reason = "empty file (0 bytes)" if path.is_file() and path.stat().st_size == 0 else err
        raise LabelFormatError(f"{path}: cannot read label file ({reason})") from err
    return to_bbox_array(arr, source=str(path))


def save_labels(path: str | Path, boxes: np.ndarray) -> None:
    """Write a box array as ``*_bbox.npy`` atomically (temp file + rename)."""
    path = Path(path)
    boxes = to_bbox_array(np.asarray(boxes), source=str(path))
    save_npy_atomic(path, boxes)


def clip_boxes(boxes: np.ndarray, height: int, width: int) -> np.ndarray:
    """Boxes clipped to the frame ``[0, width) x [0, height)`` (a new array)."""
    out = boxes.copy()
    x1 = np.clip(boxes["x"], 0, width)
    y1 = np.clip(boxes["y"], 0, height)
    x2 = np.clip(boxes["x"] + boxes["w"], 0, width)
    y2 = np.clip(boxes["y"] + boxes["h"], 0, height)
    out["x"], out["y"], out["w"], out["h"] = x1, y1, x2 - x1, y2 - y1
    return out


def boxes_from_detections(
    xyxy: np.ndarray, scores: np.ndarray, class_ids: np.ndarray, t_us: int, scale: float = 1.0,
    class_scores: np.ndarray | None = None,
) -> np.ndarray:
    """Detections as a Prophesee box array.

    Args:
        xyxy: (D, 4) corners in input pixels.
        scores: (D,) confidence (stored in ``class_confidence``).
        class_ids: (D,) integer class ids.
        t_us: timestamp of the frame, microseconds.
        scale: multiply coordinates by this (e.g. 2.0 to go from 640x360 to 1280x720).
        class_scores: (D,) the class probability alone (YOLOX class_conf); when given, the result is a
            ``DETECTION_DTYPE`` array holding it in ``class_score``.
    """
    xyxy = np.asarray(xyxy, dtype=np.float64).reshape(-1, 4) * scale
    out = empty_boxes(len(xyxy)) if class_scores is None else np.zeros(len(xyxy), dtype=DETECTION_DTYPE)
    if class_scores is not None:
        out["class_score"] = np.asarray(class_scores).reshape(-1)
    out["t"] = t_us
    out["x"], out["y"] = xyxy[:, 0], xyxy[:, 1]
    out["w"], out["h"] = xyxy[:, 2] - xyxy[:, 0], xyxy[:, 3] - xyxy[:, 1]
    out["class_id"] = np.asarray(class_ids).reshape(-1)
    out["class_confidence"] = np.asarray(scores).reshape(-1)
    return out
