import json
from pathlib import Path

import pytest

from evdet.experiments.records.record import RecordError, create_experiment, read_status, write_status
from evdet.experiments.records.run_config import dump_run_config, load_run_config
from evdet.experiments.running.record_keeping import curves_from_csv, final_monitors
from evdet.experiments.running.runner import AlreadyCompleted, run_experiment


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
    before = (d / "results.json").read_bytes()
    with pytest.raises(AlreadyCompleted, match="results.json left unchanged"):
        run_experiment(tmp_path, "r1", resume=True)
    assert (d / "results.json").read_bytes() == before
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

    import numpy as np

    from evdet.data.labels import BBOX_DTYPE
    from evdet.experiments.statistics.intervals import load_validation_detections
    from evdet.experiments.records.record import load_results
    from evdet.experiments.running.record_keeping import record_callback

    d = _record(tmp_path)
    results = load_results(d / "results.json")
    results.update(seeds=[5], runs={"5": {"seed": 5, "dir": ".", "status": "running"}})

    class FakeResult:
        def to_dict(self):
            return {"protocol": "prophesee", "metrics": {"AP": 0.25}}

    gt = np.zeros(2, BBOX_DTYPE)
    gt["t"] = [200, 100]
    eval_cb = SimpleNamespace(last_results={"prophesee": FakeResult()}, class_names=["car"], height=8, width=16,
                              source_hw=None, groups=None, pr_confidence=0.5, confusion_iou=0.5, label_rate_hz=10.0,
                              scoring=None, last_inputs=(["s0", "s1"], [gt[:0], gt], [[], [gt[:1], gt[1:]]]))
    module = SimpleNamespace()
    keeper = record_callback(d, 0.0, eval_cb, results, "5", d)
    trainer = SimpleNamespace(sanity_checking=False, is_global_zero=True, global_step=7)
    keeper.on_validation_epoch_end(trainer, module)
    doc = load_results(d / "results.json")
    assert doc["runs"]["5"]["protocols"]["prophesee"]["metrics"]["AP"] == 0.25 and doc["runs"]["5"]["step"] == 7
    assert doc["protocols"]["prophesee"]["metrics"]["AP"] == 0.25 and doc["step"] == 7      # one seed: as is
    saved = load_validation_detections(d / "validation" / "detections.npz")
    assert saved.names == ("s0", "s1") and saved.eval_kwargs["label_rate_hz"] == 10.0
    assert list(saved.gts[1]["t"]) == [100, 200] and list(saved.dts[1]["t"]) == [100, 200] and saved.dts[0].size == 0
    write_status(d, "running", "training")
    keeper.on_train_batch_end(trainer, None, None, None, 0)
    assert json.loads((d / "status.json").read_text())["step"] == 7


def test_aggregate_runs_means_over_completed_seeds():
    from evdet.experiments.running.seed_aggregate import aggregate_runs

    def block(ap, car):
        return {"metrics": {"AP": ap}, "per_class": {"car": {"AP": car, "support": 3}}, "groups": {},
                "confusion": {"matrix": [[ap]]}}

    results = {"seeds": [0, 1, 2], "runs": {
        "0": {"seed": 0, "status": "completed", "step": 10, "protocols": {"full": block(0.2, 0.1)},
              "monitors": {"loss_cv": 0.5, "stopped_reason": None}},
        "1": {"seed": 1, "status": "completed", "step": 10, "protocols": {"full": block(0.4, None)},
              "monitors": {"loss_cv": 0.3, "stopped_reason": None}},
        "2": {"seed": 2, "status": "running", "step": 5, "protocols": {"full": block(0.9, 0.9)}}}}
    aggregate_runs(results)
    full = results["protocols"]["full"]
    assert full["metrics"]["AP"] == pytest.approx(0.3) and full["per_class"]["car"]["AP"] == 0.1
    assert full["per_class"]["car"]["support"] == 3 and full["confusion"] == {"matrix": [[0.2]]}
    assert full["seed_aggregate"]["seeds"] == [0, 1]
    st = results["seed_stats"]["protocols"]["full"]["AP"]
    assert st["values"] == [0.2, 0.4] and st["std"] == pytest.approx(0.2 / 2 ** 0.5)   # |0.4 - 0.2| / sqrt(2), ddof 1
    assert results["seed_stats"]["protocols"]["full"]["per_class.car.AP"]["n"] == 1
    assert results["monitors"]["loss_cv"] == pytest.approx(0.4) and results["step"] == 10
