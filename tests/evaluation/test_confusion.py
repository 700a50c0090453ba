"""Confusion matrix on a hand-made scene."""

import numpy as np

from evdet.evaluation import evaluate
from evdet.evaluation.confusion import normalize_rows

from eval_boxes import boxes

T = 1_000_000
NAMES = ["pedestrian", "car", "truck"]


def test_hand_made_scene():
    ped, car, truck = 0, 1, 2
    gt = boxes((T, 0, 0, 40, 90, ped),            # missed
               (T, 200, 100, 120, 80, car),       # predicted as truck
               (T, 400, 50, 150, 100, truck))     # found
    dt = boxes((T, 205, 100, 120, 80, truck, 0.9),
               (T, 400, 50, 150, 100, truck, 0.8),
               (T, 100, 250, 60, 60, car, 0.7),   # false positive
               (T, 0, 0, 40, 90, ped, 0.3))       # below the stated confidence: not counted
    res = evaluate([gt], [dt], class_names=NAMES, height=360, width=640, pr_confidence=0.5)
    expected = np.zeros((4, 4), dtype=int)
    expected[ped, 3] = 1          # missed pedestrian -> background column
    expected[car, truck] = 1      # car predicted as truck
    expected[truck, truck] = 1
    expected[3, car] = 1          # false positive car
    np.testing.assert_array_equal(res.confusion_matrix, expected)
    assert res.confusion["labels"] == NAMES + ["background"]
    assert res.confusion["iou"] == 0.5 and res.confusion["confidence"] == 0.5
    norm = np.array(res.to_dict()["confusion"]["normalized"])
    np.testing.assert_allclose(norm[car], [0, 0, 1, 0])
    # at confidence 0.2 the pedestrian is found
    low = evaluate([gt], [dt], class_names=NAMES, height=360, width=640, pr_confidence=0.2)
    assert low.confusion_matrix[ped, ped] == 1 and low.confusion_matrix[ped, 3] == 0


def test_row_sums_equal_support_and_column_sums_equal_detections():
    rng = np.random.default_rng(5)
    from eval_boxes import random_scene

    gts, dts = random_scene(rng, n_seq=2, n_frames=10, n_classes=3)
    res = evaluate(gts, dts, class_names=NAMES, height=360, width=640, pr_confidence=0.4)
    m = res.confusion_matrix
    support = [res.per_class[n]["support"] for n in NAMES]
    np.testing.assert_array_equal(m[:3].sum(axis=1), support)
    n_det = [res.per_class[n]["tp"] + res.per_class[n]["fp"] for n in NAMES]
    np.testing.assert_array_equal(m.sum(axis=0)[:3], n_det)
    assert m[3, 3] == 0


def test_normalize_rows_handles_empty_rows():
    np.testing.assert_allclose(normalize_rows(np.array([[1, 3], [0, 0]])), [[0.25, 0.75], [0, 0]])
