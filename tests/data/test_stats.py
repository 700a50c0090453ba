"""Dataset statistics on hand-made raw and preprocessed datasets, and the `stats` / `preprocess`
commands."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from evdet.cli import app
from evdet.data.classes import ClassMap, write_dataset_yaml
from evdet.data.labels import BBOX_DTYPE, save_labels
from evdet.data.preprocess import preprocess_dataset
from evdet.data.stats import dataset_stats, event_rate
from evdet.events import EVENT_DTYPE, write_events_h5

runner = CliRunner()
H, W = 40, 60


def boxes_from(rows):
    out = np.zeros(len(rows), BBOX_DTYPE)
    for i, (t, w, h, c) in enumerate(rows):
        out[i]["t"], out[i]["x"], out[i]["y"], out[i]["w"], out[i]["h"], out[i]["class_id"] = t, 1, 1, w, h, c
    return out


# class 0 ("ped"): areas 100, 200, 300, 400, 500; w/h 1, 2, 0.75, 4, 5
PED = [(10, 10, 0), (20, 10, 0), (15, 20, 0), (40, 10, 0), (50, 10, 0)]
# class 1 ("car"): three 40x50 boxes (area 2000, w/h 0.8)
CAR = [(40, 50, 1)] * 3


def events(n, t_last):
    ev = np.zeros(n, EVENT_DTYPE)
    ev["t"] = np.linspace(0, t_last, n).astype(np.int64)
    ev["x"] = np.arange(n) % W
    ev["y"] = np.arange(n) % H
    ev["p"] = np.arange(n) % 2
    return ev


@pytest.fixture()
def raw(tmp_path):
    root = tmp_path / "raw"
    root.mkdir()
    write_dataset_yaml(root, ClassMap(("ped", "car")), resolution=[H, W])   # for the .npy events
    (root / "train").mkdir()
    (root / "val").mkdir()
    train = [(100_000 * (1 + i % 2), w, h, c) for i, (w, h, c) in enumerate(PED)]
    save_labels(root / "train" / "a_bbox.npy", boxes_from(sorted(train)))
    write_events_h5(root / "train" / "a_td.h5", events(1001, 2_000_000), H, W)
    save_labels(root / "val" / "b_bbox.npy", boxes_from([(100_000, w, h, c) for w, h, c in CAR]))
    np.save(root / "val" / "b_td.npy", events(401, 400_000))
    return root


def test_raw_stats_by_hand(raw):
    st = dataset_stats(raw)
    assert st["kind"] == "raw" and st["class_names"] == ["ped", "car"] and st["resolution"] == [H, W]
    assert st["splits"] == {"train": {"sequences": 1, "label_frames": 2, "boxes": 5},
                            "val": {"sequences": 1, "label_frames": 1, "boxes": 3}}
    ped = st["classes"]["ped"]
    assert ped["count"] == 5 and ped["share"] == pytest.approx(5 / 8)
    # linear interpolation over 5 sorted values: P5 = 100 + 0.05 * 4 * 100, P95 = 400 + 0.8 * 100
    assert ped["area_px2"] == pytest.approx({"P5": 120, "P25": 200, "P50": 300, "P75": 400, "P95": 480})
    # w/h sorted: 0.75, 1, 2, 4, 5
    assert ped["aspect_ratio"] == pytest.approx({"P5": 0.8, "P25": 1, "P50": 2, "P75": 4, "P95": 4.8})
    assert ped["small_share"] == 1.0 and ped["tiny_share"] == pytest.approx(0.4)   # 100, 200 < 256
    car = st["classes"]["car"]
    assert car["count"] == 3 and car["small_share"] == 0.0
    assert car["area_px2"]["P50"] == 2000 and car["aspect_ratio"]["P50"] == pytest.approx(0.8)
    assert st["overall"]["count"] == 8 and st["overall"]["small_share"] == pytest.approx(5 / 8)
    # 1001 events over 2 s; 401 events over 0.4 s
    assert st["event_rates"]["train/a"]["events_per_s"] == pytest.approx(500.5)
    assert st["event_rates"]["val/b"] == {"events": 401, "duration_s": 0.4,
                                          "events_per_s": pytest.approx(1002.5)}


def test_unknown_class_ids_get_a_name(raw):
    save_labels(raw / "val" / "b_bbox.npy", boxes_from([(100_000, 10, 10, 3)]))
    st = dataset_stats(raw)
    assert st["class_names"] == ["ped", "car", "class_2", "class_3"]
    assert st["classes"]["class_3"]["count"] == 1 and st["classes"]["class_2"]["area_px2"] is None


def test_dat_event_rate(tmp_path):
    ev = events(11, 1_000_000)
    records = np.zeros(ev.size, dtype=[("t", "<u4"), ("data", "<u4")])
    records["t"] = ev["t"]
    path = tmp_path / "x_td.dat"
    path.write_bytes(b"% Height 40\n% Width 60\n" + bytes([0, 8]) + records.tobytes())
    assert event_rate(path) == {"events": 11, "duration_s": 1.0, "events_per_s": 11.0}


def test_preprocessed_stats_count_kept_labels(raw, tmp_path):
    # 30 Hz labels over 1 s, two boxes per frame, one of them under 5 px (dropped at preprocessing)
    t = [33_333 * k for k in range(30)]
    rows = sorted([(tk, 10, 10, 0) for tk in t] + [(tk, 4, 20, 1) for tk in t])
    save_labels(raw / "train" / "a_bbox.npy", boxes_from(rows))
    save_labels(raw / "val" / "b_bbox.npy", boxes_from(rows))
    write_events_h5(raw / "val" / "b_td.h5", events(500, 1_000_000), H, W)
    (raw / "val" / "b_td.npy").unlink()
    preprocess_dataset(raw, tmp_path / "pre", workers=1, progress=False)
    st = dataset_stats(tmp_path / "pre")
    assert st["kind"] == "preprocessed" and st["resolution"] == [H, W] and st["event_rates"] == {}
    # frames kept at ~10 Hz: k = 4, 7, ..., 28 (first label at or after 100 ms is k = 4)
    n_frames = len(range(4, 30, 3))
    assert st["splits"]["train"] == {"sequences": 1, "label_frames": n_frames, "boxes": n_frames}
    assert st["classes"]["ped"]["count"] == 2 * n_frames and st["classes"]["car"]["count"] == 0


def test_stats_of_a_folder_without_data(tmp_path):
    with pytest.raises(FileNotFoundError, match="neither a raw dataset"):
        dataset_stats(tmp_path)


def test_stats_command(raw, tmp_path):
    out = tmp_path / "stats.json"
    res = runner.invoke(app, ["stats", str(raw), "--json", str(out)])
    assert res.exit_code == 0, res.output
    assert "ped" in res.output and "Event rates" in res.output and "train/a" in res.output
    assert json.loads(out.read_text())["classes"]["ped"]["count"] == 5
    res = runner.invoke(app, ["stats", str(tmp_path / "nothing")])
    assert res.exit_code == 1 and "error:" in res.output and len(res.output.strip().splitlines()) == 1


def test_preprocess_command(raw, tmp_path):
    res = runner.invoke(app, ["preprocess", str(raw), str(tmp_path / "pre"), "--workers", "1",
                              "--no-progress"])
    assert res.exit_code == 0, res.output
    assert "2 written" in res.output and "at 60x40 (downsample none)" in res.output
    res = runner.invoke(app, ["preprocess", str(raw), str(tmp_path / "pre"), "--no-progress"])
    assert res.exit_code == 0 and "0 written, 2 already done" in res.output
    res = runner.invoke(app, ["preprocess", str(raw), str(tmp_path / "p2"), "--downsample", "bilinear"])
    assert res.exit_code == 1 and "--downsample must be" in res.output
    (raw / "val" / "b_bbox.npy").unlink()
    res = runner.invoke(app, ["preprocess", str(raw), str(tmp_path / "p3"), "--no-progress"])
    assert res.exit_code == 1 and "b_td.npy: no label file b_bbox.npy" in res.output
