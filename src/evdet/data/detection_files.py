"""Detection files (``<seq>_bbox.npy``) that name both scores and rank like RVT's under any evaluator.

In memory evdet's detections are ``DETECTION_DTYPE`` (``class_confidence`` = obj x cls, the score of
threshold and NMS; ``class_score`` = the best class's probability). An outside evaluator reads a
Prophesee file's ``class_confidence`` as THE score; RVT's ``to_prophesee`` puts the class probability
there (``utils/evaluation/prophesee/io/box_loading.py``), so the files evdet writes do too, and keep
obj x cls under its own name::

    <seq>_bbox.npy   structured array, DETECTION_FILE_DTYPE:
        t <i8 (us), x <f4, y <f4, w <f4, h <f4, class_id <u4, track_id <u4,
        class_confidence <f4   the class probability (RVT's score; what COCO ranks by)
        obj_x_cls <f4          objectness x class probability (threshold / NMS score)

A reader that knows only the Prophesee fields ignores ``obj_x_cls``; ``read_detections`` turns a file
back into the in-memory form.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from evdet.data.labels import BBOX_DTYPE, DETECTION_DTYPE, load_labels, to_bbox_array
from evdet.utils.atomic import save_npy_atomic

DETECTION_FILE_DTYPE = np.dtype(BBOX_DTYPE.descr + [("obj_x_cls", "<f4")])


def to_detection_file(dets: np.ndarray) -> np.ndarray:
    """In-memory detections -> the file array (class probability in ``class_confidence``).

    A plain box array (no ``class_score``) keeps its one score in both fields.
    """
    arr = np.asarray(dets)
    out = np.zeros(len(arr), dtype=DETECTION_FILE_DTYPE)
    for field in BBOX_DTYPE.names:
        out[field] = arr[field]
    out["obj_x_cls"] = arr["class_confidence"]
    if "class_score" in (arr.dtype.names or ()):
        out["class_confidence"] = arr["class_score"]
    return out


def save_detections(path: str | Path, dets: np.ndarray) -> Path:
    """Write detections as ``DETECTION_FILE_DTYPE`` atomically; returns the path."""
    path = Path(path)
    save_npy_atomic(path, to_detection_file(to_bbox_array_keeping(dets, str(path))))
    return path


def to_bbox_array_keeping(dets: np.ndarray, source: str) -> np.ndarray:
    """Validated detections (``to_bbox_array`` checks) with their ``class_score`` kept when present."""
    arr = np.asarray(dets)
    checked = to_bbox_array(arr, source=source)
    if "class_score" not in (arr.dtype.names or ()):
        return checked
    out = np.zeros(len(arr), dtype=DETECTION_DTYPE)
    for field in BBOX_DTYPE.names:
        out[field] = checked[field]
    out["class_score"] = arr["class_score"]
    return out


def read_detections(path: str | Path) -> np.ndarray:
    """A detection file -> in-memory detections: ``DETECTION_DTYPE`` for evdet's files (obj x cls back in
    ``class_confidence``, the class probability in ``class_score``), a plain box array otherwise."""
    raw = np.load(Path(path), allow_pickle=False)
    if "obj_x_cls" not in (raw.dtype.names or ()):
        return load_labels(path)
    boxes = to_bbox_array(raw, source=str(path))
    out = np.zeros(len(raw), dtype=DETECTION_DTYPE)
    for field in BBOX_DTYPE.names:
        out[field] = boxes[field]
    out["class_score"] = raw["class_confidence"]
    out["class_confidence"] = raw["obj_x_cls"]
    return out
