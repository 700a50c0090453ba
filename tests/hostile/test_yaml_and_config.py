"""Invalid YAML (config files, overrides, dataset.yaml) and out-of-range config values: one line naming it."""

import shutil

import pytest

from evdet.data.labels import empty_boxes, save_labels

from hostile_files import one_line_error

BROKEN = "model:\n  preset: [nano, tiny\n  patch_size: 4\n"      # unclosed flow sequence, line 3 column 13


def test_invalid_yaml_config_file_names_file_line_and_column(tmp_path):
    cfg = tmp_path / "broken.yaml"
    cfg.write_text(BROKEN)
    line = one_line_error(["exp", "new", "x", "--hypothesis", "h", "-c", cfg, "--root", tmp_path / "exps"])
    assert f"{cfg}: not valid YAML (line 3, column 13:" in line
    assert not (tmp_path / "exps" / "x").exists()


def test_invalid_yaml_override_is_named(tmp_path):
    line = one_line_error(["exp", "new", "x", "--hypothesis", "h", "training.lr=[1,", "--root", tmp_path / "exps"])
    assert "override 'training.lr=[1,': not a valid YAML value" in line


@pytest.mark.parametrize("override, message", [
    ("training.lr=-5", "training.lr: must be a finite number > 0, got -5.0"),
    ("data.batch_size=0", "data.batch_size: must be a finite number >= 1, got 0"),
    ("data.seq_len=-3", "data.seq_len: must be a finite number >= 1, got -3"),
    ("training.max_steps=-1", "training.max_steps: must be a finite number >= 1, got -1"),
    ("data.augment.flip_prob=1.5", "data.augment.flip_prob: must be in [0, 1], got 1.5"),
    ("training.lr=.inf", "training.lr: must be a finite number > 0, got inf"),
])
def test_exp_new_refuses_out_of_range_values_naming_the_key(tmp_path, override, message):
    line = one_line_error(["exp", "new", "x", "--hypothesis", "h", override, "--root", tmp_path / "exps"])
    assert line == f"error: {message}"
    assert not (tmp_path / "exps" / "x").exists()


def test_train_refuses_them_too(tmp_path):
    line = one_line_error(["train", "data.batch_size=0", "--name", "x", "--root", tmp_path / "exps"])
    assert "data.batch_size: must be a finite number >= 1, got 0" in line


def test_invalid_dataset_yaml_names_the_file_in_stats(tiny_root, tmp_path):
    pre = tmp_path / "pre"
    shutil.copytree(tiny_root, pre, symlinks=True)
    (pre / "dataset.yaml").write_text(BROKEN)
    assert f"{pre / 'dataset.yaml'}: not valid YAML (line 3" in one_line_error(["stats", pre])


def test_invalid_dataset_yaml_names_the_file_in_preprocess(real_data_dir, tmp_path):
    raw = tmp_path / "raw"
    (raw / "train").mkdir(parents=True)
    shutil.copy(real_data_dir / "ncars-dat" / "ncars_obj_004397_td.dat", raw / "train" / "rec_td.dat")
    box = empty_boxes(1)
    box[0] = (600_000, 1.0, 1.0, 20.0, 20.0, 0, 0, 1.0)
    save_labels(raw / "train" / "rec_bbox.npy", box)
    (raw / "dataset.yaml").write_text(BROKEN)
    line = one_line_error(["preprocess", raw, tmp_path / "pre", "--workers", "1"])
    assert f"{raw / 'dataset.yaml'}: not valid YAML (line 3" in line
