"""fit(): checkpoints, metrics.csv, reload, kill-and-resume with an unbroken history."""

import csv
import dataclasses
import time
from pathlib import Path

import lightning as L
import pytest
import torch

from evdet.training.fit import fit, rows_before_step
from evdet.training.module import DetectionModule
from evdet.training.predict import predict_sequences
from crash import Kill  # tests/training is on the path (conftest)


def train_rows(path):
    with open(path, newline="") as fh:
        return [r for r in csv.DictReader(fh) if r.get("train/loss")]


@pytest.fixture(scope="module")
def short_run(tiny_cfgs, tmp_path_factory):
    out = tmp_path_factory.mktemp("short_run")
    data, model, loss, train = tiny_cfgs
    # 7 steps, validation every 3: validations at steps 3 and 6, plus one of the final weights
    train = dataclasses.replace(train, max_steps=7, loggers=("csv", "tensorboard"))
    return out, fit(data, model, loss, train, out, progress=False)


def test_short_fit_writes_checkpoints_and_metrics(short_run, tiny_cfgs):
    out, summary = short_run
    assert summary["global_step"] == 7 and summary["stopped_reason"] is None
    assert (out / "checkpoints" / "last.ckpt").is_file() and summary["last_ckpt"].endswith("last.ckpt")
    # no evaluation callback here: the best checkpoint falls back to the lowest validation loss
    assert summary["best_metric"] == "val/loss" and (out / "checkpoints" / "best.ckpt").is_file()
    rows = train_rows(out / "logs" / "metrics.csv")
    assert [int(r["step"]) for r in rows] == list(range(7))
    with open(out / "logs" / "metrics.csv", newline="") as fh:
        val_steps = [int(r["step"]) for r in csv.DictReader(fh) if r.get("val/loss")]
    assert val_steps == [2, 5, 7]  # logged at the index of the step they follow, and the final weights
    for key in ("train/iou", "train/obj", "train/cls", "train/num_fg", "train/lr"):
        assert rows[-1][key] != ""
    ckpt = torch.load(out / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert ckpt["global_step"] == 7 and "optimizer_states" in ckpt
    assert ckpt["hyper_parameters"]["train_cfg"]["max_steps"] == 7
    assert ckpt["hyper_parameters"]["data_cfg"]["root"] == tiny_cfgs[0].root
    assert any((out / "logs" / "tensorboard").glob("events.out.tfevents.*"))


def test_checkpoint_rebuilds_the_module(short_run, tiny_cfgs, tiny_root):
    out, _ = short_run
    module = DetectionModule.load_from_checkpoint(out / "checkpoints" / "last.ckpt", map_location="cpu",
                                                  weights_only=False)
    assert module.model_cfg == tiny_cfgs[1] and module.class_names == ("car", "pedestrian")
    assert module.input_hw == (64, 96) and module.in_channels == 4
    names, gts, dts = predict_sequences(out / "checkpoints" / "last.ckpt", tiny_root, "val", progress=False,
                                        device="cpu")
    assert names == ["seq_val_0", "seq_val_1"] and len(gts) == len(dts) == 2


def test_existing_run_and_changed_schedule_are_refused(short_run, tiny_cfgs):
    out, _ = short_run
    data, model, loss, train = tiny_cfgs
    with pytest.raises(FileExistsError, match="resume=True"):
        fit(data, model, loss, train, out, progress=False)
    with pytest.raises(ValueError, match="max_steps=7"):
        fit(data, model, loss, dataclasses.replace(train, max_steps=12), out, resume=True, progress=False)
    with pytest.raises(FileNotFoundError, match="nothing to resume"):
        fit(data, model, loss, train, out / "nope", resume=True, progress=False)



class RecordBatches(L.Callback):
    """Keeps (seq_names, frames sum, is_first) of every training batch."""

    def __init__(self):
        self.seen = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.seen.append((batch["seq_names"], float(batch["frames"].sum()), batch["is_first"].tolist()))


def test_kill_and_resume_gives_an_unbroken_history(tiny_cfgs, tmp_path):
    data, model, loss, train = tiny_cfgs
    train = dataclasses.replace(train, max_steps=8, val_every_n_steps=2, limit_val_batches=1)
    data = dataclasses.replace(data, sampling="stream")
    with pytest.raises(RuntimeError, match="killed at step 5"):
        fit(data, model, loss, train, tmp_path, callbacks=[Kill(5)], progress=False)
    ckpt = torch.load(tmp_path / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert ckpt["global_step"] == 4
    # the crashed run logged step 4 after its last checkpoint: that row must not survive the resume
    assert [int(r["step"]) for r in train_rows(tmp_path / "logs" / "metrics.csv")] == list(range(5))
    best = next(v for k, v in ckpt["callbacks"].items() if "LastBestCheckpoint" in k)
    assert best["best_metric"] == "val/loss" and best["best_step"] in (2, 4)
    recorder = RecordBatches()
    summary = fit(data, model, loss, train, tmp_path, resume=True, callbacks=[recorder], progress=False)
    assert summary["global_step"] == 8
    # the streams continue where the checkpoint was taken (batch 4 of epoch 0), states carried on
    from evdet.data.datamodule import EventDataModule
    expected = list(EventDataModule(data, seed=train.seed).train_dataloader())[4:8]
    assert [r[0] for r in recorder.seen] == [b["seq_names"] for b in expected]
    assert [r[1] for r in recorder.seen] == pytest.approx([float(b["frames"].sum()) for b in expected])
    assert [r[2] for r in recorder.seen] == [b["is_first"].tolist() for b in expected]
    # best-metric tracking went on from the restored best, not from scratch
    assert summary["best_score"] <= best["best_score"] and summary["best_step"] >= best["best_step"]
    rows = train_rows(tmp_path / "logs" / "metrics.csv")
    assert [int(r["step"]) for r in rows] == list(range(8))
    # the schedule continued: lr of the resumed steps follows the same OneCycle curve
    p = torch.nn.Parameter(torch.zeros(1))
    from evdet.training.optim import build_optimizer
    opt, sched = build_optimizer([p], train, data.batch_size)
    expected = []
    for _ in range(8):
        expected.append(opt.param_groups[0]["lr"])
        opt.step()
        sched["scheduler"].step()
    assert [float(r["train/lr"]) for r in rows] == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("sampling, workers", [("stream", 0), ("mixed", 0),
                                               pytest.param("mixed", 2, marks=pytest.mark.slow)])
def test_resumed_run_logs_the_losses_of_an_uninterrupted_one(tiny_cfgs, tmp_path, sampling, workers):
    # 3 slots over sequences of 11, 7, 9 representations in chunks of 2: at the checkpoint (step 4) every
    # slot is inside a sequence, so its recurrent state matters; mixed adds augmented random windows
    data, model, loss, train = tiny_cfgs
    data = dataclasses.replace(data, sampling=sampling, batch_size=3 if sampling == "stream" else 4,
                               num_workers=workers)
    train = dataclasses.replace(train, max_steps=7, val_every_n_steps=4, limit_val_batches=1)
    fit(data, model, loss, train, tmp_path / "whole", progress=False)
    with pytest.raises(RuntimeError, match="killed at step 6"):
        fit(data, model, loss, train, tmp_path / "killed", callbacks=[Kill(6)], progress=False)
    saved = torch.load(tmp_path / "killed" / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert saved["global_step"] == 4
    assert sorted(saved["evdet_resume"]["stream_states"]) == ([0, 1, 2] if sampling == "stream" else [0, 1])
    fit(data, model, loss, train, tmp_path / "killed", resume=True, progress=False)
    whole = train_rows(tmp_path / "whole" / "logs" / "metrics.csv")
    resumed = train_rows(tmp_path / "killed" / "logs" / "metrics.csv")
    keys = ("step", "train/loss", "train/iou", "train/obj", "train/cls", "train/num_fg", "train/lr")
    assert [int(r["step"]) for r in resumed] == list(range(7))
    assert [[r[k] for k in keys] for r in resumed] == [[r[k] for k in keys] for r in whole]


def test_periodic_checkpoint_between_validations_resumes_exactly(tiny_cfgs, tmp_path):
    # no validation before the end: only checkpoint_every_n_steps=3 leaves a last.ckpt (step 3) to resume from
    data, model, loss, train = tiny_cfgs
    data = dataclasses.replace(data, sampling="stream", batch_size=3)
    train = dataclasses.replace(train, max_steps=7, val_every_n_steps=100, limit_val_batches=1,
                                checkpoint_every_n_steps=3)
    fit(data, model, loss, train, tmp_path / "whole", progress=False)
    with pytest.raises(RuntimeError, match="killed at step 5"):
        fit(data, model, loss, train, tmp_path / "killed", callbacks=[Kill(5)], progress=False)
    saved = torch.load(tmp_path / "killed" / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert saved["global_step"] == 3
    # the run's time counts every sitting: say the first took 1000 s up to its checkpoint
    assert saved["evdet_resume"]["wall_s"] > 0
    saved["evdet_resume"]["wall_s"] = 1000.0
    torch.save(saved, tmp_path / "killed" / "checkpoints" / "last.ckpt")
    t0 = time.perf_counter()
    summary = fit(data, model, loss, train, tmp_path / "killed", resume=True, progress=False)
    assert 1000.0 < summary["wall_s"] < 1000.0 + (time.perf_counter() - t0)
    keys = ("step", "train/loss", "train/iou", "train/obj", "train/cls", "train/num_fg", "train/lr")
    whole = train_rows(tmp_path / "whole" / "logs" / "metrics.csv")
    resumed = train_rows(tmp_path / "killed" / "logs" / "metrics.csv")
    assert [int(r["step"]) for r in resumed] == list(range(7))
    assert [[r[k] for k in keys] for r in resumed] == [[r[k] for k in keys] for r in whole]


def test_rows_before_step_keeps_validation_of_the_checkpoint_step():
    rows = [{"step": "3", "train/loss": "1", "val/loss": ""}, {"step": "4", "train/loss": "", "val/loss": "2"},
            {"step": "4", "train/loss": "1", "val/loss": ""}, {"step": "5", "train/loss": "", "val/loss": "2"}]
    assert rows_before_step(rows, 4) == rows[:2]


def test_loggers_are_checked():
    from evdet.training.fit import build_loggers
    with pytest.raises(ValueError, match="unknown logger"):
        build_loggers(["csv", "comet"], Path("/tmp/unused"))
    with pytest.raises(ValueError, match=r"unknown logger\(s\) \['wandb'\]"):
        build_loggers(["wandb"], Path("/tmp/unused"))


@pytest.mark.slow
def test_mlflow_logger_records_the_training_losses(tiny_cfgs, tmp_path):
    # a real MLflow store (mlflow-skinny, SQLite): the losses it holds are those of metrics.csv
    mlflow = pytest.importorskip("mlflow", reason="optional: pip install mlflow-skinny")
    from evdet.training.fit import mlflow_tracking_uri

    data, model, loss, train = tiny_cfgs
    train = dataclasses.replace(train, max_steps=2, val_every_n_steps=2, limit_val_batches=1,
                                loggers=("csv", "mlflow"))
    fit(data, model, loss, train, tmp_path / "run", progress=False)
    client = mlflow.tracking.MlflowClient(mlflow_tracking_uri(tmp_path / "run" / "logs"))
    (run,) = client.search_runs([client.get_experiment_by_name("evdet").experiment_id])
    assert run.info.run_name == "run" and run.info.status == "FINISHED"
    history = sorted((m.step, m.value) for m in client.get_metric_history(run.info.run_id, "train/loss"))
    expected = sorted((int(r["step"]), float(r["train/loss"]))
                      for r in train_rows(tmp_path / "run" / "logs" / "metrics.csv"))
    assert [s for s, _ in history] == [s for s, _ in expected] == [0, 1]
    assert [v for _, v in history] == pytest.approx([v for _, v in expected], rel=1e-6)


def test_precision_auto_is_fp32_without_cuda():
    from evdet.training.fit import resolve_precision
    assert resolve_precision("auto", "cpu") == "32"
    assert resolve_precision("bf16-mixed", "cpu") == "bf16-mixed"
    expected = "16-mixed" if torch.cuda.is_available() else "32"
    assert resolve_precision("auto", "auto") == expected


def test_ddp_for_one_process_trains_without_a_process_group():
    # RVT's train.py: DDPStrategy only for several GPUs; a world of one gets no process group
    from evdet.training.config import TrainConfig
    from evdet.training.fit import _strategy

    assert _strategy(TrainConfig(strategy="ddp", devices=1)) == "auto"
    assert _strategy(TrainConfig(strategy="ddp_find_unused_parameters_true", devices=1)) == "auto"
    assert _strategy(TrainConfig(strategy="ddp", devices=2)) == "ddp"
    assert _strategy(TrainConfig(strategy="ddp", devices=1, num_nodes=2)) == "ddp"
    assert _strategy(TrainConfig(strategy="auto", devices=1)) == "auto"
