"""Interactions of combination variants: the pooled contrast against a hand computation."""

import math

import pytest

from evdet.experiments.statistics.intervals import IntervalError, pooled_contrast
from evdet.studies.interactions import interaction_rows, interactions_markdown
from evdet.studies.study_plan import make_plan

BASE, A, B, COMBO = [0.10, 0.12], [0.15, 0.17], [0.13, 0.15], [0.16, 0.18]


def test_pooled_contrast_by_hand():
    # I = 0.17 - 0.16 - 0.14 + 0.11 = -0.02; every record's variance 0.0002 -> pooled 0.0002 on 4 dof;
    # SE = sqrt(0.0002 * (1/2 + 1/2 + 1/2 + 1^2/2)) = 0.02; t(0.975, 4) = 2.7764451
    est, low, high, dof = pooled_contrast([COMBO, A, B, BASE], [1, -1, -1, 1], [BASE, A, B, COMBO])
    assert dof == 4 and est == pytest.approx(-0.02)
    assert (high - low) / 2 == pytest.approx(2.7764451 * 0.02, rel=1e-6)
    assert (low + high) / 2 == pytest.approx(-0.02)
    with pytest.raises(IntervalError):
        pooled_contrast([[0.1], [0.2]], [1, -1], [[0.1], [0.2]])      # no record with two seeds


def _row(vid, seeds):
    return {"id": vid, "protocols": {"full": {"small_AP_seeds": seeds}, "prophesee": {"small_AP_seeds": []}}}


def test_interaction_rows_of_the_roadmap_combination():
    plan = make_plan("cpu", study="roadmap", variants=["4scale", "size_aware", "4scale_size_aware"])
    rows = [_row("baseline", BASE), _row("4scale", A), _row("size_aware", B), _row("4scale_size_aware", COMBO)]
    (entry,) = interaction_rows(plan, rows, ("full", "prophesee"))
    full = entry["protocols"]["full"]
    assert entry["combines"] == ["4scale", "size_aware"] and full["estimate"] == pytest.approx(-0.02)
    assert full["adds_up"] and math.isclose(full["high"] - full["low"], 2 * 2.7764451 * 0.02, rel_tol=1e-6)
    assert "error" in entry["protocols"]["prophesee"]                   # no seeds there: said, not guessed
    text = "\n".join(interactions_markdown([entry], ("full", "prophesee")))
    assert "-0.0200 [" in text and "adds up" in text
