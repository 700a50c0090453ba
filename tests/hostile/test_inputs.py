"""Hostile data and options outside experiments: YOLO folders, tracker scores, sensor sizes, config ranges."""

import numpy as np
import pytest

from evdet.data.config import AugmentConfig, DataConfig
from evdet.events import make_events
from evdet.models.config import HeadConfig
from evdet.training.config import TrainConfig
from evdet.utils.value_checks import ConfigValueError
from hostile_files import one_line_error


def test_eval_detections_on_an_empty_yolo_folder_is_refused(tiny_root, tmp_path):
    empty = tmp_path / "dets"
    empty.mkdir()
    root = tmp_path / "experiments"
    line = one_line_error(["eval-detections", tiny_root, empty, "--format", "yolo", "--save-as", "ghost",
                           "--root", root])
    assert f"{empty}: no prediction file for any labelled frame" in line and "0 .txt files" in line
    assert "seq_val_0_t" in line                     # an example of the expected names
    assert not (root / "ghost").exists()


def test_undecodable_yolo_file_is_named(tiny_root, tmp_path):
    from evdet.evaluation.dataset import load_ground_truth

    dets = tmp_path / "dets"
    dets.mkdir()
    truth = load_ground_truth(tiny_root, "val", "stacked_histogram_dt=50_nbins=2", ["seq_val_0"])
    t_us = int(np.unique(truth["seq_val_0"].boxes["t"])[0])
    bad = dets / f"seq_val_0_t{t_us}.txt"
    bad.write_bytes(b"\xff\xfe\x00\x81 not text")
    line = one_line_error(["eval-detections", tiny_root, dets, "--format", "yolo"])
    assert f"{bad}: not a text file of boxes" in line


def test_track_new_track_score_above_one_is_refused(tmp_path):
    (tmp_path / "dets").mkdir()
    line = one_line_error(["track", tmp_path / "dets", "--out", tmp_path / "tracks", "--new-track-score", "5"])
    assert line == "error: --new-track-score: must be in [0, 1], got 5.0"
    assert not (tmp_path / "tracks").exists()


def test_predict_on_npy_names_the_sensor_option(good_ckpt, tmp_path):
    rec = tmp_path / "rec.npy"
    np.save(rec, make_events(np.arange(10), np.arange(10) % 8, np.arange(10) % 6, np.arange(10) % 2,
                             height=6, width=8))
    line = one_line_error(["predict", good_ckpt, rec, "--out", tmp_path / "p"])
    assert f"{rec}: the file does not state its sensor size; pass --sensor WIDTHxHEIGHT" in line
    assert "default=" not in line


@pytest.mark.parametrize("build, key, problem", [
    (lambda: TrainConfig(lr=-5.0), "lr", "must be a finite number > 0, got -5.0"),
    (lambda: TrainConfig(lr=float("inf")), "lr", "must be a finite number > 0, got inf"),
    (lambda: TrainConfig(max_steps=-1), "max_steps", "must be a finite number >= 1, got -1"),
    (lambda: TrainConfig(warmup_frac=float("nan")), "warmup_frac", "must be in [0, 1], got nan"),
    (lambda: DataConfig(batch_size=0), "batch_size", "must be a finite number >= 1, got 0"),
    (lambda: DataConfig(seq_len=-3), "seq_len", "must be a finite number >= 1, got -3"),
    (lambda: AugmentConfig(flip_prob=1.5), "flip_prob", "must be in [0, 1], got 1.5"),
    (lambda: HeadConfig(nms_iou=-0.1), "nms_iou", "must be in [0, 1], got -0.1"),
])
def test_config_values_out_of_range_are_refused_naming_the_field(build, key, problem):
    with pytest.raises(ConfigValueError) as err:
        build()
    assert err.value.key == key and err.value.problem == problem


def test_config_boundaries_are_accepted():
    TrainConfig(max_steps=1, lr=1e-12, warmup_frac=0.0, grad_clip_value=0.0)
    DataConfig(batch_size=1, seq_len=1, num_workers=0, augment=AugmentConfig(flip_prob=1.0, zoom_in_max=1.0))
    HeadConfig(conf_threshold=0.0, nms_iou=1.0, max_detections=None)
