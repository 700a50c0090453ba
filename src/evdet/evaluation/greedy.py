"""Greedy score-ordered IoU matching of detections to ground truth, image by image."""

from __future__ import annotations

import numba
import numpy as np

from evdet.evaluation.matching import Frames


@numba.njit(cache=True)
def _greedy_kernel(gt_box, gt_cls, gt_start, gt_stop, dt_box, dt_cls, dt_img, iou_threshold, class_aware):
    """dt_box/dt_cls/dt_img sorted by (image, score desc); returns matched GT row per detection or -1."""
    m = dt_box.shape[0]
    match = np.full(m, -1, dtype=np.int64)
    taken = np.zeros(gt_box.shape[0], dtype=np.bool_)
    for d in range(m):
        img = dt_img[d]
        dx1, dy1 = dt_box[d, 0], dt_box[d, 1]
        dx2, dy2 = dx1 + dt_box[d, 2], dy1 + dt_box[d, 3]
        d_area = dt_box[d, 2] * dt_box[d, 3]
        best, best_iou = -1, iou_threshold
        for g in range(gt_start[img], gt_stop[img]):
            if taken[g] or (class_aware and gt_cls[g] != dt_cls[d]):
                continue
            gx1, gy1 = gt_box[g, 0], gt_box[g, 1]
            gx2, gy2 = gx1 + gt_box[g, 2], gy1 + gt_box[g, 3]
            iw = min(dx2, gx2) - max(dx1, gx1)
            ih = min(dy2, gy2) - max(dy1, gy1)
            if iw <= 0.0 or ih <= 0.0:
                continue
            inter = iw * ih
            union = d_area + gt_box[g, 2] * gt_box[g, 3] - inter
            iou = inter / union if union > 0.0 else 0.0
            if iou >= best_iou and (best < 0 or iou > best_iou):
                best, best_iou = g, iou
        if best >= 0:
            taken[best] = True
            match[d] = best
    return match


def _xywh(boxes: np.ndarray) -> np.ndarray:
    return np.stack([boxes["x"], boxes["y"], boxes["w"], boxes["h"]], axis=1).astype(np.float64).reshape(-1, 4)


def greedy_match(
    frames: Frames, *, iou_threshold: float = 0.5, min_score: float = 0.5, class_aware: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Match detections with ``score >= min_score`` to GT, highest score first, per image.

    Each detection takes the unmatched GT box of highest IoU (>= ``iou_threshold``; the first such
    box on ties); with ``class_aware`` only GT of the detection's class qualifies.

    Returns:
        dt_rows: (D,) rows of ``frames.dt`` that pass ``min_score``, in matching order.
        gt_rows: (D,) matched row of ``frames.gt`` for each of them, or -1 (false positive).
    """
    keep = np.flatnonzero(frames.dt["class_confidence"] >= min_score)
    order = keep[np.lexsort((-frames.dt["class_confidence"][keep].astype(np.float64), frames.dt_image[keep]))]
    gt_start = np.searchsorted(frames.gt_image, np.arange(frames.num_images), side="left")
    gt_stop = np.searchsorted(frames.gt_image, np.arange(frames.num_images), side="right")
    match = _greedy_kernel(
        _xywh(frames.gt), frames.gt["class_id"].astype(np.int64), gt_start, gt_stop,
        _xywh(frames.dt[order]), frames.dt["class_id"][order].astype(np.int64),
        frames.dt_image[order].astype(np.int64), float(iou_threshold), bool(class_aware),
    )
    return order, match
