"""`evdet eval` / `evdet predict` with a wrong checkpoint or dataset: one-line errors naming the file."""

import dataclasses

import pytest
import torch
from typer.testing import CliRunner

from evdet.cli import app
from evdet.models import build_model
from evdet.training.checkpoints import CheckpointError
from evdet.training.fit import fit
from evdet.training.predict import load_module, predict_sequences

from tiny_dataset import make_tiny_dataset

runner = CliRunner()


@pytest.fixture(scope="module")
def ckpt(tiny_cfgs, tmp_path_factory):
    """A real 2-step nano checkpoint of the tiny dataset (64 x 96, 4 channels, car / pedestrian)."""
    data, model, loss, train = tiny_cfgs
    out = tmp_path_factory.mktemp("ckpt_errors")
    train = dataclasses.replace(train, max_steps=2, val_every_n_steps=2, limit_val_batches=1)
    return fit(data, model, loss, train, out, progress=False)["last_ckpt"]


def one_line_error(args):
    result = runner.invoke(app, args)
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    return lines[0]


def with_weights_of(ckpt_path, tmp_path, **model_changes):
    """The checkpoint with its config kept and its weights replaced by those of another model."""
    saved = torch.load(ckpt_path, map_location="cpu", weights_only=False)
    hp = saved["hyper_parameters"]
    cfg = dataclasses.replace(load_module(ckpt_path).model_cfg, **model_changes)
    other = build_model(cfg, hp["num_classes"], tuple(hp["input_hw"]), hp["in_channels"])
    saved["state_dict"] = {f"model.{k}": v for k, v in other.state_dict().items()}
    path = tmp_path / "other.ckpt"
    torch.save(saved, path)
    return path


def test_weights_of_another_scale_count_or_preset(ckpt, tiny_root, tmp_path):
    four = with_weights_of(ckpt, tmp_path, in_stages=(1, 2, 3, 4))
    line = one_line_error(["eval", str(four), f"data={tiny_root}"])
    assert f"{four}: the weights do not fit the model its config describes" in line
    assert "in_stages [2, 3, 4]" in line and "the file's head has 4 FPN levels, the model's 3" in line
    tiny = with_weights_of(ckpt, tmp_path, preset="tiny")
    line = one_line_error(["eval", str(tiny), f"data={tiny_root}"])
    assert "preset nano" in line and "reshaped" in line and "in the file" in line


def test_truncated_and_foreign_files(ckpt, tiny_root, tmp_path):
    data = open(ckpt, "rb").read()
    cut = tmp_path / "cut.ckpt"
    cut.write_bytes(data[: len(data) // 2])
    assert f"{cut}: not a readable checkpoint, truncated" in one_line_error(["eval", str(cut), f"data={tiny_root}"])
    text = tmp_path / "config.ckpt"
    text.write_text("model:\n  preset: nano\n")
    assert f"{text}: not a readable checkpoint" in one_line_error(["eval", str(text), f"data={tiny_root}"])
    plain = tmp_path / "weights.pt"
    torch.save(load_module(ckpt).model.state_dict(), plain)
    assert f"{plain}: not a training checkpoint" in one_line_error(["eval", str(plain), f"data={tiny_root}"])
    no_config = tmp_path / "no_config.ckpt"
    torch.save({"state_dict": {}, "hyper_parameters": {"lr": 1.0}}, no_config)
    line = one_line_error(["eval", str(no_config), f"data={tiny_root}"])
    assert f"{no_config}: not an evdet checkpoint: hyper_parameters lack ['data_cfg'" in line
    # predict loads the checkpoint the same way (the recording is not read before)
    line = one_line_error(["predict", str(cut), str(tmp_path / "rec.h5"), "--out", str(tmp_path / "p")])
    assert f"{cut}: not a readable checkpoint" in line


def test_dataset_of_another_resolution_or_class_map(ckpt, tmp_path):
    small = make_tiny_dataset(tmp_path / "small", lengths={"val": [4]}, height=32, width=64)
    line = one_line_error(["eval", str(ckpt), f"data={small}"])
    assert f"{small / 'val' / 'seq_val_0'}: representations are 4 x 32 x 64" in line
    assert "model takes 4 x 64 x 96" in line
    other = make_tiny_dataset(tmp_path / "other", lengths={"val": [4]}, class_names=("car", "bus"))
    with pytest.raises(ValueError, match=r"classes \['car', 'bus'\] differ from the checkpoint's \['car', 'pedes"):
        predict_sequences(ckpt, other, "val", progress=False)


def test_good_checkpoint_loads_with_its_weights(ckpt):
    module = load_module(ckpt)
    saved = torch.load(ckpt, map_location="cpu", weights_only=False)["state_dict"]
    assert all(torch.equal(v, saved[k]) for k, v in module.state_dict().items())
    with pytest.raises(CheckpointError):
        load_module(__file__)
