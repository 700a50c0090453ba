"""`evdet export yolo`: frame rendering against plain loops, the Ultralytics layout, resuming."""

from __future__ import annotations

import numpy as np
import pytest
import yaml
from PIL import Image
from typer.testing import CliRunner

from evdet.cli import app
from evdet.data.preprocessed import PreprocessedSequence
from evdet.interop.export_yolo import render_frame
from tests.training.tiny_dataset import REPR_NAME, make_tiny_dataset

runner = CliRunner()


def histogram_image_by_loop(rep, cap):
    nbins = rep.shape[0] // 2
    out = np.zeros((rep.shape[1], rep.shape[2], 3), dtype=np.uint8)
    for y in range(rep.shape[1]):
        for x in range(rep.shape[2]):
            off = sum(int(rep[b, y, x]) for b in range(nbins))
            on = sum(int(rep[nbins + b, y, x]) for b in range(nbins))
            out[y, x, 0] = round(min(on, cap) / cap * 255)
            out[y, x, 2] = round(min(off, cap) / cap * 255)
    return out


def recency_image_by_loop(rep):
    nbins = rep.shape[0] // 2
    out = np.zeros((rep.shape[1], rep.shape[2], 3), dtype=np.uint8)
    for y in range(rep.shape[1]):
        for x in range(rep.shape[2]):
            for channel, first in ((2, 0), (0, nbins)):       # OFF -> blue, ON -> red
                active = [b for b in range(nbins) if rep[first + b, y, x] > 0]
                out[y, x, channel] = round(255 * (active[-1] + 1) / nbins) if active else 0
    return out


@pytest.mark.parametrize("seed", range(3))
def test_render_matches_plain_loops(seed):
    rng = np.random.default_rng(seed)
    rep = (rng.random((6, 5, 7)) < 0.4) * rng.integers(1, 9, (6, 5, 7))
    rep = rep.astype(np.uint8)
    np.testing.assert_array_equal(render_frame(rep, "stacked_histogram", "histogram", count_cap=7),
                                  histogram_image_by_loop(rep, 7))
    np.testing.assert_array_equal(render_frame(rep, "stacked_histogram", "time_surface"), recency_image_by_loop(rep))


def test_render_time_surface_dataset_and_refuse_other_kinds():
    ts = np.array([[[0.0, 0.5]], [[1.0, 0.2]]], dtype=np.float32)   # (2, 1, 2): OFF, ON
    img = render_frame(ts, "time_surface", "time_surface")
    assert img[0, :, 0].tolist() == [255, 51] and img[0, :, 2].tolist() == [0, 128]
    with pytest.raises(ValueError, match="cannot render a voxel_grid"):
        render_frame(np.zeros((4, 2, 2), np.float32), "voxel_grid", "histogram")


def test_export_writes_the_ultralytics_layout(tmp_path):
    pre = make_tiny_dataset(tmp_path / "pre", lengths={"train": [6], "val": [8, 5]},
                            class_names=("car", "pedestrian"))
    out = tmp_path / "yolo"
    res = runner.invoke(app, ["export", "yolo", str(pre), str(out), "--count-cap", "4"])
    assert res.exit_code == 0, res.output
    doc = yaml.safe_load((out / "data.yaml").read_text())
    assert doc["names"] == {0: "car", 1: "pedestrian"} and doc["nc"] == 2
    assert doc["train"] == "images/train" and doc["val"] == "images/val" and "test" not in doc
    assert doc["path"] == str(out.resolve())
    # label frames sit on reprs 1, 3, 5, ... -> 3 + 4 + 2 frames
    assert len(list((out / "images" / "train").glob("*.png"))) == 3
    assert len(list((out / "labels" / "val").glob("*.txt"))) == 6
    seq = PreprocessedSequence(pre / "val" / "seq_val_0", REPR_NAME)
    t1 = int(seq.label_timestamps_us[1])
    img = np.asarray(Image.open(out / "images" / "val" / f"seq_val_0_t{t1}.png"))
    np.testing.assert_array_equal(img, histogram_image_by_loop(seq.reprs(3, 4)[0], 4))
    # frame 1's box (tiny_dataset.box_of_frame): x 9, y 10, w 24, h 20, class 1, in a 96 x 64 frame
    line = (out / "labels" / "val" / f"seq_val_0_t{t1}.txt").read_text()
    assert line == f"1 {21 / 96:.6f} {20 / 64:.6f} {24 / 96:.6f} {20 / 64:.6f}\n"


def test_export_resumes_and_refuses_other_settings(tmp_path):
    pre = make_tiny_dataset(tmp_path / "pre", lengths={"val": [8]})
    out = tmp_path / "yolo"
    assert runner.invoke(app, ["export", "yolo", str(pre), str(out), "--split", "val"]).exit_code == 0
    (out / "images" / "val" / "seq_val_0_t100000.png").unlink()
    (out / "labels" / "val" / "seq_val_0_t100000.txt").unlink()
    res = runner.invoke(app, ["export", "yolo", str(pre), str(out), "--split", "val"])
    assert res.exit_code == 0 and "(3 already there)" in res.output
    assert (out / "images" / "val" / "seq_val_0_t100000.png").exists()
    res = runner.invoke(app, ["export", "yolo", str(pre), str(out), "--split", "val", "-r", "time_surface"])
    assert res.exit_code == 1 and "evdet_export.json" in res.output and "Traceback" not in res.output
    res = runner.invoke(app, ["export", "yolo", str(pre), str(tmp_path / "o2"), "--split", "test"])
    assert res.exit_code == 1 and "no split(s) ['test']" in res.output
