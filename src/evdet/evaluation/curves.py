"""Precision-recall curves per class from the COCO precision array."""

from __future__ import annotations

from typing import Sequence

from evdet.evaluation.coco import CocoPrecision


def pr_curves(coco: CocoPrecision, class_names: Sequence[str], *, iou: float = 0.5) -> dict[str, dict]:
    """Interpolated PR curve per class at one IoU threshold (area "all", 100 detections).

    Returns:
        name -> {"recall": [R], "precision": [R]} at COCO's 101 recall points; classes without
        support are left out (their curve is undefined). Class-agnostic runs give one curve "all".
    """
    import numpy as np

    t = int(np.flatnonzero(np.isclose(coco.iou_thresholds, iou))[0])
    a = coco.area_labels.index("all")
    names = ["all"] if coco.class_ids == (-1,) else list(class_names)
    out = {}
    for k, name in enumerate(names):
        p = coco.precision[t, :, k, a]
        if (p > -1).any():
            out[name] = {"recall": coco.recall_thresholds.round(2).tolist(), "precision": p.tolist()}
    return out
