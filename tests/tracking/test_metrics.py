"""Tracking metrics against independent oracles: py-motmetrics (MOTA, MOTP, IDF1) and TrackEval (HOTA)."""

from __future__ import annotations

import contextlib
import io

import motmetrics as mm
import numpy as np
import pytest
from trackeval.metrics import HOTA

from evdet.tracking import evaluate_tracking, track_sequence
from tests.tracking.cases import boxes, frames_by_time, random_case


def motmetrics_summary(cases, class_id=None):
    """motmetrics' overall MOTA, MOTP (distance), IDF1, switches, FP, FN over several sequences."""
    accs = []
    for gt, tr in cases:
        acc = mm.MOTAccumulator(auto_id=True)
        for g, h, iou in frames_by_time(gt, tr, class_id):
            dist = 1.0 - iou
            acc.update(list(g), list(h), np.where(dist > 0.5, np.nan, dist))
        accs.append(acc)
    mh = mm.metrics.create()
    df = mh.compute_many(accs, metrics=["mota", "motp", "idf1", "num_switches", "num_false_positives",
                                        "num_misses"], generate_overall=True)
    return df.loc["OVERALL"]


def trackeval_data(gt, tr, class_id=None):
    """TrackEval's per-sequence data dict (ids made contiguous from 0)."""
    frames = frames_by_time(gt, tr, class_id)
    g_all = sorted({int(i) for g, _, _ in frames for i in g})
    t_all = sorted({int(i) for _, h, _ in frames for i in h})
    gmap, tmap = {v: i for i, v in enumerate(g_all)}, {v: i for i, v in enumerate(t_all)}
    return {"num_timesteps": len(frames), "num_gt_ids": len(g_all), "num_tracker_ids": len(t_all),
            "num_gt_dets": sum(len(g) for g, _, _ in frames), "num_tracker_dets": sum(len(h) for _, h, _ in frames),
            "gt_ids": [np.array([gmap[int(i)] for i in g], dtype=int) for g, _, _ in frames],
            "tracker_ids": [np.array([tmap[int(i)] for i in h], dtype=int) for _, h, _ in frames],
            "similarity_scores": [iou for _, _, iou in frames]}


def trackeval_hota(cases, classes):
    metric = HOTA()
    with contextlib.redirect_stdout(io.StringIO()):
        per_class = {}
        for c in range(classes):
            per_seq = {str(k): metric.eval_sequence(trackeval_data(gt, tr, c)) for k, (gt, tr) in enumerate(cases)}
            per_class[c] = metric.combine_sequences(per_seq)
        res = metric.combine_classes_det_averaged(per_class) if classes > 1 else per_class[0]
    return {k: float(np.mean(res[k])) for k in ("HOTA", "DetA", "AssA", "LocA", "DetRe", "AssPr")}


@pytest.mark.parametrize("seed", range(6))
def test_clear_and_identity_match_motmetrics(seed):
    cases = [random_case(seed * 10 + k, objects=5 + k) for k in range(2)]
    got = evaluate_tracking([g for g, _ in cases], [t for _, t in cases], class_names=["obj"])["overall"]
    ref = motmetrics_summary(cases)
    assert got["MOTA"] == pytest.approx(ref["mota"], abs=1e-9)
    assert got["MOTP"] == pytest.approx(1.0 - ref["motp"], abs=1e-9)   # motmetrics reports 1 - IoU
    assert got["IDF1"] == pytest.approx(ref["idf1"], abs=1e-9)
    assert (got["IDSW"], got["FP"], got["FN"]) == (ref["num_switches"], ref["num_false_positives"],
                                                   ref["num_misses"])
    assert got["IDSW"] > 0 and got["FP"] > 0 and got["FN"] > 0        # the case exercises every term


@pytest.mark.parametrize("seed", range(6))
def test_hota_matches_trackeval(seed):
    cases = [random_case(seed * 10 + k, objects=4 + 2 * k) for k in range(2)]
    got = evaluate_tracking([g for g, _ in cases], [t for _, t in cases], class_names=["obj"])["overall"]
    ref = trackeval_hota(cases, 1)
    for key, value in ref.items():
        assert got[key] == pytest.approx(value, abs=1e-9), key


@pytest.mark.parametrize("seed", range(3))
def test_per_class_and_overall_match_oracles(seed):
    cases = [random_case(100 + seed * 10 + k, objects=7, classes=3) for k in range(2)]
    res = evaluate_tracking([g for g, _ in cases], [t for _, t in cases], class_names=["a", "b", "c"])
    ref = trackeval_hota(cases, 3)
    for key, value in ref.items():
        assert res["overall"][key] == pytest.approx(value, abs=1e-9), key
    for c, name in enumerate("abc"):
        mot = motmetrics_summary(cases, class_id=c)
        for key, ref_key in (("MOTA", "mota"), ("IDF1", "idf1")):
            if not np.isfinite(mot[ref_key]):    # MOTA without ground truth: undefined here
                assert res["per_class"][name][key] is None
            else:
                assert res["per_class"][name][key] == pytest.approx(mot[ref_key], abs=1e-9)


def test_hand_case_one_switch():
    # two objects, two frames; in frame 2 the tracker swaps object 2 to a new id 3
    gt = boxes([(1, 0, 0, 10, 10, 0, 1, 1), (1, 50, 0, 10, 10, 0, 2, 1),
                (2, 0, 0, 10, 10, 0, 1, 1), (2, 50, 0, 10, 10, 0, 2, 1)])
    tr = boxes([(1, 0, 0, 10, 10, 0, 1, 1), (1, 50, 0, 10, 10, 0, 2, 1),
                (2, 0, 0, 10, 10, 0, 1, 1), (2, 50, 0, 10, 10, 0, 3, 1)])
    res = evaluate_tracking([gt], [tr], class_names=["obj"], time_tolerance_us=0)["overall"]
    assert res["MOTA"] == pytest.approx(1 - 1 / 4)      # one switch over four GT boxes
    assert res["MOTP"] == pytest.approx(1.0)
    assert res["IDF1"] == pytest.approx(2 * 3 / 8)      # ids 1-1 (2 frames) and 2-2 (1 frame)
    assert res["DetA"] == pytest.approx(1.0)
    # AssA: 3 true positives; pairs (1,1): 2 matches, |gt|=2, |tr|=2 -> 1; (2,2): 1/(2+1-1) = 0.5;
    # (2,3): 1/(2+1-1) = 0.5 -> (2*1 + 1*0.5 + 1*0.5) / 4 TP
    assert res["AssA"] == pytest.approx((2 * 1 + 0.5 + 0.5) / 4)
    assert res["HOTA"] == pytest.approx(np.sqrt(3 / 4))


def test_wrong_class_counts_as_miss_and_false_positive():
    gt = boxes([(1, 0, 0, 10, 10, 0, 1, 1)])
    tr = boxes([(1, 0, 0, 10, 10, 1, 1, 1)])
    res = evaluate_tracking([gt], [tr], class_names=["a", "b"])
    assert res["per_class"]["a"]["FN"] == 1 and res["per_class"]["b"]["FP"] == 1
    assert res["overall"]["MOTA"] == pytest.approx(1 - 2 / 1)


def test_ground_truth_as_detections_scores_one():
    gt, _ = random_case(7, objects=8, classes=3)
    dets = gt.copy()
    dets["track_id"] = 0
    tracks = track_sequence(dets)
    res = evaluate_tracking([gt], [tracks], class_names=["a", "b", "c"])["overall"]
    # ByteTrack reports a track from its second frame, except on the first frame: a few misses
    assert res["MOTA"] > 0.9 and res["IDF1"] > 0.9 and res["HOTA"] > 0.9
    assert res["IDSW"] == 0 and res["FP"] == 0 and res["MOTP"] == pytest.approx(1.0)


def test_tracker_frames_join_nearest_gt_time_within_tolerance():
    gt = boxes([(100_000, 0, 0, 10, 10, 0, 1, 1)])
    near = boxes([(110_000, 0, 0, 10, 10, 0, 4, 1)])
    assert evaluate_tracking([gt], [near], class_names=["a"])["overall"]["TP"] == 1
    assert evaluate_tracking([gt], [near], class_names=["a"], time_tolerance_us=5_000)["overall"]["TP"] == 0
