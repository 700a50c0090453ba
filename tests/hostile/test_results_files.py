"""Hostile result files in records: out-of-range metrics and broken validation/detections.npz."""

import json

import numpy as np
from typer.testing import CliRunner

from evdet.cli import app
from tests.experiments.exp_fixtures import CLASSES, make_experiment, protocol_block


def block(ap: float) -> dict:
    return {"prophesee": protocol_block(ap, 0.1, {c: min(ap, 1.0) for c in CLASSES})}


def invoke(*args) -> str:
    res = CliRunner().invoke(app, [str(a) for a in args])
    assert res.exit_code == 0 and "Traceback" not in res.output, res.output
    return res.output


def test_ap_above_one_is_marked_broken_not_ranked_first(tmp_path):
    root = tmp_path / "exps"
    make_experiment(root, "honest", protocols=block(0.3))
    make_experiment(root, "inflated", protocols=block(7.5))
    out = invoke("exp", "rank", "--by", "AP", "--root", root)
    warning, *table = out.splitlines()
    assert warning.startswith("warning: broken record inflated: ") and "metrics.AP is 7.5, outside [0, 1]" in warning
    rows = [line.split("│")[1:3] for line in table if line.startswith("│") and line.split("│")[2].strip()]
    assert [[c.strip() for c in r] for r in rows] == [["1", "honest"], ["-", "inflated"]]   # unranked, marked broken


def test_per_class_precision_out_of_range_is_refused(tmp_path):
    from evdet.experiments.records.record import RecordError, load_experiment

    root = tmp_path / "exps"
    protocols = block(0.3)
    protocols["prophesee"]["per_class"]["car"]["precision"] = -0.5
    make_experiment(root, "bad", protocols=protocols)
    try:
        load_experiment(root, "bad")
    except RecordError as err:
        assert "protocols.prophesee.per_class.car.precision is -0.5, outside [0, 1]" in str(err)
    else:
        raise AssertionError("accepted a precision of -0.5")


def test_broken_detections_npz_is_named_not_a_traceback(tmp_path):
    root = tmp_path / "exps"
    for exp_id, ap in (("base", 0.3), ("other", 0.35)):
        make_experiment(root, exp_id, protocols=block(ap), base="base" if exp_id == "other" else None)
    plain = root / "base" / "validation" / "detections.npz"
    with open(plain, "wb") as fh:
        np.save(fh, np.arange(4))                               # a plain array under the archive's name
    cut = root / "other" / "validation" / "detections.npz"
    np.savez(cut, meta=np.array(json.dumps({"sequences": []})), gt_0=np.arange(1000))
    cut.write_bytes(cut.read_bytes()[:200])                      # truncated
    invoke("exp", "rank", "--by", "AP", "--root", root)          # ranks (without intervals), no traceback
    report = tmp_path / "r.html"
    invoke("exp", "report", "--out", report, "--root", root)
    text = report.read_text()
    assert "cannot read saved validation detections" in text
