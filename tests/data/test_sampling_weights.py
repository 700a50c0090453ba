"""Sampling weights against hand-computed frames: small-object boost, class balance, reports, weighted draws."""

import numpy as np
import pytest

from evdet.data.classes import ClassMap
from evdet.data.config import SampleWeightConfig
from evdet.data.samplers import stream_plan
from evdet.data.sampling_weights import (
    frame_box_counts,
    frame_weights,
    sampling_report,
    sequence_weights,
    small_class_ids,
    train_sampling,
    weighted_order,
)

BOX = [("w", "<f4"), ("h", "<f4"), ("class_id", "<u4")]
CMAP = ClassMap(("car", "pedestrian", "bicycle"), {"small_road_users": ("pedestrian", "bicycle")})


def frames():
    """Frame 0: a car 10x10 (small area but not a road user); frame 1: a pedestrian 10x10 and a car 50x50;
    frame 2: a bicycle 40x40 (not small); frame 3: empty."""
    return [np.array([(10, 10, 0)], BOX), np.array([(10, 10, 1), (50, 50, 0)], BOX),
            np.array([(40, 40, 2)], BOX), np.zeros(0, BOX)]


def test_small_object_weights_by_hand():
    per_class, small = frame_box_counts(frames(), 3, small_class_ids(CMAP, "small_road_users"), 1024.0)
    assert per_class.tolist() == [[1, 0, 0], [1, 1, 0], [0, 0, 1], [0, 0, 0]]
    assert small.tolist() == [0, 1, 0, 0]
    w = frame_weights(SampleWeightConfig(mode="small_objects", small_boost=4.0), per_class, small)
    assert w.tolist() == [1.0, 5.0, 1.0, 1.0]
    # report: 4 boxes, 1 small: uniform share 1/4; weighted (5 * 1) / (1 * 1 + 5 * 2 + 1 * 1) = 5/12
    r = sampling_report(SampleWeightConfig(mode="small_objects"), w, per_class, small, "frames")
    assert r["small_box_share_uniform"] == pytest.approx(1 / 4)
    assert r["small_box_share_weighted"] == pytest.approx(5 / 12)
    assert r["weight_max"] == 5.0 and r["share_weighted_units_with_small"] == pytest.approx(5 / 8)


def test_class_balanced_frame_weights_by_hand():
    per_class, small = frame_box_counts(frames(), 3, None, 1024.0)
    # counts car 2, pedestrian 1, bicycle 1 -> inverse raw (1/2, 1, 1), mean 1 -> (0.6, 1.2, 1.2)
    w = frame_weights(SampleWeightConfig(mode="class_inverse"), per_class, small)
    assert w.tolist() == pytest.approx([0.6, 1.2, 1.2, 0.6])   # max class weight per frame; empty -> min
    eff = frame_weights(SampleWeightConfig(mode="class_effective", beta=0.5), per_class, small)
    # (1-0.5)/(1-0.5^n): n=2 -> 2/3, n=1 -> 1; mean 1 -> (0.75, 1.125, 1.125)
    assert eff.tolist() == pytest.approx([0.75, 1.125, 1.125, 0.75])
    assert frame_weights(SampleWeightConfig(), per_class, small) is None


def test_sequence_weights_and_missing_group():
    assert sequence_weights(np.array([1.0, 5.0, 1.0, 3.0]), np.array([0, 0, 1, 1]), 3).tolist() == [3.0, 2.0, 1.0]
    with pytest.raises(ValueError, match="small_group"):
        train_sampling(SampleWeightConfig(mode="small_objects", small_group="vru"), CMAP, frames(),
                       np.zeros(4, np.int64), 1, "frames")
    w, report = train_sampling(SampleWeightConfig(mode="small_objects"), CMAP, frames(), np.array([0, 0, 1, 1]), 2,
                               "sequences")
    assert w.tolist() == [3.0, 1.0] and report["unit"] == "sequences"


def test_weighted_draws_follow_the_weights():
    order = weighted_order(np.array([1.0, 3.0]), (0, 1, 2))
    assert len(order) == 2
    counts = np.bincount(np.concatenate([weighted_order(np.array([1.0, 3.0]), (s,)) for s in range(2000)]),
                         minlength=2)
    assert counts[1] / counts.sum() == pytest.approx(0.75, abs=0.02)
    with pytest.raises(ValueError, match="sample_weighting"):
        weighted_order(np.array([0.0, 0.0]), (0,))


def test_weighted_stream_plan_draws_sequences_with_replacement():
    plan = stream_plan([4, 4, 4], num_slots=1, seq_len=4, shuffle=True, seed=0, weights=[0.0, 0.0, 1.0])
    assert [w.seq_index for w in plan[0]] == [2, 2, 2]
    assert sorted(w.seq_index for w in stream_plan([4, 4, 4], 1, 4, shuffle=True, seed=0)[0]) == [0, 1, 2]
