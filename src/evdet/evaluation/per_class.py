"""Per-class results: AP, AP50, precision / recall at a stated confidence, support."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from evdet.evaluation.coco import CocoPrecision
from evdet.evaluation.greedy import greedy_match
from evdet.evaluation.matching import Frames


def per_class_results(
    coco: CocoPrecision,
    frames: Frames,
    class_names: Sequence[str],
    *,
    confidence: float = 0.5,
    iou_threshold: float = 0.5,
) -> dict[str, dict]:
    """One entry per class name (id order).

    Args:
        coco: class-aware COCO precision of the same frames.
        confidence: detections with ``score >= confidence`` count for precision / recall.
    Returns:
        name -> {"AP", "AP50", "precision", "recall", "support", "confidence", "tp", "fp", "fn"}.
        ``support`` is the GT count after the protocol filter. AP / AP50 / recall are None when
        support is 0; precision is None when no detection of that class passes ``confidence``.
        Precision and recall use greedy class-aware matching by score at ``iou_threshold``.
    """
    num_classes = len(class_names)
    dt_rows, gt_rows = greedy_match(frames, iou_threshold=iou_threshold, min_score=confidence, class_aware=True)
    dt_cls = frames.dt["class_id"][dt_rows].astype(np.int64)
    tp = np.bincount(dt_cls[gt_rows >= 0], minlength=num_classes)
    n_dt = np.bincount(dt_cls, minlength=num_classes)
    support = np.bincount(frames.gt["class_id"].astype(np.int64), minlength=num_classes)
    out = {}
    for c, name in enumerate(class_names):
        has_gt = support[c] > 0
        out[name] = {
            "AP": coco.average_precision(class_slots=[c]) if has_gt else None,
            "AP50": coco.average_precision(iou=0.5, class_slots=[c]) if has_gt else None,
            "precision": float(tp[c] / n_dt[c]) if n_dt[c] else None,
            "recall": float(tp[c] / support[c]) if has_gt else None,
            "support": int(support[c]),
            "confidence": float(confidence),
            "tp": int(tp[c]),
            "fp": int(n_dt[c] - tp[c]),
            "fn": int(support[c] - tp[c]),
        }
    return out
