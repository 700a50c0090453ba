"""Ablation with real (tiny) training over two seeds through the CLI: per-seed runs, Welch intervals."""

from __future__ import annotations

import json

import pytest
from design_fixtures import TINY_TRAINING, make_record, tiny_dataset
from typer.testing import CliRunner

from evdet.cli import app

pytestmark = pytest.mark.slow


def test_ablate_cli_with_seeds_on_real_runs(tmp_path, tmp_path_factory):
    pre = tiny_dataset(tmp_path_factory)
    root = tmp_path / "experiments"
    make_record(root, "base", TINY_TRAINING, data_root=str(pre))
    make_record(root, "variant", [*TINY_TRAINING, "loss.iou_weight=50.0"], data_root=str(pre))
    r = CliRunner().invoke(app, ["exp", "ablate", "base", "variant", "--seeds", "0,1", "-m", "train/loss",
                                 "--root", str(root)])
    assert r.exit_code == 0, r.output
    summary = json.loads((root / "_designs" / "ablate_base_variant.json").read_text())
    eff = summary["effects"][0]
    single = eff["single"]["loss.iou_weight"]
    assert single["method"] == "welch-t over seeds" and single["n_a"] == 2 and single["n_b"] == 2
    assert single["low"] > 0                      # a 10x IoU weight raises the loss beyond seed noise
    assert "raises" in r.output
    # one key: the add arm is the variant and the drop arm the base, so the effects add up exactly
    assert eff["interaction"]["mean"] == pytest.approx(0.0, abs=1e-9)
    arms = summary["arms"]
    assert arms["add:loss.iou_weight"] == arms["variant"] and arms["drop:loss.iou_weight"] == arms["base"]
    for exp_id in {arms["base"], arms["variant"]}:
        res = json.loads((root / exp_id / "results.json").read_text())
        assert res["status"] == "completed" and sorted(res["runs"]) == ["0", "1"]
