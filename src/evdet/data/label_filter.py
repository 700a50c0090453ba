"""Which boxes and which label frames preprocessing keeps (the reference RVT rules).

Box filter, in the reference order (``scripts/genx/preprocess_dataset.py: apply_filters``), all at
SOURCE resolution:

1. ``unknown_class``: class id outside the dataset's class map (for Gen4 with its 3-class map this
   is the reference's "keep pedestrian, two-wheeler, car" filter).
2. ``zero_area``: after clipping the corners to the last pixel (``[0, W-1] x [0, H-1]``, as the
   reference does), the box has no width or no height (it lay outside the frame).
3. ``small_side``: width or height under ``min_side_px`` (5 px, RVT's "conservative" filter), and
   ``small_diag``: diagonal under ``min_diag_px`` (0 = no diagonal rule). RVT's Gen1 preprocessing
   applies the Prophesee filter here instead (``filter_gen1.yaml: apply_psee_bbox_filter``): side 10 and
   diagonal 30 px at 304x240, side 20 and diagonal 60 px for 1 Mpx (``prophesee_label_filter``).
4. ``too_wide`` (train split only): width over ``floor(0.9 * W)`` (faulty frame-spanning boxes).

Label frames: the distinct label timestamps are thinned to about ``label_rate_hz`` (10 Hz for
30/60 Hz sources), keeping only frames on a grid of the base period measured from the labels,
with up to 2 ms of jitter (``labels_and_ev_repr_timestamps`` in the reference).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

DROP_REASONS = ("unknown_class", "zero_area", "small_side", "small_diag", "too_wide")
MIN_SIDE_PX = 5.0
MAX_WIDTH_FRACTION = 0.9
ALIGN_T_US = 100_000          # first label frame at or after this time (reference: align_t_ms = 100)
JITTER_US = 2_000             # accepted deviation from the label grid (reference: 2 ms)


def filter_boxes(boxes: np.ndarray, height: int, width: int, *, train: bool,
                 num_classes: int | None = None, min_side_px: float = MIN_SIDE_PX, min_diag_px: float = 0.0,
                 max_width_fraction: float = MAX_WIDTH_FRACTION) -> tuple[np.ndarray, dict[str, int]]:
    """Clip boxes to the frame and drop the ones preprocessing must not keep.

    Args:
        boxes: (M,) ``BBOX_DTYPE`` array at source resolution (not modified).
        height, width: source frame size in pixels.
        train: apply the ``too_wide`` filter (the reference applies it to the train split only).
        num_classes: class ids ``>= num_classes`` are dropped (None keeps every id).
        min_side_px: smallest accepted width and height, source pixels.
        min_diag_px: smallest accepted diagonal ``sqrt(w^2 + h^2)``, source pixels (0: none).
        max_width_fraction: boxes wider than ``floor(fraction * width)`` are dropped (train only).

    Returns:
        (kept boxes, a new clipped array; counts of dropped boxes per reason in ``DROP_REASONS``).
    """
    dropped = dict.fromkeys(DROP_REASONS, 0)
    out = boxes
    if num_classes is not None:
        keep = out["class_id"] < num_classes
        dropped["unknown_class"] = int(keep.size - np.count_nonzero(keep))
        out = out[keep]
    out = clip_to_last_pixel(out, height, width)
    keep = (out["w"] > 0) & (out["h"] > 0)
    dropped["zero_area"] = int(keep.size - np.count_nonzero(keep))
    out = out[keep]
    keep = (out["w"] >= min_side_px) & (out["h"] >= min_side_px)
    dropped["small_side"] = int(keep.size - np.count_nonzero(keep))
    out = out[keep]
    keep = out["w"] ** 2 + out["h"] ** 2 >= min_diag_px ** 2       # RVT compares squares
    dropped["small_diag"] = int(keep.size - np.count_nonzero(keep))
    out = out[keep]
    if train:
        # Integer limit as the reference computes it: (9 * W) // 10; the epsilon guards 0.9 * W
        # landing just under an integer in floating point.
        max_width_px = math.floor(max_width_fraction * width + 1e-9)
        keep = out["w"] <= max_width_px
        dropped["too_wide"] = int(keep.size - np.count_nonzero(keep))
        out = out[keep]
    return out, dropped


def prophesee_label_filter(height: int, width: int) -> tuple[float, float]:
    """(min side, min diagonal) in source pixels of RVT's Prophesee label filter (``prophesee_bbox_filter``
    in ``scripts/genx/preprocess_dataset.py``): (20, 60) for 1 Mpx (1280x720) sources, else Gen1's (10, 30)."""
    return (20.0, 60.0) if width >= 1280 else (10.0, 30.0)


def clip_to_last_pixel(boxes: np.ndarray, height: int, width: int) -> np.ndarray:
    """Boxes with corners clipped to ``[0, width-1] x [0, height-1]`` (a new array).

    The reference clips to the last pixel index rather than to the frame edge; keeping that makes
    our ``labels.npz`` identical to what the reference scripts write.
    """
    out = boxes.copy()
    x1 = np.clip(boxes["x"], 0, width - 1)
    y1 = np.clip(boxes["y"], 0, height - 1)
    x2 = np.clip(boxes["x"] + boxes["w"], 0, width - 1)
    y2 = np.clip(boxes["y"] + boxes["h"], 0, height - 1)
    out["x"], out["y"], out["w"], out["h"] = x1, y1, x2 - x1, y2 - y1
    return out


@dataclass(frozen=True)
class LabelFrames:
    """The label frames kept after thinning to about ``label_rate_hz``.

    Attributes:
        t_us: (F,) int64 timestamps of the kept label frames, increasing.
        periods: (F-1,) int64 number of base periods between consecutive kept frames (1 when no
            frame was missing).
        base_period_us: the thinned label period (about 1e6 / label_rate_hz), microseconds.
        source_rate_hz: label rate measured from the labels (median spacing), 0 with one frame.
    """

    t_us: np.ndarray
    periods: np.ndarray
    base_period_us: int
    source_rate_hz: float


def select_label_frames(label_t_us: np.ndarray, *, label_rate_hz: float = 10.0,
                        align_t_us: int = ALIGN_T_US, jitter_us: int = JITTER_US) -> LabelFrames:
    """Thin label timestamps to about ``label_rate_hz`` on the grid of the labels' own period.

    The source period is the median spacing of the distinct timestamps; the base period is
    ``k`` source periods with ``k = max(1, round(source_rate / label_rate_hz))`` (3 for 30 Hz and
    6 for 60 Hz at 10 Hz, as the reference). Starting from the first timestamp at or after
    ``align_t_us``, a timestamp is kept when its distance to the last kept one is a positive
    whole number of base periods, within ``jitter_us``.

    Args:
        label_t_us: (M,) label timestamps (repeats allowed), microseconds.

    Returns:
        ``LabelFrames``; ``t_us`` is empty when no timestamp lies at or after ``align_t_us``.
    """
    if label_rate_hz <= 0:
        raise ValueError(f"label_rate_hz must be positive, got {label_rate_hz}")
    unique_t = np.unique(np.asarray(label_t_us, dtype=np.int64))
    empty = np.zeros(0, dtype=np.int64)
    if unique_t.size >= 2:
        median_us = float(np.median(np.diff(unique_t)))
        source_rate_hz = 1e6 / median_us
        factor = max(1, round(source_rate_hz / label_rate_hz))
        base_us = int(factor * median_us)
    else:
        source_rate_hz = 0.0
        base_us = int(round(1e6 / label_rate_hz))
    first = int(np.searchsorted(unique_t, align_t_us, side="left"))
    if first >= unique_t.size:
        return LabelFrames(empty, empty, base_us, source_rate_hz)
    kept = [int(unique_t[first])]
    periods = []
    for t in unique_t[first + 1:]:
        diff = int(t) - kept[-1]
        count = round(diff / base_us)
        if count > 0 and abs(diff - count * base_us) <= jitter_us:
            kept.append(int(t))
            periods.append(count)
    return LabelFrames(np.asarray(kept, dtype=np.int64), np.asarray(periods, dtype=np.int64),
                       base_us, source_rate_hz)


def group_by_frame(boxes: np.ndarray, frame_t_us: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Boxes of the kept frames, concatenated, with the start row of each frame.

    Args:
        boxes: (M,) box array sorted by ``t``.
        frame_t_us: (F,) kept frame timestamps (each present in ``boxes['t']``).

    Returns:
        (labels (K,) boxes whose t is one of the frames, in frame order;
         objframe_idx_2_label_idx (F,) int64 first row of each frame in ``labels``).
    """
    start = np.searchsorted(boxes["t"], frame_t_us, side="left")
    stop = np.searchsorted(boxes["t"], frame_t_us, side="right")
    missing = np.flatnonzero(stop <= start)
    if missing.size:
        raise ValueError(f"label frame t={int(frame_t_us[missing[0]])} us has no boxes")
    parts = [boxes[a:b] for a, b in zip(start, stop)]
    sizes = np.asarray([len(p) for p in parts], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
    labels = np.concatenate(parts) if parts else boxes[:0]
    return labels, offsets
