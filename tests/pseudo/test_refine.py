"""Temporal refinement keeps boxes that persist along tracks and drops one-frame flickers."""

from __future__ import annotations

import numpy as np
import pytest

from evdet.data.labels import DETECTION_DTYPE
from evdet.events.histogram import stacked_histogram
from evdet.events.types import make_events
from evdet.pseudo.refine import RefineConfig, effective_scores, merge_directions
from evdet.pseudo.teacher_predict import reversed_channel_order


def dets(rows) -> np.ndarray:
    """rows of (t, x, y, w, h, class_id, score)."""
    out = np.zeros(len(rows), dtype=DETECTION_DTYPE)
    for i, (t, x, y, w, h, c, s) in enumerate(rows):
        out[i] = (t, x, y, w, h, c, 0, s, 0.9)
    return out


def scene() -> np.ndarray:
    """A car moving 1 px per frame over 10 frames (score 0.8, 0.2 in frame 4) + a pedestrian in frame 5 only."""
    rows = [(50_000 * k, 10 + k, 10, 20, 20, 0, 0.2 if k == 4 else 0.8) for k in range(1, 11)]
    rows.append((250_000, 60, 40, 10, 10, 1, 0.95))
    return dets(rows)


def test_track_refinement_keeps_persistent_and_drops_flicker():
    d = scene()
    eff = effective_scores(d, RefineConfig(mode="track", min_track_len=3, track_score=0.4))
    car, flicker = eff[:10], eff[10]
    assert flicker == 0.0
    mean = (9 * 0.8 + 0.2) / 10
    np.testing.assert_allclose(car, [mean if k == 4 else 0.8 for k in range(1, 11)], rtol=1e-6)
    assert (car >= 0.4).all()                       # the faint frame-4 box is recovered at threshold 0.4


def test_no_refinement_keeps_raw_scores():
    d = scene()
    np.testing.assert_allclose(effective_scores(d, RefineConfig(mode="none")), d["class_confidence"], rtol=1e-7)


def test_short_tracks_are_dropped():
    d = scene()[:2]                                    # the car in two frames only
    assert (effective_scores(d, RefineConfig(mode="track", min_track_len=3, track_score=0.4)) == 0).all()
    assert (effective_scores(d, RefineConfig(mode="track", min_track_len=2, track_score=0.4)) > 0).all()


def test_merge_directions_removes_duplicates_per_step():
    fwd = dets([(1, 0, 0, 10, 10, 0, 0.7), (2, 0, 0, 10, 10, 0, 0.7)])
    bwd = dets([(1, 1, 0, 10, 10, 0, 0.9),            # overlaps the forward box: NMS keeps the 0.9
                (1, 1, 0, 10, 10, 1, 0.5),            # other class: kept
                (3, 50, 50, 5, 5, 0, 0.6)])           # only backward: kept
    out = merge_directions(fwd, bwd)
    assert sorted(zip(out["t"].tolist(), out["class_id"].tolist(), np.round(out["class_confidence"].astype(float), 2).tolist())) \
        == [(1, 0, 0.9), (1, 1, 0.5), (2, 0, 0.7), (3, 0, 0.6)]


def test_bad_refine_settings():
    with pytest.raises(ValueError, match="refine"):
        RefineConfig(mode="both")
    with pytest.raises(ValueError, match="min_track_len"):
        RefineConfig(mode="track", min_track_len=0)


def test_channel_reversal_by_hand():
    assert reversed_channel_order("stacked_histogram_dt=50_nbins=2", 4).tolist() == [3, 2, 1, 0]
    assert reversed_channel_order("stacked_histogram_dt=50_nbins=2", 6) is None


def test_channel_reversal_equals_the_histogram_of_time_reversed_events():
    rng = np.random.default_rng(0)
    n, nbins, h, w = 400, 5, 6, 8
    t = np.sort(rng.choice(np.arange(1, 99_999, 7), n, replace=False)).astype(np.int64)   # no bin edge hit
    t[0], t[-1] = 0, 100_000
    x, y, p = rng.integers(0, w, n), rng.integers(0, h, n), rng.integers(0, 2, n)
    ev = make_events(t, x.astype(np.uint16), y.astype(np.uint16), p.astype(np.uint8))
    rev_order = np.argsort(100_000 - t, kind="stable")
    rev = make_events((100_000 - t)[rev_order], x[rev_order].astype(np.uint16), y[rev_order].astype(np.uint16),
                      (1 - p)[rev_order].astype(np.uint8))
    perm = reversed_channel_order(f"stacked_histogram_dt=50_nbins={nbins}", 2 * nbins)
    np.testing.assert_array_equal(stacked_histogram(ev, h, w, nbins)[perm], stacked_histogram(rev, h, w, nbins))


def test_weak_teacher_tracks_still_link():
    """Scores of 0.15-0.25 (an early teacher): tracks link by IoU, not by IoU x score."""
    d = scene()
    d["class_confidence"] = np.where(d["class_confidence"] > 0.9, 0.25, np.where(d["class_confidence"] > 0.5, 0.15,
                                                                                   0.12))
    eff = effective_scores(d, RefineConfig(mode="track", min_track_len=3, track_score=0.1))
    assert (eff[:10] > 0).all() and eff[10] == 0.0
