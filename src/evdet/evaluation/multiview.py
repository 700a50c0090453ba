"""Evaluation of multi-view detections: per view and over all views, the fingerprint naming the views.

Each view is evaluated as its own set of sequences (one per scene); "all views" evaluates the
sequences of every view together (an image is one view at one label time). The protocol's
fingerprint gains ``views`` (the view names evaluated) and its digest is recomputed over it, so a
per-view number and an all-views number never compare as the same protocol.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from evdet.evaluation.api import evaluate
from evdet.evaluation.protocols import fingerprint_digest

SMALL_ROAD_USERS = ("pedestrian", "bicycle", "motorbike", "wheelchair")


def _with_views(result: dict, views: Sequence[str]) -> dict:
    fp = dict(result["fingerprint"])
    fp["views"] = list(views)
    fp["digest"] = fingerprint_digest(fp)
    return {**result, "fingerprint": fp}


def evaluate_views(gt: Mapping[str, Mapping[str, np.ndarray]], dt: Mapping[str, Mapping[str, np.ndarray]], *,
                   height: int, width: int, class_names: Sequence[str], protocol: str = "full",
                   groups: Mapping[str, Sequence[str]] | None = None, **options) -> dict:
    """Evaluate every view and all views together.

    Args:
        gt, dt: scene -> view -> box array (ground truth / detections in the same pixels); scenes or
            views missing from ``dt`` count as no detections.
        groups: class groups (default: the small road users present in ``class_names``).
        options: more ``evaluate`` keyword arguments.

    Returns:
        {"per_view": {view: EvalResult dict}, "all_views": EvalResult dict}; fingerprints name the views.
    """
    if groups is None:
        groups = {"small_road_users": [c for c in SMALL_ROAD_USERS if c in class_names]}
    views = sorted({v for scene in gt.values() for v in scene})
    empty = np.zeros(0, dtype=next(iter(next(iter(gt.values())).values())).dtype)

    def run(pairs: list[tuple[str, str]], names: Sequence[str]) -> dict:
        g = [gt[s][v] for s, v in pairs]
        d = [dt.get(s, {}).get(v, empty) for s, v in pairs]
        res = evaluate(g, d, height=height, width=width, class_names=list(class_names), protocol=protocol,
                       groups=dict(groups), **options)
        return _with_views(res.to_dict(), names)

    per_view = {v: run([(s, v) for s in sorted(gt) if v in gt[s]], [v]) for v in views}
    every = run([(s, v) for s in sorted(gt) for v in sorted(gt[s])], views)
    return {"per_view": per_view, "all_views": every}


__all__ = ["SMALL_ROAD_USERS", "evaluate_views"]
