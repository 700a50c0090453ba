"""Hand-computed cases for evaluate()."""

import json
import math

import numpy as np
import pytest

from evdet.data.classes import ETRAM, ClassMap
from evdet.evaluation import evaluate

from eval_boxes import boxes

HW = dict(height=360, width=640)
CARPED = ["car", "pedestrian"]
T = 1_000_000  # after the 0.5 s skip


def test_perfect_detections_give_ap_1():
    # frames 200 ms apart: with the reference's inclusive 50 ms tolerance, detections of frames only
    # 50 ms apart would also join the neighbouring image (see test_neighbour_frames_share_detections)
    gt = boxes((T, 10, 10, 50, 40, 0), (T, 200, 100, 120, 90, 1), (T + 200_000, 300, 50, 40, 60, 0))
    dt = gt.copy()
    dt["class_confidence"] = [0.9, 0.8, 0.7]
    res = evaluate([gt], [dt], class_names=CARPED, **HW)
    for key in ("AP", "AP50", "AP75"):
        assert res.metrics[key] == pytest.approx(1.0)
    assert res.per_class["car"]["support"] == 2 and res.per_class["pedestrian"]["support"] == 1
    assert res.per_class["car"]["precision"] == 1.0 and res.per_class["car"]["recall"] == 1.0


def test_iou_0_6_counts_at_50_not_at_75():
    gt = boxes((T, 0, 0, 100, 100, 0))
    dt = boxes((T, 0, 0, 100, 60, 0, 0.9))           # IoU = 6000 / 10000 = 0.6
    res = evaluate([gt], [dt], class_names=CARPED, **HW)
    assert res.metrics["AP50"] == pytest.approx(1.0)
    assert res.metrics["AP75"] == pytest.approx(0.0)
    # IoU 0.6 passes thresholds 0.50, 0.55, 0.60 of the ten: AP = 3 / 10
    assert res.metrics["AP"] == pytest.approx(0.3)


def test_false_positive_ranked_above_true_positive_101_point_interpolation():
    gt = boxes((T, 0, 0, 80, 80, 0), (T, 300, 100, 80, 80, 0))
    dt = boxes((T, 0, 0, 80, 80, 0, 0.9), (T, 500, 200, 60, 60, 0, 0.8), (T, 300, 100, 80, 80, 0, 0.7))
    # PR points: (R .5, P 1), (R .5, P .5), (R 1, P 2/3); interpolated precision is 1 for the 51
    # recall points 0.00..0.50 and 2/3 for the 50 points 0.51..1.00.
    expected = (51 * 1.0 + 50 * 2 / 3) / 101
    res = evaluate([gt], [dt], class_names=CARPED, **HW)
    assert res.metrics["AP"] == pytest.approx(expected)
    assert res.metrics["AP50"] == pytest.approx(expected)


def test_fp_with_highest_score_halves_precision():
    gt = boxes((T, 0, 0, 80, 80, 0))
    dt = boxes((T, 400, 200, 80, 80, 0, 0.9), (T, 0, 0, 80, 80, 0, 0.8))
    assert evaluate([gt], [dt], class_names=CARPED, **HW).metrics["AP"] == pytest.approx(0.5)


def test_prophesee_filter_ignores_small_and_early_boxes_in_gt_and_detections():
    gt = boxes((T, 0, 0, 80, 80, 0),
               (T, 300, 100, 8, 40, 0),              # side 8 < 10: ignored
               (400_000, 0, 0, 80, 80, 0),           # first 0.5 s: ignored
               (500_000, 0, 0, 80, 80, 0))           # t must be > 0.5 s: ignored
    dt = boxes((T, 0, 0, 80, 80, 0, 0.5),
               (T, 500, 200, 20, 20, 0, 0.9))        # diag 28 < 30: ignored although the top score
    res = evaluate([gt], [dt], class_names=CARPED, **HW)
    assert res.metrics["AP"] == pytest.approx(1.0)
    assert res.per_class["car"]["support"] == 1
    full = evaluate([gt], [dt], class_names=CARPED, protocol="full", **HW)
    assert full.per_class["car"]["support"] == 2       # the small GT counts, the early ones do not
    assert full.metrics["AP"] < 0.5


def test_filter_thresholds_follow_the_resolution():
    gt = boxes((T, 0, 0, 25, 25, 0))                   # diag 35: kept at 640x360, dropped at 1280x720
    dt = boxes((T, 0, 0, 25, 25, 0, 0.9))
    assert evaluate([gt], [dt], class_names=CARPED, height=360, width=640).counts["gt"] == 1
    r = evaluate([gt], [dt], class_names=CARPED, height=720, width=1280)
    assert r.counts["gt"] == 0 and r.metrics["AP"] is None


def test_time_tolerance():
    gt = boxes((T, 0, 0, 80, 80, 0))
    inside = boxes((T + 50_000, 0, 0, 80, 80, 0, 0.9))
    outside = boxes((T + 50_001, 0, 0, 80, 80, 0, 0.9))
    assert evaluate([gt], [inside], class_names=CARPED, **HW).metrics["AP"] == pytest.approx(1.0)
    assert evaluate([gt], [outside], class_names=CARPED, **HW).metrics["AP"] == pytest.approx(0.0)


def test_neighbour_frames_share_detections():
    # reference semantics: labels 50 ms apart, tolerance 50 ms inclusive -> each detection also
    # joins the neighbouring frame, where it is a false positive
    gt = boxes((T, 0, 0, 80, 80, 0), (T + 50_000, 300, 100, 80, 80, 0))
    dt = boxes((T, 0, 0, 80, 80, 0, 0.9), (T + 50_000, 300, 100, 80, 80, 0, 0.8))
    res = evaluate([gt], [dt], class_names=CARPED, **HW)
    assert res.counts == {"images": 2, "gt": 2, "detections": 4}
    # COCO ranks by score, ties in image order: TP(.9, img 1), FP(.9, img 2), FP(.8, img 1), TP(.8, img 2)
    # PR: (.5, 1), (.5, .5), (.5, 1/3), (1, .5) -> 51 recall points at precision 1, 50 at 1/2
    assert res.metrics["AP50"] == pytest.approx((51 + 50 * 0.5) / 101)


def test_class_agnostic_overall_vs_class_aware():
    gt = boxes((T, 0, 0, 80, 80, 0), (T, 200, 100, 60, 90, 1))
    dt = boxes((T, 0, 0, 80, 80, 1, 0.9), (T, 200, 100, 60, 90, 1, 0.8))   # the car is called a pedestrian
    aware = evaluate([gt], [dt], class_names=CARPED, **HW)
    agnostic = evaluate([gt], [dt], class_names=CARPED, protocol="etram-paper", **HW)
    # class-aware: car AP 0, pedestrian: FP (0.9) above TP (0.8) -> AP 0.5; mean 0.25
    assert aware.metrics["AP"] == pytest.approx(0.25)
    assert agnostic.metrics["AP"] == pytest.approx(1.0)
    assert agnostic.per_class["car"]["AP"] == pytest.approx(0.0)   # per class stays class-aware
    assert agnostic.fingerprint["class_agnostic"] and not aware.fingerprint["class_agnostic"]


def test_group_ap_mean_of_classes_and_merged():
    names = list(ETRAM.names)
    ped, car, bicycle = names.index("pedestrian"), names.index("car"), names.index("bicycle")
    gt = boxes((T, 0, 0, 40, 90, ped), (T, 200, 0, 50, 60, bicycle), (T, 400, 100, 120, 80, car))
    dt = boxes((T, 0, 0, 40, 90, ped, 0.9), (T, 400, 100, 120, 80, car, 0.8))   # the bicycle is missed
    res = evaluate([gt], [dt], class_names=names, **HW)
    g = res.groups["small_road_users"]
    assert g["support"] == 2 and g["classes"] == list(ETRAM.groups["small_road_users"])
    assert g["AP"] == pytest.approx(0.5)                  # mean(pedestrian 1, bicycle 0); others lack support
    assert res.groups["VH"]["AP"] == pytest.approx(1.0)
    assert res.per_class["motorbike"]["AP"] is None and res.per_class["motorbike"]["support"] == 0
    merged = evaluate([gt], [dt], class_names=names, protocol="etram-paper", **HW)
    # pooled: 2 GT, one found at precision 1 -> recall 0.5: 51 of 101 recall points at precision 1
    assert merged.groups["small_road_users"]["AP"] == pytest.approx(51 / 101)
    assert merged.groups["MM"]["AP"] == pytest.approx(0.0)
    assert set(merged.groups) == {"PED", "VH", "MM", "small_road_users"}


def test_explicit_and_named_groups():
    cmap = ClassMap(("car", "pedestrian", "bicycle"), {"vru": ("pedestrian", "bicycle")})
    gt = boxes((T, 0, 0, 80, 80, 1))
    dt = boxes((T, 0, 0, 80, 80, 1, 0.9))
    assert set(evaluate([gt], [dt], class_names=cmap, **HW).groups) == {"vru"}
    res = evaluate([gt], [dt], class_names=cmap, groups={"cars": ["car"]}, **HW)
    assert res.groups["cars"]["AP"] is None and res.groups["cars"]["support"] == 0
    with pytest.raises(ValueError, match="unknown group"):
        evaluate([gt], [dt], class_names=cmap, groups=["nope"], **HW)


def test_per_class_precision_recall_at_confidence():
    gt = boxes((T, 0, 0, 80, 80, 0), (T, 300, 100, 80, 80, 0))
    dt = boxes((T, 0, 0, 80, 80, 0, 0.9), (T, 500, 250, 60, 60, 0, 0.6), (T, 300, 100, 80, 80, 0, 0.3))
    r = evaluate([gt], [dt], class_names=CARPED, pr_confidence=0.5, **HW).per_class["car"]
    assert (r["precision"], r["recall"], r["confidence"]) == (0.5, 0.5, 0.5)
    r = evaluate([gt], [dt], class_names=CARPED, pr_confidence=0.2, **HW).per_class["car"]
    assert r["precision"] == pytest.approx(2 / 3) and r["recall"] == 1.0
    r = evaluate([gt], [dt], class_names=CARPED, pr_confidence=0.95, **HW).per_class["car"]
    assert r["precision"] is None and r["recall"] == 0.0


def test_full_protocol_reports_tiny_bucket_at_source_resolution():
    # 10x10 at 640x360 is 20x20 = 400 px^2 at the 1280x720 source: "small" there, not tiny
    gt = boxes((T, 0, 0, 10, 10, 0), (T, 100, 100, 6, 6, 0))       # 6x6 -> 12x12 at source: tiny
    dt = boxes((T, 0, 0, 10, 10, 0, 0.9))
    res = evaluate([gt], [dt], class_names=CARPED, protocol="full", source_hw=(720, 1280), **HW)
    assert res.metrics["AP_S"] == pytest.approx(1.0)
    assert res.metrics["AP_tiny"] == pytest.approx(0.0)
    assert res.metrics["AP_L"] is None
    assert res.fingerprint["source_resolution"] == [720, 1280]


def test_to_dict_schema_and_json_nulls():
    gt = boxes((T, 0, 0, 80, 80, 0))
    dt = boxes((T, 0, 0, 80, 80, 0, 0.9))
    d = json.loads(json.dumps(evaluate([gt], [dt], class_names=CARPED, **HW).to_dict()))
    assert {"protocol", "fingerprint", "metrics", "per_class", "groups", "confusion"} <= set(d)
    assert set(d["metrics"]) == {"AP", "AP50", "AP75", "AP_S", "AP_M", "AP_L"}
    assert d["per_class"]["pedestrian"]["AP"] is None
    assert set(d["per_class"]["car"]) >= {"AP", "AP50", "precision", "recall", "support", "confidence"}
    assert d["confusion"]["labels"] == ["car", "pedestrian", "background"]
    fp = d["fingerprint"]
    assert {"name", "class_names", "class_agnostic", "filter", "resolution", "source_resolution",
            "time_tolerance_us", "iou_thresholds", "area_buckets", "digest"} <= set(fp)


def test_unsorted_and_legacy_inputs_are_accepted_bad_ones_named():
    gt = boxes((T, 0, 0, 80, 80, 0), (T + 200_000, 0, 0, 80, 80, 0))[::-1]
    dt = boxes((T, 0, 0, 80, 80, 0, 0.9), (T + 200_000, 0, 0, 80, 80, 0, 0.9))
    legacy = np.zeros(2, dtype=[("ts", "<u8"), ("x", "<f4"), ("y", "<f4"), ("w", "<f4"), ("h", "<f4"),
                                ("class_id", "u1"), ("confidence", "<f4")])
    for f_new, f_old in (("t", "ts"), ("x", "x"), ("y", "y"), ("w", "w"), ("h", "h"),
                         ("class_id", "class_id"), ("class_confidence", "confidence")):
        legacy[f_old] = dt[f_new]
    assert evaluate([gt], [dt], class_names=CARPED, **HW).metrics["AP"] == pytest.approx(1.0)
    assert evaluate([gt], [legacy], class_names=CARPED, **HW).metrics["AP"] == pytest.approx(1.0)
    assert evaluate([gt], [legacy[::-1]], class_names=CARPED, **HW).metrics["AP"] == pytest.approx(1.0)
    negative = dt.copy()
    negative["w"][0] = -1
    with pytest.raises(ValueError, match=r"dt_list\[0\].*'w' is negative"):
        evaluate([gt], [negative], class_names=CARPED, **HW)
    bad = dt.copy()
    bad["class_id"][1] = 7
    with pytest.raises(ValueError, match=r"dt_list\[0\].*class_id"):
        evaluate([gt], [bad], class_names=CARPED, **HW)
    with pytest.raises(ValueError, match="sequences"):
        evaluate([gt], [], class_names=CARPED, **HW)


def test_no_detections_gives_zero_not_error():
    gt = boxes((T, 0, 0, 80, 80, 0))
    res = evaluate([gt], [boxes()], class_names=CARPED, **HW)
    assert res.metrics["AP"] == 0.0 and res.per_class["car"]["recall"] == 0.0
    assert not math.isnan(res.metrics["AP50"])
