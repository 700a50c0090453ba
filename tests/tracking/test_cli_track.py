"""`evdet track` and `evdet eval-tracks` through the CLI, on a raw-layout dataset with track ids."""

from __future__ import annotations

import json

import yaml
from typer.testing import CliRunner

from evdet.cli import app
from evdet.data.labels import load_labels, save_labels
from tests.tracking.cases import random_case

runner = CliRunner()


def make_dataset(root, n_seq=2):
    (root / "val").mkdir(parents=True)
    (root / "dataset.yaml").write_text(yaml.safe_dump({"classes": {"names": ["a", "b"], "groups": {}}}))
    dets_dir = root / "dets"
    dets_dir.mkdir()
    for k in range(n_seq):
        gt, _ = random_case(k, objects=5, classes=2)
        save_labels(root / "val" / f"seq{k}_bbox.npy", gt)
        dets = gt.copy()
        dets["track_id"] = 0
        dets["class_confidence"] = 0.9
        save_labels(dets_dir / f"seq{k}_bbox.npy", dets)
    return dets_dir


def test_track_then_eval_ground_truth_scores_about_one(tmp_path):
    dets = make_dataset(tmp_path / "data")
    out = tmp_path / "tracks"
    res = runner.invoke(app, ["track", str(dets), "--out", str(out)])
    assert res.exit_code == 0, res.output
    tracks = load_labels(out / "seq0_bbox.npy")
    assert tracks.size > 0 and tracks["track_id"].min() >= 1
    assert json.loads((out / "tracker.json").read_text())["config"]["high_score"] == 0.5
    res = runner.invoke(app, ["eval-tracks", str(tmp_path / "data"), str(out), "--split", "val",
                              "--json", str(tmp_path / "m.json")])
    assert res.exit_code == 0, res.output
    assert "HOTA" in res.output and "overall" in res.output
    overall = json.loads((tmp_path / "m.json").read_text())["overall"]
    assert overall["HOTA"] > 0.9 and overall["MOTA"] > 0.9 and overall["IDSW"] == 0


def test_track_resumes_and_refuses_other_settings(tmp_path):
    dets = make_dataset(tmp_path / "data")
    out = tmp_path / "tracks"
    assert runner.invoke(app, ["track", str(dets), "--out", str(out)]).exit_code == 0
    again = runner.invoke(app, ["track", str(dets), "--out", str(out)])
    assert again.exit_code == 0 and "(2 already done)" in again.output
    other = runner.invoke(app, ["track", str(dets), "--out", str(out), "--high-score", "0.7"])
    assert other.exit_code == 1 and "tracker.json" in other.output and "Traceback" not in other.output


def test_eval_tracks_errors_name_the_file(tmp_path):
    dets = make_dataset(tmp_path / "data")
    (dets / "seq1_bbox.npy").unlink()
    res = runner.invoke(app, ["eval-tracks", str(tmp_path / "data"), str(dets)])
    assert res.exit_code == 1 and "seq1_bbox.npy" in res.output
    bad = load_labels(dets / "seq0_bbox.npy")
    bad["class_id"][3] = 7
    save_labels(dets / "seq1_bbox.npy", bad)
    res = runner.invoke(app, ["eval-tracks", str(tmp_path / "data"), str(dets)])
    assert res.exit_code == 1 and "seq1_bbox.npy: row 3: class_id 7" in res.output
    res = runner.invoke(app, ["track", str(tmp_path / "nothing"), "--out", str(tmp_path / "t")])
    assert res.exit_code == 1 and "no *_bbox.npy" in res.output


def test_eval_tracks_in_representation_pixels(tmp_path):
    from evdet.data.preprocessed import PreprocessedSequence
    from tests.training.tiny_dataset import REPR_NAME, make_tiny_dataset

    pre = make_tiny_dataset(tmp_path / "pre", lengths={"val": [12]})
    rdir = pre / "val" / "seq_val_0" / "event_representations_v2" / REPR_NAME
    (rdir / "event_representations.h5").rename(rdir / "event_representations_ds2_nearest.h5")  # sensor = 2x repr
    tracks = tmp_path / "tracks"
    tracks.mkdir()
    with PreprocessedSequence(pre / "val" / "seq_val_0", REPR_NAME) as seq:
        save_labels(tracks / "seq_val_0_bbox.npy", seq.all_labels(in_repr_pixels=True))
    out = tmp_path / "m.json"
    res = runner.invoke(app, ["eval-tracks", str(pre), str(tracks), "--pixels", "repr", "--json", str(out)])
    assert res.exit_code == 0, res.output
    assert json.loads(out.read_text())["overall"]["MOTA"] == 1.0
    res = runner.invoke(app, ["eval-tracks", str(pre), str(tracks), "--json", str(out)])   # read as sensor pixels
    assert res.exit_code == 0 and json.loads(out.read_text())["overall"]["TP"] == 0          # IoU 0.25 < 0.5
    raw = tmp_path / "raw"
    make_dataset(raw)
    res = runner.invoke(app, ["eval-tracks", str(raw), str(raw / "dets"), "--pixels", "repr"])
    assert res.exit_code == 1 and "no representation pixels" in res.output
