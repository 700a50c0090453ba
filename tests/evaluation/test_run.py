"""evaluate_checkpoint wiring: preprocess info, class map and predictions reach evaluate and the files."""

import json

import pytest

from evdet.data.classes import GEN1, write_dataset_yaml
from evdet.evaluation import evaluate
from evdet.evaluation.run import evaluate_checkpoint

from eval_boxes import boxes

T = 1_000_000


def test_evaluate_checkpoint_uses_preprocess_info(tmp_path, monkeypatch):
    predict = pytest.importorskip("evdet.training.predict")
    pre = tmp_path / "pre"
    pre.mkdir()
    write_dataset_yaml(pre, GEN1)
    (pre / "preprocess.json").write_text(json.dumps({
        "source_hw": [720, 1280], "repr_hw": [360, 640], "downsample": "ds2_nearest",
        "representation": "stacked_histogram_dt=50_nbins=10", "label_rate_hz": 10.0}))
    gt = boxes((T, 0, 0, 40, 90, 1), (T, 200, 100, 120, 80, 0))
    dt = boxes((T, 0, 0, 40, 90, 1, 0.9))
    calls = []

    def fake_predict(ckpt, pre_root, split, **kw):
        calls.append((ckpt, pre_root, split))
        return ["seq0"], [gt], [dt]

    monkeypatch.setattr(predict, "predict_sequences", fake_predict)
    out = tmp_path / "out"
    res = evaluate_checkpoint("model.ckpt", pre, "test", protocols=("prophesee", "etram-paper"),
                              out_dir=out, plots=False, progress=False)
    assert calls == [("model.ckpt", pre, "test")]
    assert set(res) == {"prophesee", "etram-paper"}
    fp = res["prophesee"].fingerprint
    assert fp["class_names"] == ["car", "pedestrian"]
    assert fp["resolution"] == [360, 640] and fp["source_resolution"] == [720, 1280]
    assert fp["label_rate_hz"] == 10.0
    expected = evaluate([gt], [dt], height=360, width=640, class_names=GEN1, source_hw=(720, 1280))
    assert res["prophesee"].metrics == expected.metrics
    assert (out / "prophesee_metrics.json").exists() and (out / "etram-paper_per_class.csv").exists()


def test_evaluate_checkpoint_rejects_unknown_protocol_before_predicting(tmp_path):
    with pytest.raises(ValueError, match="unknown evaluation protocol"):
        evaluate_checkpoint("x.ckpt", tmp_path, protocols=("bogus",))
