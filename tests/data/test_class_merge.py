"""eTraM's 3-class training: the 8 classes merged into PED / VH / MM at load time (hand-computed)."""

import numpy as np
import pytest

from evdet.data.classes import ETRAM, ETRAM3, GEN1, class_merge_ids, merge_box_classes
from evdet.data.labels import BBOX_DTYPE


def test_merge_ids_by_hand():
    # pedestrian, car, bicycle, bus, motorbike, truck, tram, wheelchair -> PED 0, VH 1, MM 2
    assert class_merge_ids("etram3", ETRAM) == (0, 1, 2, 1, 2, 1, 1, 2)
    assert class_merge_ids("etram3", ETRAM3) is None          # already merged
    assert class_merge_ids("etram", ETRAM) is None
    with pytest.raises(ValueError, match="merges"):
        class_merge_ids("etram3", GEN1)
    # the runner hands over the resolved map, not the setting: the merged map is known by its names
    assert class_merge_ids(ETRAM3, ETRAM) == (0, 1, 2, 1, 2, 1, 1, 2)
    assert class_merge_ids(ETRAM, ETRAM) is None


def test_boxes_merged_without_touching_the_input():
    boxes = np.zeros(8, dtype=BBOX_DTYPE)
    boxes["class_id"] = np.arange(8)
    out = merge_box_classes(boxes, class_merge_ids("etram3", ETRAM))
    assert out["class_id"].tolist() == [0, 1, 2, 1, 2, 1, 1, 2]
    assert boxes["class_id"].tolist() == list(range(8))


def test_evaluation_merges_the_ground_truth():
    """A bus (id 3) found as VH (id 1 of the merged map) is a hit once the GT is merged."""
    from evdet.evaluation.dataset import EvalSetup

    gt = np.zeros(1, dtype=BBOX_DTYPE)
    gt[0] = (1_000_000, 10, 10, 40, 40, 3, 0, 1.0)
    dt = gt.copy()
    dt["class_id"] = 1
    setup = EvalSetup(ETRAM3, 100, 100, (100, 100), None, protocols=("prophesee",),
                      gt_class_ids=class_merge_ids("etram3", ETRAM))
    assert setup.evaluate([gt], [dt])["prophesee"].metrics["AP"] == pytest.approx(1.0)
