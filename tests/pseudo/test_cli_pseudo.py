"""evdet pseudo-label / pseudo-quality end to end on tiny data, self-training rounds, one-line errors."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
from tiny_dataset import make_tiny_dataset
from typer.testing import CliRunner

from evdet.cli import app
from evdet.data.datamodule import EventDataModule
from evdet.data.label_subset import withheld_label_frames
from evdet.data.preprocessed import PreprocessedSequence
from evdet.pseudo.dataset import load_provenance

runner = CliRunner()
OPEN = ["--score-thr", "0", "--class-thr", "0", "--candidate-score", "0", "--track-score", "0"]


@pytest.fixture(scope="module")
def teacher(nano_cfgs, tmp_path_factory) -> Path:
    """A nano teacher trained 2 steps on half the labels (seed 0)."""
    from evdet.training.fit import fit

    data, model, loss, train = nano_cfgs
    res = fit(dataclasses.replace(data, label_fraction=0.5), model, loss, dataclasses.replace(train, max_steps=2),
              tmp_path_factory.mktemp("teacher") / "run", progress=False)
    return Path(res["last_ckpt"])


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def test_pseudo_label_writes_a_trainable_dataset_with_provenance(teacher, tiny_root, nano_cfgs, tmp_path):
    out = tmp_path / "pseudo"
    res = invoke("pseudo-label", teacher, tiny_root, out, *OPEN, "--refine", "track", "--min-track-len", "1",
                 "--quality")
    assert res.exit_code == 0, res.output
    assert "withheld 0.5 by frames, seed 0" in res.output
    assert (out / "quality" / "quality_sweep.png").is_file()
    withheld = withheld_label_frames(tiny_root, 0.5, "frames", 0)
    for name, frames in withheld.items():
        src = PreprocessedSequence(tiny_root / "train" / name, nano_cfgs[0].representation)
        prov = load_provenance(out / "train" / name)
        assert prov["withheld_t_us"].tolist() == src.label_timestamps_us[frames].tolist()
        back = PreprocessedSequence(out / "train" / name, nano_cfgs[0].representation)
        true_rows = back.all_labels(in_repr_pixels=False)[~prov["is_pseudo"]]
        kept = np.setdiff1d(np.arange(src.num_label_frames), frames)
        np.testing.assert_array_equal(true_rows, np.concatenate([src.label_frame(f, False) for f in kept]))
    assert (out / "val").is_dir() and sorted(p.name for p in (out / "val").iterdir()) == ["seq_val_0", "seq_val_1"]
    # the student trains on it: every written label frame is labelled
    dm = EventDataModule(dataclasses.replace(nano_cfgs[0], root=str(out), sampling="stream"))
    written = sum(PreprocessedSequence(p, nano_cfgs[0].representation).num_label_frames
                  for p in sorted((out / "train").iterdir()))
    assert sum(int(b["label_mask"].sum()) for b in dm.train_dataloader()) == written
    # same settings resume (nothing to do), other settings are refused
    assert invoke("pseudo-label", teacher, tiny_root, out, *OPEN, "--refine", "track", "--min-track-len",
                  "1").exit_code == 0
    res = invoke("pseudo-label", teacher, tiny_root, out, "--score-thr", "0.5")
    assert res.exit_code == 1 and "other settings" in res.output
    res = invoke("pseudo-quality", tiny_root, out, "--boxes", "written", "--out", tmp_path / "q")
    assert res.exit_code == 0, res.output
    assert json.loads((tmp_path / "q" / "quality.json").read_text())["frames"] == 6


def _one_line_error(res, *fragments):
    assert res.exit_code == 1
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), res.output
    for f in fragments:
        assert f in lines[0], lines[0]


def test_bad_inputs_fail_before_work(teacher, tiny_root, tmp_path):
    out = tmp_path / "never"
    _one_line_error(invoke("pseudo-label", teacher, tiny_root, out, "--label-fraction", "1.5"),
                    "--label-fraction", "(0, 1]")
    _one_line_error(invoke("pseudo-label", teacher, tiny_root, out, "--label-fraction", "1"), "nothing to pseudo-label")
    other_res = make_tiny_dataset(tmp_path / "small", lengths={"train": [5], "val": [3]}, height=32, width=48)
    _one_line_error(invoke("pseudo-label", teacher, other_res, out), "32 x 48", "64 x 96")
    other_cls = make_tiny_dataset(tmp_path / "cls", lengths={"train": [5], "val": [3]},
                                  class_names=("car", "pedestrian", "bicycle"))
    _one_line_error(invoke("pseudo-label", teacher, other_cls, out), "dataset.yaml", "differ")
    unlabelled = make_tiny_dataset(tmp_path / "nolabels", lengths={"train": [1, 1], "val": [3]})
    _one_line_error(invoke("pseudo-label", teacher, unlabelled, out), "no labelled frame")
    _one_line_error(invoke("pseudo-label", tmp_path / "missing.ckpt", tiny_root, out), "missing.ckpt")
    _one_line_error(invoke("pseudo-label", teacher, tiny_root, out, "--refine", "sideways"), "sideways")
    assert not out.exists()


def test_self_training_round(nano_cfgs, tiny_root, tmp_path):
    from evdet.pseudo import PseudoLabelSettings
    from evdet.pseudo.selftrain import self_train
    from evdet.training.fit import fit

    data, model, loss, train = nano_cfgs
    trained = []

    def train_round(r, dataset):
        fraction = 0.5 if r == 0 else 1.0
        res = fit(dataclasses.replace(data, root=str(dataset), label_fraction=fraction), model, loss,
                  dataclasses.replace(train, max_steps=1, val_every_n_steps=1), tmp_path / f"r{r}", progress=False)
        trained.append((r, Path(dataset)))
        return Path(res["last_ckpt"])

    history = self_train(tiny_root, tmp_path / "st", 1, train_round,
                         PseudoLabelSettings(score_thr=0.0, class_thr=0.0, candidate_score=0.0), progress=False)
    assert trained == [(0, tiny_root), (1, tmp_path / "st" / "pseudo_r1")]
    assert [h["round"] for h in history] == [0, 1]
    assert history[1]["pseudo"]["frames_pseudo"] + history[1]["pseudo"]["frames_empty"] == 6
    assert (tmp_path / "st" / "pseudo_r1" / "quality" / "quality_sweep.png").is_file()
    assert json.loads((tmp_path / "st" / "self_train.json").read_text())[1]["round"] == 1
