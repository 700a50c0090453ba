"""Time matching: turn per-sequence box arrays into evaluation images (one per GT timestamp)."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from evdet.data.labels import BBOX_DTYPE


@dataclass(frozen=True)
class Frames:
    """Boxes of all sequences grouped into evaluation images.

    Attributes:
        num_images: number of images (distinct GT timestamps over all sequences).
        image_seq: (I,) sequence index of each image.
        image_t_us: (I,) GT timestamp of each image, microseconds.
        gt: (N,) BBOX_DTYPE ground truth, grouped by image in image order.
        gt_image: (N,) image index of each GT box (non-decreasing).
        dt: (M,) BBOX_DTYPE detections; a detection within the tolerance of several GT timestamps
            appears once per image, as in the reference.
        dt_image: (M,) image index of each detection (non-decreasing).
    """

    num_images: int
    image_seq: np.ndarray
    image_t_us: np.ndarray
    gt: np.ndarray
    gt_image: np.ndarray
    dt: np.ndarray
    dt_image: np.ndarray


def match_times(
    gt_t_us: np.ndarray, dt_t_us: np.ndarray, time_tolerance_us: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Index ranges of one sequence's images (reference ``_match_times`` semantics).

    Each distinct GT timestamp ``ts`` is an image holding the GT boxes with ``t == ts`` and the
    detections with ``ts - tol <= t <= ts + tol``.

    Args:
        gt_t_us: (N,) sorted GT timestamps.
        dt_t_us: (M,) sorted detection timestamps.
    Returns:
        ts (I,), gt_lo (I,), gt_hi (I,), dt_lo (I,), dt_hi (I,): half-open index ranges per image.
    """
    ts = np.unique(gt_t_us)
    gt_lo = np.searchsorted(gt_t_us, ts, side="left")
    gt_hi = np.searchsorted(gt_t_us, ts, side="right")
    dt_lo = np.searchsorted(dt_t_us, ts - time_tolerance_us, side="left")
    dt_hi = np.searchsorted(dt_t_us, ts + time_tolerance_us, side="right")
    return ts, gt_lo, gt_hi, dt_lo, dt_hi


def _expand_ranges(lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Concatenated ``arange(lo[i], hi[i])`` and the range number of each element."""
    lengths = hi - lo
    owner = np.repeat(np.arange(len(lo)), lengths)
    starts = np.cumsum(lengths) - lengths
    idx = lo[owner] + (np.arange(lengths.sum()) - starts[owner])
    return idx.astype(np.int64), owner.astype(np.int64)


def build_frames(gt_list: Sequence[np.ndarray], dt_list: Sequence[np.ndarray], time_tolerance_us: int) -> Frames:
    """Group filtered, time-sorted per-sequence boxes into evaluation images (sequence order kept)."""
    seqs, times, gts, gt_imgs, dts, dt_imgs = [], [], [], [], [], []
    offset = 0
    for s, (gt, dt) in enumerate(zip(gt_list, dt_list)):
        ts, gt_lo, gt_hi, dt_lo, dt_hi = match_times(gt["t"], dt["t"], time_tolerance_us)
        gaps = np.diff(ts)
        if gaps.size and gaps.min() <= time_tolerance_us:
            warnings.warn(f"sequence {s}: ground-truth frames only {int(gaps.min())} us apart, within the "
                          f"+-{time_tolerance_us} us matching tolerance, so one detection joins several frames "
                          "and counts as a false positive in the others (reference behaviour); evaluate "
                          "labels thinned to about 10 Hz, as preprocessing writes them", stacklevel=3)
        g_idx, g_own = _expand_ranges(gt_lo, gt_hi)
        d_idx, d_own = _expand_ranges(dt_lo, dt_hi)
        seqs.append(np.full(len(ts), s, dtype=np.int64))
        times.append(ts.astype(np.int64))
        gts.append(gt[g_idx])
        gt_imgs.append(g_own + offset)
        dts.append(dt[d_idx])
        dt_imgs.append(d_own + offset)
        offset += len(ts)
    return Frames(
        num_images=offset,
        image_seq=_concat(seqs, np.int64),
        image_t_us=_concat(times, np.int64),
        gt=_concat(gts, BBOX_DTYPE),
        gt_image=_concat(gt_imgs, np.int64),
        dt=_concat(dts, BBOX_DTYPE),
        dt_image=_concat(dt_imgs, np.int64),
    )


def _concat(parts: list[np.ndarray], dtype) -> np.ndarray:
    return np.concatenate(parts) if parts else np.zeros(0, dtype=dtype)
