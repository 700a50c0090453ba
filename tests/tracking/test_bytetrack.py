"""ByteTrack-style tracker: assignment, Kalman motion, two-stage association, lifetimes, classes."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evdet.tracking import (
    ByteTracker,
    TrackerConfig,
    evaluate_tracking,
    kalman,
    track_and_evaluate,
    track_sequence,
)
from evdet.tracking.assignment import linear_assignment
from tests.tracking.cases import boxes, random_case


def brute_force_objective(cost, max_cost):
    """Least sum of (cost - max_cost) over pairs with cost <= max_cost, trying every partial injection."""
    n, m = cost.shape
    best = 0.0
    for k in range(1, min(n, m) + 1):
        for rows in itertools.combinations(range(n), k):
            for cols in itertools.permutations(range(m), k):
                c = [cost[r, q] for r, q in zip(rows, cols)]
                if all(v <= max_cost for v in c):
                    best = min(best, sum(v - max_cost for v in c))
    return best


@pytest.mark.parametrize("solver", ["lap", "scipy"])
@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 4), m=st.integers(1, 4), seed=st.integers(0, 10_000))
def test_linear_assignment_matches_brute_force(solver, n, m, seed):
    cost = np.random.default_rng(seed).random((n, m))
    matches, un_rows, un_cols = linear_assignment(cost, max_cost=0.6, solver=solver)
    kept = cost[matches[:, 0], matches[:, 1]]
    assert np.all(kept <= 0.6)
    assert (kept - 0.6).sum() == pytest.approx(brute_force_objective(cost, 0.6))
    assert sorted(set(un_rows) | set(matches[:, 0])) == list(range(n))
    assert sorted(set(un_cols) | set(matches[:, 1])) == list(range(m))


def test_kalman_learns_constant_velocity():
    mean, cov = kalman.initiate(np.array([10.0, 20.0, 8.0, 16.0]))
    for step in range(1, 15):
        mean, cov = kalman.predict(mean, cov)
        mean, cov = kalman.update(mean, cov, np.array([10.0 + 3 * step, 20.0 - 1 * step, 8.0, 16.0]))
    pred, _ = kalman.predict(mean, cov, dt_steps=2.0)
    np.testing.assert_allclose(pred[:4], [10.0 + 3 * 16, 20.0 - 16, 8.0, 16.0], atol=0.5)
    np.testing.assert_allclose(pred[4:6], [3.0, -1.0], atol=0.1)


def moving(tid, cls, x0, vx, frames, score=0.9, y=50.0, size=(20.0, 30.0), every_us=50_000):
    return [((f + 1) * every_us, x0 + vx * f, y, *size, cls, tid, score) for f in frames]


def test_crossing_objects_keep_their_ids():
    # two same-class objects cross at frame 10 (fully overlapping there); velocities separate them
    gt = boxes(sorted(moving(1, 0, 0.0, 5.0, range(20)) + moving(2, 0, 100.0, -5.0, range(20))))
    dets = gt.copy()
    dets["track_id"] = 0
    res = evaluate_tracking([gt], [track_sequence(dets)], class_names=["a"])["overall"]
    assert res["IDSW"] == 0 and res["MOTA"] == pytest.approx(1.0) and res["IDF1"] == pytest.approx(1.0)


def test_low_score_detections_keep_the_track_alive():
    rows = moving(1, 0, 0.0, 4.0, range(30))
    rows = [r[:7] + (0.3 if 10 <= i < 20 else 0.9,) for i, r in enumerate(rows)]   # faint for 10 frames
    dets = boxes(rows)
    two_stage = track_sequence(dets, TrackerConfig(max_lost_us=100_000))
    assert np.unique(two_stage["track_id"]).size == 1 and two_stage.size == 30
    high_only = track_sequence(dets, TrackerConfig(low_score=0.5, max_lost_us=100_000))
    assert np.unique(high_only["track_id"]).size == 2        # lost during the faint frames, new id after
    assert high_only.size == 20 - 1                          # faint frames dropped, new track confirmed late


def test_lost_track_is_recovered_within_max_lost_and_dropped_after():
    frames = [*range(5), *range(12, 17)]                  # gap of 7 frames = 350 ms
    dets = boxes(moving(1, 0, 0.0, 2.0, frames))
    kept = track_sequence(dets, TrackerConfig(max_lost_us=400_000))
    assert np.unique(kept["track_id"]).tolist() == [1] and kept.size == 10
    dropped = track_sequence(dets, TrackerConfig(max_lost_us=300_000))
    assert np.unique(dropped["track_id"]).tolist() == [1, 2] and dropped.size == 9


def test_tracks_are_class_aware():
    a = moving(1, 0, 0.0, 2.0, range(6))
    b = moving(2, 1, 0.0, 2.0, range(6, 12))                 # same place, other class, right after
    out = track_sequence(boxes(a + b))
    assert np.unique(out[out["class_id"] == 0]["track_id"]).size == 1
    assert set(out[out["class_id"] == 1]["track_id"]) .isdisjoint(out[out["class_id"] == 0]["track_id"])
    agnostic = track_sequence(boxes(a + b), TrackerConfig(class_aware=False))
    assert np.unique(agnostic["track_id"]).size == 1


def test_new_tracks_are_reported_from_their_second_frame():
    first = moving(1, 0, 0.0, 2.0, range(5))
    late = moving(2, 0, 200.0, 0.0, range(2, 5))
    out = track_sequence(boxes(sorted(first + late)))
    assert (out["track_id"] == 1).sum() == 5                 # born on the first frame: reported at once
    late_out = out[out["x"] == 200.0]
    assert late_out.size == 2 and late_out["t"].min() == 4 * 50_000


def test_step_rejects_time_going_back():
    tracker = ByteTracker()
    tracker.step(100, boxes([(100, 0, 0, 5, 5, 0, 0, 0.9)]))
    with pytest.raises(ValueError, match="increasing time"):
        tracker.step(100, boxes([]))


def test_tracker_on_noisy_ground_truth_scores_high():
    gt, _ = random_case(3, objects=6, frames=40)
    rng = np.random.default_rng(0)
    keep = rng.random(gt.size) > 0.1                          # 10 % missed detections
    dets = gt[keep].copy()
    for f, s in (("x", "w"), ("y", "h")):
        dets[f] += rng.normal(0, 0.03, dets.size) * dets[s]   # 3 % jitter
    dets["class_confidence"] = rng.uniform(0.3, 1.0, dets.size)
    dets["track_id"] = 0
    res = evaluate_tracking([gt], [track_sequence(dets)], class_names=["obj"])["overall"]
    assert res["HOTA"] > 0.6 and res["MOTA"] > 0.6 and res["IDF1"] > 0.7


def test_track_and_evaluate_tracks_evdet_detections():
    # evdet's detections carry an extra class_score field; tracking uses class_confidence (obj x cls)
    from evdet.data.labels import DETECTION_DTYPE

    gt, _ = random_case(5, objects=4)
    dets = np.zeros(gt.size, dtype=DETECTION_DTYPE)
    for f in gt.dtype.names:
        dets[f] = gt[f]
    dets["track_id"], dets["class_confidence"], dets["class_score"] = 0, 0.9, 0.05
    res = track_and_evaluate([gt], [dets[::-1]], class_names=["obj"])       # any order
    assert res["overall"]["MOTA"] > 0.9 and res["overall"]["IDSW"] == 0
    assert res["tracker"]["high_score"] == 0.5
