"""Saving results and the Lightning callback (with a stand-in module)."""

import csv
import json
import math
from types import SimpleNamespace

import pytest

from evdet.data.classes import ETRAM
from evdet.evaluation import EvalResult, evaluate, save_evaluation
from evdet.evaluation.callback import EvaluationCallback

from eval_boxes import boxes

T = 1_000_000


def _scene():
    names = list(ETRAM.names)
    gt = boxes((T, 0, 0, 40, 90, 0), (T, 200, 100, 120, 80, 1), (T + 200_000, 50, 50, 60, 40, 2))
    dt = boxes((T, 0, 0, 40, 90, 0, 0.9), (T, 205, 100, 120, 80, 5, 0.8), (T + 200_000, 50, 50, 60, 40, 2, 0.7))
    return names, gt, dt


def test_save_evaluation_writes_all_files(tmp_path):
    names, gt, dt = _scene()
    res = evaluate([gt], [dt], class_names=names, height=360, width=640)
    paths = save_evaluation(res, tmp_path)
    assert {p.name for p in tmp_path.iterdir()} == {
        "prophesee_metrics.json", "prophesee_per_class.csv", "prophesee_confusion.csv",
        "prophesee_confusion.png", "prophesee_pr_curves.png", "prophesee_per_class_ap.png"}
    assert paths["confusion_png"].read_bytes()[:4] == b"\x89PNG"
    back = EvalResult.from_dict(json.loads(paths["metrics"].read_text()))
    assert back.to_dict() == json.loads(json.dumps(res.to_dict()))
    rows = list(csv.reader(paths["per_class"].open()))
    assert rows[0][:3] == ["class", "support", "AP"] and [r[0] for r in rows[1:]] == names
    assert rows[1 + names.index("truck")][2] == ""          # no support -> empty cell, not 0
    conf = list(csv.reader(paths["confusion"].open()))
    assert conf[0][1:] == names + ["background"]
    assert int(conf[1 + names.index("car")][1 + names.index("truck")]) == 1


class FakeModule:
    def __init__(self, gt, dt):
        self.val_ground_truth = gt
        self.val_predictions = dt
        self.logged = {}

    def log(self, name, value, sync_dist=False):
        assert sync_dist is True
        self.logged[name] = value


def test_callback_logs_each_protocol_and_saves(tmp_path):
    names, gt, dt = _scene()
    # predictions as per-frame lists (the state the module is in when callbacks run)
    module = FakeModule({"seq_b": gt, "seq_a": gt[:0]}, {"seq_b": [dt[2:], dt[:2]]})
    cb = EvaluationCallback(("prophesee", "full"), class_names=names, height=360, width=640,
                            source_hw=(720, 1280), out_dir=tmp_path)
    trainer = SimpleNamespace(sanity_checking=False, global_step=42, is_global_zero=True)
    cb.on_validation_epoch_end(trainer, module)
    expected = evaluate([gt], [dt], class_names=names, height=360, width=640, source_hw=(720, 1280),
                        protocol="full")
    assert module.logged["val/full/AP"] == pytest.approx(expected.metrics["AP"])
    assert module.logged["val/full/small_AP"] == pytest.approx(expected.groups["small_road_users"]["AP"])
    assert "val/full/AP_tiny" in module.logged and "val/prophesee/AP_tiny" not in module.logged
    assert math.isnan(module.logged["val/full/AP_tiny"])       # no tiny GT: undefined, logged as NaN
    assert {"val/prophesee/AP", "val/prophesee/AP50", "val/prophesee/AP_S"} <= set(module.logged)
    step = tmp_path / "validation" / "step_42"
    assert (step / "prophesee_metrics.json").exists() and (step / "full_metrics.json").exists()
    sanity = SimpleNamespace(sanity_checking=True, global_step=0, is_global_zero=True)
    module.logged.clear()
    cb.on_validation_epoch_end(sanity, module)
    assert module.logged == {}


def test_callback_rejects_unknown_protocol_and_missing_attributes():
    with pytest.raises(ValueError, match="unknown evaluation protocol"):
        EvaluationCallback(("nope",), class_names=["car"], height=10, width=10)
    cb = EvaluationCallback(("prophesee",), class_names=["car"], height=10, width=10)
    with pytest.raises(AttributeError, match="val_ground_truth"):
        cb.evaluate_module(object())


def test_callback_from_config():
    from evdet.evaluation.config import EvalConfig

    cb = EvaluationCallback.from_config(EvalConfig(protocols=("full",), pr_confidence=0.3, groups=("VH",)),
                                        class_names=ETRAM, height=360, width=640)
    assert cb.protocols == ("full",) and cb.pr_confidence == 0.3 and cb.groups == ("VH",)
    cb = EvaluationCallback.from_config(EvalConfig(), class_names=ETRAM, height=360, width=640, label_rate_hz=10.0)
    assert cb.groups is None
    names, gt, dt = _scene()
    res = cb.evaluate_module(FakeModule({"s": gt}, {"s": dt}))
    assert res["prophesee"].fingerprint["label_rate_hz"] == 10.0


def test_callback_inside_a_real_trainer(tmp_path):
    """The metrics reach trainer.callback_metrics through pl_module.log in a real validation loop."""
    import lightning as L
    import torch

    names, gt, dt = _scene()

    class Tiny(L.LightningModule):
        def __init__(self):
            super().__init__()
            self.layer = torch.nn.Linear(1, 1)

        def training_step(self, batch, batch_idx):
            return self.layer(batch[0]).sum()

        def on_validation_epoch_start(self):
            self.val_ground_truth, self.val_predictions = {}, {}

        def validation_step(self, batch, batch_idx):
            self.val_ground_truth.setdefault("seq", []).append(gt)
            self.val_predictions.setdefault("seq", []).append(dt)

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.0)

    data = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.zeros(1, 1)), batch_size=1)
    cb = EvaluationCallback(("prophesee",), class_names=names, height=360, width=640, out_dir=tmp_path)
    trainer = L.Trainer(max_epochs=1, callbacks=[cb], logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
                        default_root_dir=tmp_path, accelerator="cpu", devices=1)
    trainer.fit(Tiny(), data, data)
    expected = evaluate([gt], [dt], class_names=names, height=360, width=640)
    assert float(trainer.callback_metrics["val/prophesee/AP"]) == pytest.approx(expected.metrics["AP"], abs=1e-6)
    assert (tmp_path / "validation" / "step_1" / "prophesee_metrics.json").exists()
