"""Per-view and all-views evaluation: perfect / missing detections and fingerprints naming the views."""

import numpy as np

from evdet.data.labels import DETECTION_DTYPE, empty_boxes
from evdet.evaluation.multiview import evaluate_views
from evdet.evaluation.protocols import fingerprint_digest

NAMES = ["pedestrian", "car", "bicycle", "bus", "motorbike", "truck", "tram", "wheelchair"]


def _gt(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    b = empty_boxes(12)
    b["t"] = np.repeat([600_000, 700_000, 800_000], 4)
    b["x"], b["y"] = rng.uniform(0, 150, 12), rng.uniform(0, 80, 12)
    b["w"], b["h"] = rng.uniform(12, 40, 12), rng.uniform(12, 40, 12)
    b["class_id"] = np.tile([0, 1, 2, 4], 3)
    return b


def _perfect(gt: np.ndarray) -> np.ndarray:
    d = np.zeros(gt.size, DETECTION_DTYPE)
    for f in ("t", "x", "y", "w", "h", "class_id"):
        d[f] = gt[f]
    d["class_confidence"] = d["class_score"] = 0.9
    return d


def test_perfect_view_and_missing_view():
    gt = {"s0": {"view0": _gt(0), "view1": _gt(1)}, "s1": {"view0": _gt(2), "view1": _gt(3)}}
    dt = {s: {"view0": _perfect(v["view0"])} for s, v in gt.items()}          # view1 detects nothing
    res = evaluate_views(gt, dt, height=128, width=224, class_names=NAMES, protocol="full")
    v0, v1, every = res["per_view"]["view0"], res["per_view"]["view1"], res["all_views"]
    assert v0["metrics"]["AP"] == 1.0 and v1["metrics"]["AP"] == 0.0
    assert v0["groups"]["small_road_users"]["AP"] == 1.0
    assert v0["groups"]["small_road_users"]["support"] == 18            # 3 of 4 boxes per frame, 6 frames
    assert 0.0 < every["metrics"]["AP"] < 1.0                           # half of all GT found, precision 1
    assert v0["fingerprint"]["views"] == ["view0"] and every["fingerprint"]["views"] == ["view0", "view1"]
    digests = {v0["fingerprint"]["digest"], v1["fingerprint"]["digest"], every["fingerprint"]["digest"]}
    assert len(digests) == 3
    assert every["fingerprint"]["digest"] == fingerprint_digest(every["fingerprint"])
