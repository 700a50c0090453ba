"""Confusion matrix with a background row and column."""

from __future__ import annotations

import numpy as np

from evdet.evaluation.greedy import greedy_match
from evdet.evaluation.matching import Frames


def confusion_matrix(frames: Frames, num_classes: int, *, iou_threshold: float = 0.5,
                     confidence: float = 0.5) -> np.ndarray:
    """Raw counts, rows = true class + background, columns = predicted class + background.

    Detections with ``score >= confidence`` are matched greedily by score to GT of ANY class
    (class-agnostic IoU >= ``iou_threshold``, highest IoU first), so that confusions show up: a
    matched pair adds 1 at (true, predicted); an unmatched detection adds 1 at (background,
    predicted); an unmatched GT box adds 1 at (true, background). Cell (background, background)
    stays 0. A detection within the time tolerance of two GT frames counts in both, as it does
    for COCO AP.

    Returns:
        (C + 1, C + 1) int64 matrix; index C is background.
    """
    bg = num_classes
    dt_rows, gt_rows = greedy_match(frames, iou_threshold=iou_threshold, min_score=confidence, class_aware=False)
    pred = frames.dt["class_id"][dt_rows].astype(np.int64)
    true = np.where(gt_rows >= 0, frames.gt["class_id"][np.maximum(gt_rows, 0)].astype(np.int64), bg)
    matrix = np.zeros((bg + 1, bg + 1), dtype=np.int64)
    np.add.at(matrix, (true, pred), 1)
    missed = np.ones(len(frames.gt), dtype=bool)
    missed[gt_rows[gt_rows >= 0]] = False
    matrix[:bg, bg] += np.bincount(frames.gt["class_id"][missed].astype(np.int64), minlength=num_classes)
    return matrix


def normalize_rows(matrix: np.ndarray) -> np.ndarray:
    """Each row divided by its sum (rows that sum to 0 stay 0): the share of each true class."""
    matrix = np.asarray(matrix, dtype=np.float64)
    sums = matrix.sum(axis=1, keepdims=True)
    return np.divide(matrix, sums, out=np.zeros_like(matrix), where=sums > 0)
