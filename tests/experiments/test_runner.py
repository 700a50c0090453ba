import json
from pathlib import Path

import pytest

from evdet.experiments.records import RecordError, create_experiment, read_status, write_status
from evdet.experiments.run_config import dump_run_config, load_run_config
from evdet.experiments.runner import curves_from_csv, final_monitors, run_experiment


def _record(root: Path, exp_id: str = "r1", overrides=()) -> Path:
    cfg = load_run_config(["demo"], [f"data.root={root / 'no_data'}", *overrides])
    return create_experiment(root, exp_id, dump_run_config(cfg), "h")


def test_curves_and_final_monitors(tmp_path: Path):
    p = tmp_path / "metrics.csv"
    p.write_text("epoch,step,train/loss,monitor/loss_cv,monitor/peak_rss_mb,val/full/AP,lr-AdamW\n"
                 "0,4,3.0,0.5,100,,1e-3\n0,9,2.0,0.25,120,,1e-3\n0,9,,,,0.1,\n")
    curves = curves_from_csv(p)
    assert set(curves) == {"train/loss", "monitor/loss_cv", "monitor/peak_rss_mb", "val/full/AP"}
    assert curves["train/loss"] == {"step": [4, 9], "value": [3.0, 2.0]}
    assert final_monitors(curves) == {"loss_cv": 0.25, "peak_rss_mb": 120.0}


def test_failed_run_leaves_failed_record(tmp_path: Path):
    d = _record(tmp_path)
    with pytest.raises(RecordError, match="data.root"):
        run_experiment(tmp_path, "r1", command="evdet exp run r1")
    st = read_status(d)
    assert st["state"] == "failed" and "data.root" in st["message"]
    assert json.loads((d / "results.json").read_text())["status"] == "failed"
    assert "Traceback" in (d / "logs" / "error.txt").read_text()
    assert (d / "command.txt").read_text().splitlines()[-1] == "evdet exp run r1"


def test_run_refuses_wrong_states(tmp_path: Path):
    d = _record(tmp_path)
    write_status(d, "completed", "done")
    with pytest.raises(RecordError, match="already completed"):
        run_experiment(tmp_path, "r1")
    write_status(d, "killed", "gone")
    with pytest.raises(RecordError, match="nothing to resume"):
        run_experiment(tmp_path, "r1", resume=True)
    (d / "checkpoints" / "last.ckpt").write_bytes(b"x")
    with pytest.raises(RecordError, match="--resume"):
        run_experiment(tmp_path, "r1")
    write_status(d, "running", "training")   # this process: alive
    with pytest.raises(RecordError, match="already running"):
        run_experiment(tmp_path, "r1", resume=True)


def test_record_keeper_keeps_record_current(tmp_path: Path):
    from types import SimpleNamespace

    from evdet.experiments.records import load_results
    from evdet.experiments.runner import _record_callback

    d = _record(tmp_path)
    results = load_results(d / "results.json")

    class FakeResult:
        def to_dict(self):
            return {"protocol": "prophesee", "metrics": {"AP": 0.25}}

    eval_cb = SimpleNamespace(last_results={"prophesee": FakeResult()})
    keeper = _record_callback(d, 0.0, eval_cb, results)
    trainer = SimpleNamespace(sanity_checking=False, is_global_zero=True, global_step=7)
    keeper.on_validation_epoch_end(trainer, None)
    doc = load_results(d / "results.json")
    assert doc["protocols"]["prophesee"]["metrics"]["AP"] == 0.25 and doc["step"] == 7
    write_status(d, "running", "training")
    keeper.on_train_batch_end(trainer, None, None, None, 0)
    assert json.loads((d / "status.json").read_text())["step"] == 7
