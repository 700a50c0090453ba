"""A sweep with real (tiny) training through the CLI: trial records, pruning reports, status and plots."""

from __future__ import annotations

import json

import optuna
import pytest
from design_fixtures import make_record, tiny_dataset
from typer.testing import CliRunner

from evdet.cli import app

pytestmark = pytest.mark.slow


def test_sweep_cli_trains_trials_that_report_to_the_pruner(tmp_path, tmp_path_factory):
    pre = tiny_dataset(tmp_path_factory)
    root = tmp_path / "experiments"
    make_record(root, "base", ["training.max_steps=2", "training.val_every_n_steps=1",
                               "training.log_every_n_steps=1"], data_root=str(pre))
    space = tmp_path / "space.yaml"
    space.write_text("params:\n  training.lr: {low: 1.0e-3, high: 4.0e-3, log: true}\n")
    storage = f"sqlite:///{tmp_path / 'sweeps.db'}"
    runner = CliRunner()
    r = runner.invoke(app, ["exp", "sweep", "lr", "--base", "base", "--space", str(space), "--trials", "2",
                            "--metric", "full/AP50", "--storage", storage, "--root", str(root),
                            "--plots", str(tmp_path / "plots")])
    assert r.exit_code == 0, r.output
    study = optuna.load_study(study_name="lr", storage=storage)
    assert len(study.trials) == 2 and {t.state.name for t in study.trials} <= {"COMPLETE", "PRUNED"}
    for t in study.trials:
        assert t.intermediate_values, "the pruning callback reported no validation value"
        assert set(t.intermediate_values) <= {1, 2}
        res = json.loads((root / t.user_attrs["exp_id"] / "results.json").read_text())
        assert res["base"] == "base" and "full" in res["protocols"]
    assert (tmp_path / "plots" / "lr_history.png").exists()
    r = runner.invoke(app, ["exp", "sweep-status", "lr", "--storage", storage])
    assert r.exit_code == 0 and "best trials" in r.output, r.output
    r = runner.invoke(app, ["exp", "sweep-status", "nope", "--storage", storage])
    assert r.exit_code == 1 and "no study 'nope'" in r.output
