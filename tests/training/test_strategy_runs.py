"""Every training strategy switch in a test-sized CPU run: finite losses, and the switch visibly acting."""

import csv
import dataclasses
import math

import numpy as np
import pytest
import yaml
from tiny_dataset import REPR_NAME, make_tiny_dataset

from evdet.data.config import AugmentConfig, DataConfig, MultiResConfig, SampleWeightConfig
from evdet.models.config import (
    ClassBalanceConfig,
    HardNegativeConfig,
    HeadConfig,
    LossConfig,
    ModelConfig,
    SizeFeedbackConfig,
)
from evdet.training.config import DistillConfig, TemporalConsistencyConfig, TrainConfig
from evdet.training.fit import fit

R = dataclasses.replace


def _relabel(root):
    """One track per sequence (track id 1), boxes alternating 24x20 and 8x8, pedestrians as the small group."""
    (root / "dataset.yaml").write_text(yaml.safe_dump(
        {"classes": {"names": ["car", "pedestrian"], "groups": {"small_road_users": ["pedestrian"]}}}))
    for path in root.glob("*/*/labels_v2/labels.npz"):
        z = dict(np.load(path))
        labels = z["labels"].copy()
        labels["track_id"] = 1
        labels["w"][1::2], labels["h"][1::2] = 8.0, 8.0
        np.savez(path, **{**z, "labels": labels})


@pytest.fixture(scope="module")
def strat_root(tmp_path_factory):
    root = make_tiny_dataset(tmp_path_factory.mktemp("strat"), lengths={"train": [11, 9], "val": [8]})
    _relabel(root)
    return root


@pytest.fixture(scope="module")
def cfgs(strat_root):
    data = DataConfig(root=str(strat_root), representation=REPR_NAME, sampling="stream", seq_len=4, batch_size=2,
                      eval_batch_size=1, num_workers=0, augment=AugmentConfig(flip_prob=0.5))
    model = ModelConfig(preset="nano", partition_split=1, head=HeadConfig(conf_threshold=0.01, max_detections=20))
    train = TrainConfig(max_steps=2, val_every_n_steps=2, log_every_n_steps=1, loggers=("csv",), limit_val_batches=1,
                        accelerator="cpu")
    return data, model, LossConfig(), train


def run(tmp_path, data, model, loss, train):
    fit(data, model, loss, train, tmp_path, progress=False)
    with open(tmp_path / "logs" / "metrics.csv", newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r.get("train/loss")]
    assert len(rows) == 2 and all(math.isfinite(float(r["train/loss"])) for r in rows)
    return rows


CASES = {
    "event_dropout": lambda d, ls, t: (R(d, augment=AugmentConfig(dropout_prob=1.0, dropout_rate=0.5)), ls, t),
    "time_reversal": lambda d, ls, t: (R(d, augment=AugmentConfig(time_reversal_prob=1.0)), ls, t),
    "noise_background_activity": lambda d, ls, t: (
        R(d, augment=AugmentConfig(noise_prob=1.0, noise_rate_hz=20.0, hot_pixels=3)), ls, t),
    "small_object_sampling_random": lambda d, ls, t: (
        R(d, sampling="random", sample_weighting=SampleWeightConfig(mode="small_objects")), ls, t),
    "class_sampling_streams": lambda d, ls, t: (R(d, sample_weighting=SampleWeightConfig(mode="class_effective")), ls, t),
    "multires_random": lambda d, ls, t: (R(d, sampling="random", multires=MultiResConfig(scales=(0.5, 1.0, 1.5))), ls, t),
    "multires_mixed_jitter": lambda d, ls, t: (
        R(d, sampling="mixed", multires=MultiResConfig(scales=(0.5, 1.0), jitter=(0.8, 1.2))), ls, t),
    "eval_scale": lambda d, ls, t: (R(d, multires=MultiResConfig(eval_scale=2.0)), ls, t),
    "class_balanced_loss": lambda d, ls, t: (d, R(ls, class_balance=ClassBalanceConfig(mode="effective")), t),
    "hard_negative": lambda d, ls, t: (d, R(ls, hard_negative=HardNegativeConfig(ratio=3.0)), t),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_switch_runs_without_nan(name, cfgs, tmp_path):
    data, model, loss, train = cfgs
    d, ls, t = CASES[name](data, loss, train)
    run(tmp_path, d, model, ls, t)


def test_size_feedback_logs_a_moving_schedule(cfgs, tmp_path):
    data, model, loss, train = cfgs
    rows = run(tmp_path, data, model, R(loss, size_feedback=SizeFeedbackConfig(enabled=True, edges_px=(16.0,))), train)
    # two buckets (8x8 and 24x20 boxes): after the first step the weights differ from 1 somewhere
    weights = [float(rows[-1][k]) for k in ("train/size_w/0px", "train/size_w/16px")]
    assert all(1.0 <= w <= 2.5 for w in weights) and max(weights) > 1.0


def test_temporal_consistency_finds_track_pairs(cfgs, tmp_path):
    data, model, loss, train = cfgs
    rows = run(tmp_path, data, model, loss, R(train, temporal_consistency=TemporalConsistencyConfig(weight=1.0)))
    assert sum(float(r["train/temporal_pairs"]) for r in rows) > 0
    assert all(float(r["train/temporal"]) >= 0 for r in rows)


def test_sampling_report_is_printed_at_training_start(cfgs, tmp_path, capsys):
    data, model, loss, train = cfgs
    run(tmp_path, R(data, sampling="random", sample_weighting=SampleWeightConfig(mode="small_objects")), model, loss,
        train)
    out = capsys.readouterr().out
    assert "sample weighting small_objects" in out and "small-box share uniform" in out


@pytest.mark.slow
def test_distillation_from_a_2x_teacher_of_another_preset(cfgs, tmp_path):
    data, model, loss, train = cfgs
    teacher_root = make_tiny_dataset(tmp_path / "data2x", lengths={"train": [9], "val": [8]}, height=128, width=192)
    _relabel(teacher_root)
    fit(R(data, root=str(teacher_root)), R(model, in_stages=(1, 2, 3, 4)), loss, R(train, max_steps=1),
        tmp_path / "teacher", progress=False)
    distill = DistillConfig(teacher_ckpt=str(tmp_path / "teacher" / "checkpoints" / "last.ckpt"))
    rows = run(tmp_path / "student", data, model, loss, R(train, distill=distill))
    assert all(float(r["train/distill_feat"]) > 0 and math.isfinite(float(r["train/distill_resp"])) for r in rows)
