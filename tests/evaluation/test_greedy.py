"""Greedy matching against a plain-loop oracle, and properties of perfect detections."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evdet.evaluation import evaluate
from evdet.evaluation.greedy import greedy_match
from evdet.evaluation.matching import build_frames

from eval_boxes import boxes, random_scene


def iou_xywh(a, b):
    iw = min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0])
    ih = min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1])
    if iw <= 0 or ih <= 0:
        return 0.0
    inter = iw * ih
    return inter / (a[2] * a[3] + b[2] * b[3] - inter)


def greedy_oracle(frames, iou_thr, min_score, class_aware):
    """Per image: detections by descending score take the free GT of highest IoU (first on ties)."""
    tp_by_class, n_by_class = {}, {}
    for img in range(frames.num_images):
        g = frames.gt[frames.gt_image == img]
        d = frames.dt[frames.dt_image == img]
        d = d[d["class_confidence"] >= min_score]
        d = d[np.argsort(-d["class_confidence"].astype(float), kind="stable")]
        free = [True] * len(g)
        for det in d:
            c = int(det["class_id"])
            n_by_class[c] = n_by_class.get(c, 0) + 1
            best, best_iou = None, iou_thr
            for j, gt in enumerate(g):
                if not free[j] or (class_aware and int(gt["class_id"]) != c):
                    continue
                v = iou_xywh([float(det[k]) for k in "xywh"], [float(gt[k]) for k in "xywh"])
                if v >= best_iou and (best is None or v > best_iou):
                    best, best_iou = j, v
            if best is not None:
                free[best] = False
                tp_by_class[c] = tp_by_class.get(c, 0) + 1
    return tp_by_class, n_by_class


@pytest.mark.parametrize("class_aware", [True, False])
def test_greedy_counts_equal_plain_loop(class_aware):
    gts, dts = random_scene(np.random.default_rng(11), n_seq=2, n_frames=12, n_classes=3)
    frames = build_frames(gts, dts, 50_000)
    rows, match = greedy_match(frames, iou_threshold=0.5, min_score=0.3, class_aware=class_aware)
    cls = frames.dt["class_id"][rows]
    tp, n = greedy_oracle(frames, 0.5, 0.3, class_aware)
    assert sum(tp.values()) > 5
    for c in range(3):
        assert int((match[cls == c] >= 0).sum()) == tp.get(c, 0)
        assert int((cls == c).sum()) == n.get(c, 0)
    if class_aware:
        assert np.all(frames.gt["class_id"][match[match >= 0]] == cls[match >= 0])
    assert len(np.unique(match[match >= 0])) == int((match >= 0).sum())   # each GT used once


box_st = st.tuples(st.integers(0, 500), st.integers(0, 250), st.integers(22, 130), st.integers(22, 100),
                   st.integers(0, 2))


@settings(max_examples=15, deadline=None)
@given(frames=st.lists(st.lists(box_st, min_size=1, max_size=5), min_size=1, max_size=4),
       protocol=st.sampled_from(["prophesee", "etram-paper", "full"]), seed=st.integers(0, 10_000))
def test_perfect_detections_any_protocol(frames, protocol, seed):
    rng = np.random.default_rng(seed)
    rows = [(1_000_000 + 200_000 * f, *b) for f, bs in enumerate(frames) for b in bs]
    gt = boxes(*rows)
    dt = gt.copy()
    dt["class_confidence"] = rng.uniform(0.5, 1.0, len(dt))
    res = evaluate([gt], [dt], height=360, width=640, class_names=["a", "b", "c"], protocol=protocol,
                   pr_confidence=0.5)
    assert res.metrics["AP50"] == pytest.approx(1.0)
    assert res.metrics["AP"] == pytest.approx(1.0)
    m = res.confusion_matrix
    assert m[:3, 3].sum() == 0 and m[3].sum() == 0             # nothing missed, no false positive
    # identical boxes of different classes may swap in class-agnostic matching; totals still add up
    assert m.sum() == res.counts["gt"] == len(gt)
    for name, r in res.per_class.items():
        if r["support"]:
            assert r["recall"] == 1.0 and r["precision"] == 1.0
