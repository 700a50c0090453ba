"""rescore_record: a record's metrics from its saved detections under the current evaluation code."""

import json

import numpy as np
import pytest

from evdet.evaluation import evaluate
from evdet.experiments.records.record import load_experiment
from evdet.experiments.running.rescore import rescore_record
from tests.experiments.statistics.test_intervals import (EVAL_KWARGS, _detections, _ground_truth,
                                                         _record_with_detections)


def test_rescore_replaces_stale_metrics_with_the_evaluation_of_the_saved_detections(tmp_path):
    rng = np.random.default_rng(5)
    gts = [_ground_truth(rng, 6) for _ in range(4)]
    dts = [_detections(rng, g, 0.6) for g in gts]
    d = _record_with_detections(tmp_path, "run", gts, dts)
    doc = json.loads((d / "results.json").read_text())
    doc["runs"]["0"]["protocols"]["prophesee"]["metrics"]["AP"] = 0.999      # a stale value
    (d / "results.json").write_text(json.dumps(doc))
    out = rescore_record(tmp_path, "run")
    kw = {k: v for k, v in EVAL_KWARGS.items() if k != "class_groups"}
    expected = evaluate(gts, dts, protocol="prophesee", **kw).to_dict()["metrics"]["AP"]
    assert out["runs"]["0"]["protocols"]["prophesee"]["metrics"]["AP"] == pytest.approx(expected)
    assert load_experiment(tmp_path, "run").results["protocols"]["prophesee"]["metrics"]["AP"] == \
        pytest.approx(expected)
    assert "rescored" in out and out["rescored"]["at"]
