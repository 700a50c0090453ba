"""The reproduce command a design leaves in a record's command.txt exists and runs."""

import shlex
from pathlib import Path

from design_fixtures import make_record
from typer.testing import CliRunner

from evdet.cli import app
from evdet.experiments.running.executors import run_record
from evdet.experiments.records.record import atomic_write_json, empty_results, load_experiment, write_status


def test_design_records_carry_a_command_that_runs(tmp_path: Path, monkeypatch):
    import evdet.experiments.running.runner as runner

    trained = []

    def stand_in(exp_dir, cfg, seeds, results, **kw):       # the training itself, replaced
        trained.append(exp_dir.name)
        results.update(status="completed", step=3)
        atomic_write_json(exp_dir / "results.json", results)
        write_status(exp_dir, "completed", "stand-in")
        return results

    monkeypatch.setattr(runner, "_train_seeds", stand_in)
    exp_dir = make_record(tmp_path, "arm1")
    assert run_record(tmp_path, "arm1").state == "completed"
    argv = shlex.split((exp_dir / "command.txt").read_text().splitlines()[-1])
    assert argv == ["evdet", "exp", "run", "arm1", "--root", str(tmp_path)]
    atomic_write_json(exp_dir / "results.json", empty_results("arm1"))   # as before the first run
    write_status(exp_dir, "created", "reset")
    out = CliRunner().invoke(app, argv[1:])
    assert out.exit_code == 0, out.output
    assert "arm1: completed at step 3" in out.output
    assert trained == ["arm1", "arm1"] and load_experiment(tmp_path, "arm1").state == "completed"
