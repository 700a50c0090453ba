"""Scoring conventions: RVT ranks by the class probability alone, YOLOX by obj x cls."""

import numpy as np
import pytest

from evdet.data.labels import DETECTION_DTYPE, boxes_from_detections
from evdet.evaluation import PROTOCOLS, evaluate

from eval_boxes import boxes

T = 1_000_000
HW = {"height": 360, "width": 640}


def _scene():
    """One GT car; a hit with obj x cls 0.3 / cls 0.5 and a miss with obj x cls 0.6 / cls 0.4."""
    gt = boxes((T, 100, 100, 50, 40, 0))
    dt = boxes_from_detections(np.array([[100, 100, 150, 140], [400, 200, 450, 240]]), np.array([0.3, 0.6]),
                               np.array([0, 0]), T, class_scores=np.array([0.5, 0.4]))
    return gt, dt


def test_detection_array_keeps_both_scores():
    _, dt = _scene()
    assert dt.dtype == DETECTION_DTYPE
    np.testing.assert_allclose(dt["class_confidence"], [0.3, 0.6])
    np.testing.assert_allclose(dt["class_score"], [0.5, 0.4])


@pytest.mark.parametrize("protocol", ["prophesee", "etram-paper", "full"])
def test_class_scoring_is_every_protocols_default(protocol):
    assert PROTOCOLS[protocol].scoring == "class"


def test_ranking_differs_as_computed_by_hand():
    gt, dt = _scene()
    by_class = evaluate([gt], [dt], class_names=["car", "pedestrian"], protocol="prophesee", **HW)
    by_obj = evaluate([gt], [dt], class_names=["car", "pedestrian"], protocol="prophesee", scoring="obj_x_cls", **HW)
    # class: the hit ranks first -> precision 1 at every recall -> AP50 = 1
    # obj x cls: the miss ranks first -> precision 1/2 at recall 1 (101-point interpolation) -> AP50 = 0.5
    assert by_class.metrics["AP50"] == pytest.approx(1.0)
    assert by_obj.metrics["AP50"] == pytest.approx(0.5)
    assert by_class.fingerprint["scoring"] == "class" and by_obj.fingerprint["scoring"] == "obj_x_cls"
    assert by_class.fingerprint["digest"] != by_obj.fingerprint["digest"]
    # precision / recall at a stated confidence use the same score: at 0.45 only the hit (class) /
    # only the miss (obj x cls) passes
    both = dict(pr_confidence=0.45, class_names=["car", "pedestrian"], protocol="prophesee", **HW)
    assert evaluate([gt], [dt], **both).per_class["car"]["precision"] == pytest.approx(1.0)
    assert evaluate([gt], [dt], scoring="obj_x_cls", **both).per_class["car"]["precision"] == pytest.approx(0.0)


def test_plain_box_arrays_rank_by_class_confidence_under_both():
    gt, dt = _scene()
    plain = boxes((T, 100, 100, 50, 40, 0, 0.3), (T, 400, 200, 50, 40, 0, 0.6))
    for scoring in ("class", "obj_x_cls"):
        res = evaluate([gt], [plain], class_names=["car", "pedestrian"], scoring=scoring, **HW)
        assert res.metrics["AP50"] == pytest.approx(0.5)


def test_unknown_scoring_names_the_known_ones():
    gt, dt = _scene()
    with pytest.raises(ValueError, match=r"unknown scoring 'best'; known: \['class', 'obj_x_cls'\]"):
        evaluate([gt], [dt], class_names=["car"], scoring="best", **HW)
