"""`evdet eval-detections`: YOLO and Prophesee files under evdet's protocols, errors, experiment records."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from evdet.cli import app
from evdet.data.labels import save_labels
from evdet.data.preprocessed import PreprocessedSequence
from tests.training.tiny_dataset import REPR_NAME, make_tiny_dataset

runner = CliRunner()
LENGTHS = {"val": [30, 24]}      # label frames up to 1.5 s: the protocols skip the first 0.5 s


@pytest.fixture
def exported(tmp_path):
    pre = make_tiny_dataset(tmp_path / "pre", lengths=LENGTHS)
    out = tmp_path / "yolo"
    assert runner.invoke(app, ["export", "yolo", str(pre), str(out)]).exit_code == 0
    return pre, out


def gt_as_yolo_detections(label_dir, dets_dir, shift_cx=0.0):
    """Every exported label line with confidence 1 (optionally moved right by shift_cx)."""
    dets_dir.mkdir(parents=True)
    for f in label_dir.glob("*.txt"):
        lines = []
        for line in f.read_text().splitlines():
            c, cx, cy, w, h = line.split()
            lines.append(f"{c} {min(float(cx) + shift_cx, 1.0):.6f} {cy} {w} {h} 1.0\n")
        (dets_dir / f.name).write_text("".join(lines))


def test_ground_truth_round_trip_scores_ap_one(exported, tmp_path):
    pre, out = exported
    dets = tmp_path / "run" / "labels"                  # Ultralytics' predict layout
    gt_as_yolo_detections(out / "labels" / "val", dets)
    res = runner.invoke(app, ["eval-detections", str(pre), str(tmp_path / "run"), "--format", "yolo",
                              "--protocol", "full"])
    assert res.exit_code == 0, res.output
    assert "AP=1.0000" in res.output and "AP50=1.0000" in res.output
    assert "27 file(s)" in res.output                  # label frames on reprs 1, 3, ...: 15 + 12


def test_boxes_off_target_score_zero(exported, tmp_path):
    pre, out = exported
    gt_as_yolo_detections(out / "labels" / "val", tmp_path / "dets", shift_cx=0.5)   # IoU 0 with every GT
    res = runner.invoke(app, ["eval-detections", str(pre), str(tmp_path / "dets"), "--format", "yolo",
                              "-p", "full"])
    assert res.exit_code == 0, res.output
    assert "AP=0.0000" in res.output


def test_bad_yolo_file_is_a_one_line_error(exported, tmp_path):
    pre, out = exported
    dets = tmp_path / "dets"
    gt_as_yolo_detections(out / "labels" / "val", dets)
    bad = sorted(dets.glob("seq_val_1_*.txt"))[2]
    bad.write_text("0 0.5 0.5 0.1 0.1 0.9\n9 0.5 0.5 0.1 0.1 0.9\n")
    res = runner.invoke(app, ["eval-detections", str(pre), str(dets), "--format", "yolo"])
    assert res.exit_code == 1 and "Traceback" not in res.output
    assert f"{bad}:2: class '9' is not one of the 2 class ids 0..1" in res.output
    assert len(res.output.strip().splitlines()) == 1


def test_prophesee_files_in_sensor_pixels(tmp_path):
    pre = make_tiny_dataset(tmp_path / "pre", lengths=LENGTHS)
    for seq_dir in (pre / "val").iterdir():        # pretend the data was downsampled 2x from the sensor
        rdir = seq_dir / "event_representations_v2" / REPR_NAME
        (rdir / "event_representations.h5").rename(rdir / "event_representations_ds2_nearest.h5")
    dets = tmp_path / "dets"
    dets.mkdir()
    for seq_dir in (pre / "val").iterdir():
        seq = PreprocessedSequence(seq_dir, REPR_NAME)
        boxes = seq.all_labels(in_repr_pixels=False)            # sensor pixels, as Prophesee files are
        boxes["class_confidence"] = 0.8
        save_labels(dets / f"{seq.name}_bbox.npy", boxes)
    args = ["eval-detections", str(pre), str(dets), "--format", "prophesee", "-p", "full"]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    assert "AP=1.0000" in res.output
    res = runner.invoke(app, [*args, "--pixels", "repr"])      # read as representation pixels: boxes 2x too big
    assert res.exit_code == 0 and "AP=1.0000" not in res.output
    (dets / "seq_val_1_bbox.npy").unlink()
    res = runner.invoke(app, args)
    assert res.exit_code == 1 and "seq_val_1_bbox.npy: no such file" in res.output


def test_save_as_experiment_ranks_beside_runs(exported, tmp_path):
    pre, out = exported
    gt_as_yolo_detections(out / "labels" / "val", tmp_path / "dets")
    root = tmp_path / "experiments"
    res = runner.invoke(app, ["eval-detections", str(pre), str(tmp_path / "dets"), "--format", "yolo",
                              "--save-as", "yolo_gt", "--root", str(root)])
    assert res.exit_code == 0, res.output
    doc = json.loads((root / "yolo_gt" / "results.json").read_text())
    assert doc["status"] == "completed" and set(doc["protocols"]) == {"prophesee", "full"}
    assert doc["protocols"]["full"]["metrics"]["AP"] == pytest.approx(1.0)
    assert doc["external"]["format"] == "yolo"
    assert (root / "yolo_gt" / "validation" / "detections.npz").exists()
    hypothesis = (root / "yolo_gt" / "hypothesis.md").read_text()
    assert hypothesis.startswith("# yolo_gt\n\n## Question\nHow does an external detector (yolo files) score on ")
    assert hypothesis.endswith("\n\n## Hypothesis\nExternal baseline, evaluated as is.\n")
    ranked = runner.invoke(app, ["exp", "rank", "--root", str(root), "--protocol", "full", "--n-boot", "50"])
    assert ranked.exit_code == 0, ranked.output
    assert "yolo_gt" in ranked.output
    again = runner.invoke(app, ["eval-detections", str(pre), str(tmp_path / "dets"), "--format", "yolo",
                                "--save-as", "yolo_gt", "--root", str(root)])
    assert again.exit_code == 1 and "already exists" in again.output
