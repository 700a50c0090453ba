"""Typed views of results.json / status.json: defaults for what a document lacks, frozen."""

import dataclasses

import pytest

from evdet.experiments.records.record import empty_results
from evdet.experiments.records.views import ResultsView, RunView, StatusView


def test_an_empty_document_reads_as_the_schema_defaults():
    v = ResultsView.from_dict({})
    assert (v.id, v.status, v.base, v.step, v.seeds, v.class_names) == ("", "created", None, 0, (), ())
    assert dict(v.runs) == {} and dict(v.protocols) == {} and v.completed_runs == ()
    assert v.schema_version == 1                        # a file without the field is schema 1
    s = StatusView.from_dict({})
    assert (s.state, s.message, s.pid, s.seed, s.step) == ("created", "", None, None, 0)


def test_a_new_records_results_read_back_field_by_field():
    doc = empty_results("r1", base="b", class_names=("car", "pedestrian"))
    v = ResultsView.from_dict(doc)
    assert (v.id, v.base, v.class_names, v.schema_version, v.status) == ("r1", "b", ("car", "pedestrian"), 2,
                                                                          "created")


def test_runs_and_completed_seeds():
    doc = {"seeds": [0, 1, 2], "runs": {"0": {"seed": 0, "status": "completed", "step": 40,
                                              "protocols": {"full": {"metrics": {"AP": 0.3}}}},
                                        "1": {"seed": 1, "status": None}, "2": {"seed": "2", "status": "failed"}}}
    v = ResultsView.from_dict(doc)
    assert v.seeds == (0, 1, 2) and v.completed_runs == ("0",)
    assert v.runs["0"] == RunView(seed=0, status="completed", step=40, protocols=v.runs["0"].protocols)
    assert v.runs["0"].protocols["full"]["metrics"]["AP"] == 0.3
    assert (v.runs["1"].status, v.runs["2"].seed, v.runs["2"].status) == ("created", 2, "failed")


def test_views_are_frozen():
    v = ResultsView.from_dict({"runs": {}})
    with pytest.raises(dataclasses.FrozenInstanceError):
        v.status = "completed"
    with pytest.raises(TypeError):
        v.runs["0"] = RunView()                         # read-only mapping


def test_status_fields_of_wrong_types_read_as_absent():
    s = StatusView.from_dict({"state": "running", "pid": "12", "seed": 3, "step": "7", "heartbeat_at": 5})
    assert (s.state, s.pid, s.seed, s.step, s.heartbeat_at) == ("running", None, 3, 7, 5.0)
