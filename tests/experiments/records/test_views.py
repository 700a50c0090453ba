"""Typed views of results.json / status.json: defaults for what a document lacks, frozen."""

import dataclasses

import pytest

from evdet.experiments.records.record import empty_results
from evdet.experiments.records.views import ClassEntry, ProtocolView, ResultsView, RunView, StatusView


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
    assert v.runs["0"].protocols["full"].metrics["AP"] == 0.3
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


# A schema-1 document as evdet wrote it before seeds existed (hand-written): one protocol block, no
# seeds / runs / seed_stats / groups / counts; per_class entries without tp / fp / fn.
SCHEMA_1 = {"schema_version": 1, "id": "old", "status": "completed", "base": None, "step": 300,
            "class_names": ["car", "pedestrian"],
            "protocols": {"prophesee": {
                "metrics": {"AP": 0.25, "AP50": 0.5, "AP_S": None},
                "per_class": {"car": {"AP": 0.4, "AP50": 0.7, "precision": 0.6, "recall": 0.5, "support": 12},
                              "pedestrian": {"AP": None, "support": 0}},
                "fingerprint": {"name": "prophesee", "resolution": [360, 640], "digest": "abc"},
                "confusion": {"labels": ["car", "pedestrian", "background"],
                              "matrix": [[9, 0, 3], [0, 0, 0], [1, 0, 0]], "iou": 0.5, "confidence": 0.5}}},
            "curves": {"val/prophesee/AP": {"step": [100, 300], "value": [0.1, None]}},
            "monitors": {"loss_cv": 0.2, "stopped_reason": None}}


def test_a_schema_1_protocol_block_reads_field_by_field_with_the_documented_defaults():
    v = ResultsView.from_dict(SCHEMA_1)
    assert (v.schema_version, v.seeds, dict(v.runs), dict(v.seed_stats)) == (1, (), {}, {})
    assert v.headline_protocol == "prophesee" and list(v.protocols) == ["prophesee"]
    p = v.protocol("prophesee")
    assert dict(p.metrics) == {"AP": 0.25, "AP50": 0.5, "AP_S": None}
    car = p.per_class["car"]
    assert (car.AP, car.AP50, car.precision, car.recall, car.support) == (0.4, 0.7, 0.6, 0.5, 12)
    assert (car.confidence, car.tp, car.fp, car.fn) == (None, None, None, None)    # absent -> None
    assert car.present == ("AP", "AP50", "precision", "recall", "support")
    assert car.numbers() == {"AP": 0.4, "AP50": 0.7, "precision": 0.6, "recall": 0.5, "support": 12}
    assert p.per_class["pedestrian"] == ClassEntry(AP=None, support=0, present=("AP", "support"))
    assert p.per_class["pedestrian"].numbers() == {"support": 0}                # undefined AP left out
    assert dict(p.groups) == {} and dict(p.counts) == {}                       # absent blocks: empty
    assert (p.fingerprint.name, p.fingerprint.digest, p.fingerprint.resolution) == ("prophesee", "abc", [360, 640])
    assert (p.fingerprint.class_names, p.fingerprint.class_agnostic, p.fingerprint.filter) == ((), False, None)
    c = p.confusion
    assert c.labels == ("car", "pedestrian", "background") and c.matrix[0] == (9, 0, 3) and c.square
    assert (c.iou, c.confidence) == (0.5, 0.5)
    assert v.curves["val/prophesee/AP"].step == (100, 300) and v.curves["val/prophesee/AP"].value == (0.1, None)
    assert v.protocol("full") == ProtocolView() and v.protocol(None) == ProtocolView()   # not evaluated


def test_a_schema_2_run_reads_its_groups_training_and_stop_reason():
    block = {"metrics": {"AP": 0.3}, "groups": {"small_road_users": {"AP": 0.1, "AP50": 0.2, "support": 5,
                                                                       "classes": ["pedestrian"], "mode": "pooled"}},
             "counts": {"images": 4, "gt": 9, "detections": 30}}
    doc = {"schema_version": 2, "seeds": [3], "runs": {"3": {
        "seed": 3, "dir": "seeds/seed_3", "status": "failed", "step": 20, "protocols": {"full": block},
        "monitors": {"stopped_reason": "DivergenceStop: loss nan"},
        "training": {"global_step": 20, "best_score": 0.3, "wall_s": 12.5, "best_ckpt": None}}}}
    run = ResultsView.from_dict(doc).runs["3"]
    g = run.protocols["full"].groups["small_road_users"]
    assert (g.AP, g.AP50, g.support, g.classes, g.mode) == (0.1, 0.2, 5, ("pedestrian",), "pooled")
    assert dict(run.protocols["full"].counts) == {"images": 4, "gt": 9, "detections": 30}
    assert (run.dir, run.completed, run.stopped_reason) == ("seeds/seed_3", False, "DivergenceStop: loss nan")
    t = run.training
    assert (t.global_step, t.best_score, t.wall_s, t.best_ckpt, t.best_step) == (20, 0.3, 12.5, None, None)
    assert RunView().training.global_step is None and RunView().stopped_reason is None


def test_values_that_are_not_numbers_read_as_undefined():
    p = ProtocolView.from_dict({"metrics": {"AP": True, "AP50": "0.5", "AP75": 1},
                                "per_class": {"car": {"AP": [0.3], "support": 2}}, "confusion": {"matrix": 3}})
    assert dict(p.metrics) == {"AP": None, "AP50": None, "AP75": 1}
    assert p.per_class["car"].AP is None and p.per_class["car"].support == 2
    assert p.confusion.matrix == () and not p.confusion.square


def test_status_stop_reason_and_detected():
    s = StatusView.from_dict({"state": "killed", "detected": "process 12 is gone", "stop_reason": "max_steps"})
    assert (s.detected, s.stop_reason) == ("process 12 is gone", "max_steps")
    assert StatusView.from_dict({"state": "completed"}).stop_reason is None
