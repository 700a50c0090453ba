"""Validation inside training and ``evaluate_checkpoint`` of the saved checkpoint agree exactly."""

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "training"))

from tiny_dataset import REPR_NAME, make_tiny_dataset  # noqa: E402

from evdet.evaluation.run import evaluate_checkpoint  # noqa: E402
from evdet.experiments.records.record import create_experiment  # noqa: E402
from evdet.experiments.records.run_config import dump_run_config, load_run_config  # noqa: E402
from evdet.experiments.running.runner import run_experiment  # noqa: E402


@pytest.fixture(scope="module")
def tiny_pre(tmp_path_factory) -> Path:
    """Tiny RVT-layout data (64x96, 4 channels, 2 classes; val frames past 0.5 s) with a preprocess.json."""
    root = make_tiny_dataset(tmp_path_factory.mktemp("pre"), lengths={"train": [9, 7], "val": [12, 11]})
    (root / "preprocess.json").write_text(json.dumps({
        "source_hw": [128, 192], "repr_hw": [64, 96], "downsample": "ds2_nearest", "representation": REPR_NAME,
        "label_rate_hz": 10.0}))
    return root


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_pre: Path) -> Path:
    """An experiment record trained 2 steps through the runner, validated at step 2."""
    overrides = [f"data.root={tiny_pre}", f"data.representation={REPR_NAME}", "data.seq_len=2",
                 "data.batch_size=2", "data.eval_batch_size=2", "data.num_workers=0", "data.sampling=stream",
                 "model.preset=nano", "model.partition_split=1", "model.head.conf_threshold=1e-6",
                 "model.head.max_detections=30", "training.max_steps=2", "training.val_every_n_steps=2",
                 "training.loggers=[csv]", "training.accelerator=cpu", "eval.protocols=[prophesee,full]",
                 "eval.confusion_iou=0.3", "eval.pr_confidence=0.0001",
                 "eval.conf_threshold=1e-6"]  # the run's threshold: every candidate is evaluated
    cfg = load_run_config(["demo"], overrides)
    exps = tmp_path_factory.mktemp("exps")
    create_experiment(exps, "e1", dump_run_config(cfg), "h")
    run_experiment(exps, "e1", progress=False)
    return exps / "e1"


def test_training_validation_and_eval_give_equal_digests_and_numbers(trained: Path, tiny_pre: Path):
    saved = {json.loads(p.read_text())["protocol"]: json.loads(p.read_text())
             for p in trained.rglob("validation/step_2/*_metrics.json")}
    assert set(saved) == {"prophesee", "full"}
    (ckpt,) = list(trained.rglob("checkpoints/last.ckpt"))

    evaluated = evaluate_checkpoint(ckpt, tiny_pre, "val", protocols=("prophesee", "full"), pr_confidence=0.0001,
                                    confusion_iou=0.3, progress=False, plots=False, device="cpu",
                                    conf_threshold=1e-6)
    for name, res in evaluated.items():
        d = json.loads(res.to_json())
        v = saved[name]
        fp = d["fingerprint"]
        assert fp["label_rate_hz"] == 10.0 and fp["source_resolution"] == [128, 192]
        assert fp["scoring"] == "class"
        assert v["fingerprint"]["digest"] == fp["digest"]
        assert v["fingerprint"] == fp
        assert v["counts"] == d["counts"] and d["counts"]["gt"] > 0 and d["counts"]["detections"] > 0
        for key in ("metrics", "per_class", "groups", "confusion"):
            assert v[key] == d[key], key


def test_scoring_difference_evaluates_both_conventions(trained: Path, tiny_pre: Path):
    from evdet.evaluation.run import scoring_difference

    (ckpt,) = list(trained.rglob("checkpoints/last.ckpt"))
    by_class = evaluate_checkpoint(ckpt, tiny_pre, "val", protocols=("prophesee",), progress=False, device="cpu")
    diff = scoring_difference(ckpt, tiny_pre, "val", protocols=("prophesee",), progress=False, device="cpu")
    by_obj = evaluate_checkpoint(ckpt, tiny_pre, "val", protocols=("prophesee",), scoring="obj_x_cls",
                                 progress=False, device="cpu")["prophesee"]
    for metric in ("AP", "AP50", "AP75"):
        row = diff["prophesee"][metric]
        assert row["class"] == by_class["prophesee"].metrics[metric]
        assert row["obj_x_cls"] == by_obj.metrics[metric]


def test_scoring_diff_cli_prints_both_conventions(trained: Path, tiny_pre: Path):
    from typer.testing import CliRunner

    from evdet.cli import app

    (ckpt,) = list(trained.rglob("checkpoints/last.ckpt"))
    r = CliRunner().invoke(app, ["scoring-diff", str(ckpt), "--data", str(tiny_pre), "--protocol", "prophesee"],
                           env={"COLUMNS": "250", "NO_COLOR": "1"})
    assert r.exit_code == 0, r.output
    rows = [line.split("│") for line in r.output.splitlines() if "prophesee" in line and "│" in line]
    assert {cells[2].strip() for cells in rows} >= {"AP", "AP50", "AP75"}
    r = CliRunner().invoke(app, ["scoring-diff", str(ckpt), "--data", str(tiny_pre), "--protocol", "coco"])
    assert r.exit_code == 1 and "unknown evaluation protocol 'coco'" in r.output
