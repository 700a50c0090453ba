"""rescore_record: a record's metrics from its saved detections under the current evaluation code."""

import json
import os

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


def test_exp_rescore_prints_the_values_before_and_after_and_waits_for_no_run(tmp_path):
    from typer.testing import CliRunner

    from evdet.cli import app
    from evdet.experiments.records.record_lock import RecordLock

    rng = np.random.default_rng(6)
    gts = [_ground_truth(rng, 6) for _ in range(4)]
    d = _record_with_detections(tmp_path, "run", gts, [_detections(rng, g, 0.6) for g in gts])
    doc = json.loads((d / "results.json").read_text())
    doc["runs"]["0"]["protocols"]["prophesee"]["metrics"]["AP"] = 0.999
    doc["protocols"]["prophesee"]["metrics"]["AP"] = 0.999
    (d / "results.json").write_text(json.dumps(doc))
    r = CliRunner().invoke(app, ["exp", "rescore", "run", "--root", str(tmp_path)], env={"COLUMNS": "200"})
    assert r.exit_code == 0, r.output
    after = load_experiment(tmp_path, "run").results["protocols"]["prophesee"]["metrics"]["AP"]
    assert f"run prophesee: AP 0.9990 -> {after:.4f}" in r.output and after != 0.999
    # a record that a live process runs is not rescored: one line naming the holder
    with RecordLock(d):
        import subprocess
        import sys
        code = ("import sys; from typer.testing import CliRunner; from evdet.cli import app; "
                f"r = CliRunner().invoke(app, ['exp', 'rescore', 'run', '--root', {str(tmp_path)!r}]); "
                "print(r.output); sys.exit(r.exit_code)")
        busy = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert busy.returncode == 1 and "record run" in busy.stdout and str(os.getpid()) in busy.stdout
    assert "Traceback" not in busy.stdout
