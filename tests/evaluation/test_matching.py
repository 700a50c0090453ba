"""Time matching against a plain copy of the reference pointer loop."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evdet.evaluation.matching import build_frames, match_times

from eval_boxes import boxes


def reference_match_times(all_ts, gt_t, dt_t, tol):
    """The Prophesee ``_match_times`` loop (two moving pointers per array)."""
    out_gt, out_dt = [], []
    low_gt = high_gt = low_dt = high_dt = 0
    for ts in all_ts:
        while low_gt < len(gt_t) and gt_t[low_gt] < ts:
            low_gt += 1
        high_gt = max(low_gt, high_gt)
        while high_gt < len(gt_t) and gt_t[high_gt] <= ts:
            high_gt += 1
        while low_dt < len(dt_t) and dt_t[low_dt] < ts - tol:
            low_dt += 1
        high_dt = max(low_dt, high_dt)
        while high_dt < len(dt_t) and dt_t[high_dt] <= ts + tol:
            high_dt += 1
        out_gt.append((low_gt, high_gt))
        out_dt.append((low_dt, high_dt))
    return out_gt, out_dt


@settings(max_examples=60, deadline=None)
@given(gt=st.lists(st.integers(0, 400), max_size=20), dt=st.lists(st.integers(0, 400), max_size=30),
       tol=st.integers(0, 60))
def test_match_times_equals_reference_loop(gt, dt, tol):
    gt_t, dt_t = np.sort(np.array(gt, dtype=np.int64)), np.sort(np.array(dt, dtype=np.int64))
    ts, gl, gh, dl, dh = match_times(gt_t, dt_t, tol)
    ref_gt, ref_dt = reference_match_times(np.unique(gt_t), gt_t, dt_t, tol)
    assert list(zip(gl.tolist(), gh.tolist())) == ref_gt
    assert list(zip(dl.tolist(), dh.tolist())) == ref_dt


def test_tolerance_is_inclusive_and_a_detection_may_join_two_images():
    gt = boxes((1_000_000, 0, 0, 10, 10, 0), (1_050_000, 0, 0, 10, 10, 0))
    dt = boxes((949_999, 0, 0, 10, 10, 0, 0.1), (950_000, 0, 0, 10, 10, 0, 0.2),
               (1_025_000, 0, 0, 10, 10, 0, 0.3), (1_100_000, 0, 0, 10, 10, 0, 0.4),
               (1_100_001, 0, 0, 10, 10, 0, 0.5))
    fr = build_frames([gt], [dt], 50_000)
    assert fr.num_images == 2
    np.testing.assert_array_equal(fr.image_t_us, [1_000_000, 1_050_000])
    scores = [sorted(np.round(fr.dt["class_confidence"][fr.dt_image == i].astype(float), 2).tolist()) for i in range(2)]
    assert scores == [[0.2, 0.3], [0.3, 0.4]]


def test_frames_of_several_sequences_are_offset():
    g1 = boxes((100, 0, 0, 5, 5, 0), (200, 0, 0, 5, 5, 1), (200, 1, 1, 5, 5, 1))
    g2 = boxes((100, 0, 0, 5, 5, 1))
    fr = build_frames([g1, g2], [boxes(), boxes((100, 0, 0, 5, 5, 1, 0.9))], 0)
    assert fr.num_images == 3
    np.testing.assert_array_equal(fr.gt_image, [0, 1, 1, 2])
    np.testing.assert_array_equal(fr.image_seq, [0, 0, 1])
    np.testing.assert_array_equal(fr.dt_image, [2])


def test_frames_closer_than_the_tolerance_are_warned_about():
    from evdet.data.labels import empty_boxes
    from evdet.evaluation.matching import build_frames

    gt = empty_boxes(3)
    gt["t"] = [1_000_000, 1_033_333, 1_066_667]          # 30 Hz labels
    with pytest.warns(UserWarning, match="33333 us apart"):
        build_frames([gt], [gt], 50_000)
