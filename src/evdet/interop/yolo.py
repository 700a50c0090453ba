"""The Ultralytics YOLO text formats: label lines ``class cx cy w h`` and prediction lines
``class cx cy w h conf`` (``save_txt --save-conf``), coordinates normalised to [0, 1].

Image stems name the frame: ``<sequence>_t<label time in us>`` (see ``frame_stem``).
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np

from evdet.data.labels import clip_boxes, empty_boxes

_STEM = re.compile(r"^(?P<seq>.+)_t(?P<t_us>\d+)$")
COORD_TOLERANCE = 1e-4   # printed coordinates may round a hair outside [0, 1]


class YoloFormatError(ValueError):
    """A YOLO text file breaks the format (the message names file and line)."""


def frame_stem(seq: str, t_us: int) -> str:
    """File stem of the frame of sequence ``seq`` at label time ``t_us``."""
    return f"{seq}_t{int(t_us)}"


def parse_stem(stem: str) -> tuple[str, int] | None:
    """(sequence, t_us) of a stem made by ``frame_stem``; None for other names."""
    m = _STEM.match(stem)
    return (m["seq"], int(m["t_us"])) if m else None


def label_lines(boxes: np.ndarray, height: int, width: int) -> list[str]:
    """YOLO label lines of a ``BBOX_DTYPE`` frame in pixels of a ``height x width`` image.

    Boxes are clipped to the image; boxes left without area are dropped.
    """
    b = clip_boxes(boxes, height, width)
    b = b[(b["w"] > 0) & (b["h"] > 0)]
    cx = (b["x"].astype(np.float64) + b["w"] / 2) / width
    cy = (b["y"].astype(np.float64) + b["h"] / 2) / height
    return [f"{int(c)} {x:.6f} {y:.6f} {w:.6f} {h:.6f}"
            for c, x, y, w, h in zip(b["class_id"], cx, cy, b["w"] / width, b["h"] / height)]


def read_prediction_file(path: str | Path, *, t_us: int, height: int, width: int, num_classes: int,
                         with_conf: bool = True) -> np.ndarray:
    """Boxes of one YOLO text file as ``BBOX_DTYPE`` in pixels of a ``height x width`` image.

    Args:
        path: text file, one box per line: ``class cx cy w h conf`` (``with_conf``) or ``class cx cy w h``.
        t_us: the frame's time, written into ``t``.
        num_classes: class ids must lie in [0, num_classes).
    Raises:
        YoloFormatError: ``<file>: <problem>`` for a file that is not UTF-8 text, and
            ``<file>:<line>: <problem>`` for a wrong column count, a non-numeric or
            non-finite value, a class id that is not an integer in range, a coordinate outside [0, 1]
            or a confidence outside [0, 1].
    """
    path = Path(path)
    ncols = 6 if with_conf else 5
    layout = "class cx cy w h conf" if with_conf else "class cx cy w h"
    rows = []
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise YoloFormatError(f"{path}: not a text file of boxes ({err.reason} at byte {err.start})") from None
    for line_no, line in enumerate(text.splitlines(), start=1):
        parts = line.split()
        if not parts:
            continue
        where = f"{path}:{line_no}"
        if len(parts) != ncols:
            raise YoloFormatError(f"{where}: expected {ncols} columns ({layout}), got {len(parts)}")
        try:
            values = [float(p) for p in parts]
        except ValueError:
            bad = next(p for p in parts if not _is_float(p))
            raise YoloFormatError(f"{where}: {bad!r} is not a number") from None
        if not all(math.isfinite(v) for v in values):
            raise YoloFormatError(f"{where}: non-finite value")
        cls = values[0]
        if cls != int(cls) or not 0 <= cls < num_classes:
            raise YoloFormatError(f"{where}: class {parts[0]!r} is not one of the {num_classes} class ids "
                                  f"0..{num_classes - 1}")
        for name, v in zip(("cx", "cy", "w", "h"), values[1:5]):
            if not -COORD_TOLERANCE <= v <= 1 + COORD_TOLERANCE:
                raise YoloFormatError(f"{where}: {name} = {parts[1 + ('cx', 'cy', 'w', 'h').index(name)]} "
                                      f"is outside [0, 1] (coordinates must be normalised)")
        if with_conf and not 0.0 <= values[5] <= 1.0:
            raise YoloFormatError(f"{where}: conf = {parts[5]} is outside [0, 1]")
        rows.append(values)
    out = empty_boxes(len(rows))
    if rows:
        a = np.asarray(rows, dtype=np.float64)
        out["t"] = t_us
        out["x"] = (a[:, 1] - a[:, 3] / 2) * width
        out["y"] = (a[:, 2] - a[:, 4] / 2) * height
        out["w"] = a[:, 3] * width
        out["h"] = a[:, 4] * height
        out["class_id"] = a[:, 0].astype(np.int64)
        out["class_confidence"] = a[:, 5] if with_conf else 1.0
    return out


def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
