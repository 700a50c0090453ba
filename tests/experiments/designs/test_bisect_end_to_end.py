"""Bisection with real (tiny) training through the CLI: the culprit is found on train/loss."""

from __future__ import annotations

import json

import pytest
from design_fixtures import TINY_TRAINING, make_record, tiny_dataset
from typer.testing import CliRunner

from evdet.cli import app

pytestmark = pytest.mark.slow


def test_bisect_cli_finds_the_loss_weight_that_raises_the_loss(tmp_path, tmp_path_factory):
    pre = tiny_dataset(tmp_path_factory)
    root = tmp_path / "experiments"
    make_record(root, "good", TINY_TRAINING, data_root=str(pre))
    # a 10x IoU weight multiplies the largest loss term; the confidence change only affects evaluation
    make_record(root, "bad", [*TINY_TRAINING, "loss.iou_weight=50.0", "eval.pr_confidence=0.3"], data_root=str(pre))
    runner = CliRunner()
    args = ["exp", "bisect", "good", "bad", "--metric", "train/loss", "--mode", "min", "--root", str(root)]
    r = runner.invoke(app, args)
    assert r.exit_code == 0, r.output
    assert "culprit: loss.iou_weight" in r.output
    summary = json.loads((root / "_designs" / "bisect_good_bad.json").read_text())
    assert summary["culprit"] == ["loss.iou_weight"]
    alone = next(p for p in summary["proof"] if p["role"] == "culprit alone on GOOD")
    good = next(p for p in summary["proof"] if p["role"] == "GOOD")
    assert alone["bad"] and alone["value"] > good["value"]
    assert summary["culprit_explains_all"] is True
    for p in summary["proof"]:   # ordinary completed records
        assert json.loads((root / p["exp_id"] / "status.json").read_text())["state"] == "completed"
    # resumed: the same command trains nothing
    r = runner.invoke(app, args)
    assert r.exit_code == 0 and "training " not in r.output and ", 0 trained now" in r.output, r.output


def test_bisect_cli_errors_are_one_line(tmp_path):
    root = tmp_path / "experiments"
    make_record(root, "good")
    make_record(root, "bad", ["loss.iou_weight=50.0"])
    r = CliRunner().invoke(app, ["exp", "bisect", "good", "bad", "--metric", "full/nope", "--mode", "min",
                                 "--root", str(root)])
    assert r.exit_code == 1 and r.output.count("\n") == 1 and "unknown metric 'nope'" in r.output
