"""Typed rows of a small-object summary: hand-written rows read field by field, absent fields as defaults."""

import pytest

from evdet.studies.summary_rows import RowProtocol, SummaryRow, summary_rows

DELTA = {"mean": -0.02, "low": -0.04, "high": -0.001, "method": "welch-t over seeds", "n_a": 2, "n_b": 2,
         "confidence": 0.95, "detail": "", "dof": 2.0, "covers_training_noise": True}


def test_a_full_row_reads_its_intervals_as_differences():
    doc = {"id": "v", "change": "size-aware loss", "state": "completed", "seeds_planned": [0, 1],
           "seeds_done": [0, 1], "wall_s_per_run": [10.0, 12.0], "step": 40, "verdict": "inconclusive",
           "protocols": {"full": {"AP": 0.3, "AP50": 0.5, "small_AP": 0.1, "small_AP_seeds": [0.09, 0.11],
                                  "small_AP_interval": {**DELTA, "mean": 0.1, "low": 0.05, "high": 0.15},
                                  "delta_small": DELTA, "delta_small_holm": {"p": 0.04, "p_holm": 0.08,
                                                                             "survives": False}}}}
    r = SummaryRow.from_dict(doc)
    assert (r.id, r.state, r.seeds_done, r.wall_s_per_run, r.step, r.verdict) == (
        "v", "completed", (0, 1), (10.0, 12.0), 40, "inconclusive")
    full = r.protocol("full")
    assert (full.AP, full.AP50, full.small_AP, full.small_AP_seeds) == (0.3, 0.5, 0.1, (0.09, 0.11))
    assert full.delta_small.to_dict() == DELTA                        # the block round-trips exactly
    assert (full.small_AP_interval.low, full.small_AP_interval.high) == (0.05, 0.15)
    assert dict(full.delta_small_holm) == {"p": 0.04, "p_holm": 0.08, "survives": False}


def test_a_row_never_evaluated_reads_the_defaults():
    r = SummaryRow.from_dict({"id": "b", "protocols": {"full": {"AP": None, "small_AP_seeds": []}}})
    assert (r.change, r.state, r.seeds_planned, r.seeds_done, r.step, r.verdict) == (
        "", "not created", (), (), 0, "not evaluated")
    assert r.protocol("full") == RowProtocol() and r.protocol("prophesee") == RowProtocol()
    assert RowProtocol().delta_small is None and RowProtocol().delta_small_holm is None


def test_rows_keep_table_order_and_need_an_id():
    assert [r.id for r in summary_rows({"rows": [{"id": "b"}, {"id": "a"}]})] == ["b", "a"]
    with pytest.raises(KeyError):
        SummaryRow.from_dict({"protocols": {}})
