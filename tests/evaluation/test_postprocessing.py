"""Post-processing as a fingerprinted part of the protocol: hand-computed cases."""

import numpy as np
import pytest

from evdet.data.labels import BBOX_DTYPE, DETECTION_DTYPE
from evdet.evaluation import evaluate
from evdet.evaluation.postprocessing import PostProcess, apply_postprocess, make_postprocess
from evdet.evaluation.protocols import fingerprint, get_protocol

T = 1_000_000  # after the 0.5 s skip


def _dets(rows):
    """rows: (t, x, y, w, h, class_id, obj x cls, class prob)."""
    out = np.zeros(len(rows), dtype=DETECTION_DTYPE)
    for i, (t, x, y, w, h, c, s, p) in enumerate(rows):
        out[i] = (t, x, y, w, h, c, 0, s, p)
    return out


def test_rvt_keeps_everything_above_the_threshold_unclipped():
    d = _dets([(T, -5, 2, 20, 10, 0, 0.5, 0.9), (T, 1, 1, 5, 5, 0, 0.0005, 0.9), (T, 90, 1, 20, 10, 0, 0.2, 0.3)])
    out = apply_postprocess(d, make_postprocess("rvt", 0.001), height=50, width=100)
    assert out.size == 2 and out["x"].tolist() == [-5, 90] and out["w"].tolist() == [20, 20]


def test_clip_cap_clips_and_keeps_the_top_obj_x_cls_per_frame():
    d = _dets([(T, -5, 2, 20, 10, 0, 0.3, 0.9), (T, 90, 1, 20, 10, 0, 0.6, 0.3),
               (T + 50_000, 1, 1, 5, 5, 0, 0.2, 0.9)] + [(T, 10 + i, 10, 5, 5, 1, 0.4, 0.5) for i in range(300)])
    out = apply_postprocess(d, make_postprocess("clip_cap", 0.1), height=50, width=100)
    first = out[out["t"] == T]
    assert first.size == 300                     # 302 candidates in the first frame, cap 300
    assert 0.3 not in first["class_confidence"].round(3).tolist()  # the lowest obj x cls is the one dropped
    assert (out["t"] == T + 50_000).sum() == 1   # caps are per frame
    clipped = first[first["class_confidence"].round(3) == 0.6][0]
    assert (clipped["x"], clipped["w"]) == (90, 10)  # 90..110 clipped to 90..100


def test_no_cap_and_class_ranking_move_ap_as_computed_by_hand():
    """One GT; a false positive with high obj x cls and low class probability; the true box second.

    clip_cap with cap 1 keeps only the false positive: AP 0. rvt keeps both, ranks by class
    probability: the true box first, precision 1 at recall 1: AP 1 (at every IoU threshold).
    """
    gt = np.zeros(1, dtype=BBOX_DTYPE)
    gt[0] = (T, 10, 10, 20, 20, 0, 0, 1.0)
    d = _dets([(T, 60, 10, 20, 20, 0, 0.9, 0.2), (T, 10, 10, 20, 20, 0, 0.5, 0.8)])
    kw = dict(height=100, width=100, class_names=("car", "pedestrian"), protocol="prophesee")
    rvt = evaluate([gt], [d], **kw)
    assert rvt.metrics["AP"] == pytest.approx(1.0)
    cap_one = PostProcess("clip_cap", 0.1, clip=True, max_detections=1)
    assert apply_postprocess(d, cap_one, 100, 100)["x"].tolist() == [60]
    one = evaluate([gt], [apply_postprocess(d, cap_one, 100, 100)], **kw)
    assert one.metrics["AP"] == pytest.approx(0.0)


def test_threshold_after_nms_equals_nms_at_the_threshold():
    """NMS only lets a higher score suppress a lower one: thresholding later changes nothing."""
    import torch

    from evdet.models.boxes import batched_nms

    g = torch.Generator().manual_seed(0)
    boxes = torch.rand(200, 2, generator=g) * 50
    boxes = torch.cat([boxes, boxes + 5 + torch.rand(200, 2, generator=g) * 10], 1)
    scores = torch.rand(200, generator=g)
    cls = torch.randint(0, 2, (200,), generator=g)
    low = batched_nms(boxes, scores, cls, 0.45)
    low_then_thr = sorted(i for i in low.tolist() if scores[i] >= 0.5)
    keep = (scores >= 0.5).nonzero().squeeze(1)
    high = sorted(keep[batched_nms(boxes[keep], scores[keep], cls[keep], 0.45)].tolist())
    assert low_then_thr == high


def test_fingerprint_holds_the_postprocessing_and_threshold():
    base = get_protocol("prophesee")
    assert (base.postprocess, base.conf_threshold) == ("rvt", 0.001)
    assert (get_protocol("etram-paper").postprocess, get_protocol("full").postprocess) == ("rvt", "clip_cap")
    fp = fingerprint(base, ["a"], 10, 10, (10, 10))
    assert fp["postprocess"] == {"name": "rvt", "conf_threshold": 0.001, "clip": False, "max_detections": None}
    other = [fingerprint(get_protocol("prophesee", postprocess="clip_cap"), ["a"], 10, 10, (10, 10)),
             fingerprint(get_protocol("prophesee", conf_threshold=0.1), ["a"], 10, 10, (10, 10))]
    assert len({fp["digest"], *(o["digest"] for o in other)}) == 3
    with pytest.raises(ValueError, match="unknown post-processing 'cap'"):
        get_protocol("prophesee", postprocess="cap")
    with pytest.raises(ValueError, match="outside"):
        get_protocol("prophesee", conf_threshold=2.0)
