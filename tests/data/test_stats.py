"""Dataset statistics on hand-made raw and preprocessed datasets, and the `stats` / `preprocess`
commands."""

from __future__ import annotations

import json
import re

import h5py
import numpy as np
import pytest
from typer.testing import CliRunner

from evdet.cli import app
from evdet.data.classes import ClassMap, write_dataset_yaml
from evdet.data.labels import BBOX_DTYPE, save_labels
from evdet.data.preprocess.dataset import preprocess_dataset
from evdet.data.stats import dataset_stats, event_rate, position_grid
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


def test_class_ids_outside_the_class_map_are_counted_as_unknown(raw):
    # ids 7 and 1_000_000 (uint32): counted apart, no class names are made up for them
    save_labels(raw / "val" / "b_bbox.npy", boxes_from([(100_000, 10, 10, 7), (100_000, 10, 10, 1_000_000),
                                                        (100_000, 10, 10, 1)]))
    st = dataset_stats(raw)
    assert st["class_names"] == ["ped", "car"] and list(st["classes"]) == ["ped", "car"]
    assert st["unknown_class"] == {"count": 2, "share": pytest.approx(2 / 8), "ids": [7, 1_000_000]}
    assert st["classes"]["car"]["count"] == 1 and st["overall"]["count"] == 8


@pytest.mark.parametrize("dtype, value, needle", [
    ("<i4", -1, "field 'class_id' is negative (-1) at row 0"),
    ("<f8", 2.5, "field 'class_id' holds 2.5 at row 0, not a whole number"),
    ("<f8", np.nan, "field 'class_id' holds nan at row 0, not a whole number"),
    ("<i8", 2**32, "field 'class_id' holds 4294967296 at row 0, beyond uint32"),
])
def test_stats_refuse_class_ids_that_would_be_wrapped_or_truncated(raw, dtype, value, needle):
    arr = np.zeros(1, [(n, "<i8" if n == "t" else "<f4") for n in ("t", "x", "y", "w", "h")]
                   + [("class_id", dtype)])
    arr["t"], arr["w"], arr["h"], arr["class_id"] = 100_000, 10, 10, value
    np.save(raw / "val" / "b_bbox.npy", arr)
    with pytest.raises(ValueError) as err:
        dataset_stats(raw)
    assert str(err.value).startswith(str(raw / "val" / "b_bbox.npy")) and needle in str(err.value)
    res = runner.invoke(app, ["stats", str(raw)])
    assert res.exit_code == 1 and needle in res.output and len(res.output.strip().splitlines()) == 1


def test_whole_float_class_ids_are_kept(raw):
    arr = np.zeros(2, [(n, "<i8" if n == "t" else "<f4") for n in ("t", "x", "y", "w", "h", "class_id")])
    arr["t"], arr["w"], arr["h"], arr["class_id"] = 100_000, 10, 10, [1.0, 0.0]
    np.save(raw / "val" / "b_bbox.npy", arr)
    st = dataset_stats(raw)
    assert (st["classes"]["ped"]["count"], st["classes"]["car"]["count"]) == (6, 1)


@pytest.mark.parametrize("damage", ["empty labels", "empty events", "decreasing time"])
def test_stats_name_a_broken_file_in_one_line(raw, damage):
    if damage == "empty labels":
        path = raw / "val" / "b_bbox.npy"
        path.write_bytes(b"")
        needle = "empty file (0 bytes)"
    elif damage == "empty events":
        path = raw / "val" / "b_td.npy"
        path.write_bytes(b"")
        needle = "empty file (0 bytes)"
    else:
        path = raw / "train" / "a_td.h5"
        ev = events(1001, 2_000_000)
        ev["t"][500:] -= 1_500_000                              # time jumps back at index 500
        with h5py.File(path, "w") as fh:
            for name in ("t", "x", "y", "p"):
                fh.create_dataset(f"events/{name}", data=ev[name])
        needle = "events/t decreases at index 500"
    with pytest.raises(ValueError, match=re.escape(needle)):
        dataset_stats(raw)
    res = runner.invoke(app, ["stats", str(raw)])
    assert res.exit_code == 1 and f"{path}: " in res.output and needle in res.output
    assert len(res.output.strip().splitlines()) == 1


def test_position_grid_by_hand():
    # 100 x 200 image, 2 x 4 grid: cells are 50 rows x 50 columns
    rows = [(0, 0, 10, 10),      # centre (5, 5): cell (0, 0)
            (40, 40, 20, 20),    # centre (50, 50): on both borders -> cell (1, 1)
            (190, 90, 20, 20),   # centre (200, 100): right / bottom edge -> last cell (1, 3)
            (-30, -30, 10, 10),  # centre (-25, -25): outside, top left -> cell (0, 0)
            (120, 10, 10, 10)]   # centre (125, 15): cell (0, 2)
    boxes = np.zeros(len(rows), BBOX_DTYPE)
    for i, (x, y, w, h) in enumerate(rows):
        boxes[i]["x"], boxes[i]["y"], boxes[i]["w"], boxes[i]["h"] = x, y, w, h
    want = np.array([[2, 0, 1, 0],
                     [0, 1, 0, 1]]) / 5
    np.testing.assert_allclose(position_grid(boxes, 100, 200, (2, 4)), want)
    np.testing.assert_array_equal(position_grid(boxes[:0], 100, 200, (2, 4)), np.zeros((2, 4)))


def test_positions_per_class_in_the_dataset_stats(raw):
    # H x W = 40 x 60, 4 x 4 grid: cells 10 rows x 15 columns. All fixture boxes sit at x = y = 1.
    st = dataset_stats(raw)
    pos = st["positions"]
    assert pos["grid"] == [4, 4]
    # ped boxes w x h: 10x10, 20x10, 15x20, 40x10, 50x10 -> centres (6, 6), (11, 6), (8.5, 11),
    # (21, 6), (26, 6) -> cells (0, 0), (0, 0), (1, 0), (0, 1), (0, 1)
    ped = np.zeros((4, 4))
    ped[0, 0], ped[1, 0], ped[0, 1] = 2, 1, 2
    np.testing.assert_allclose(pos["classes"]["ped"], ped / 5)
    # car boxes 40x50: centre (21, 26) -> cell (2, 1)
    car = np.zeros((4, 4))
    car[2, 1] = 3
    np.testing.assert_allclose(pos["classes"]["car"], car / 3)
    np.testing.assert_allclose(pos["overall"], (ped + car) / 8)
    save_labels(raw / "val" / "b_bbox.npy", boxes_from([(100_000, 10, 10, 0)]))
    assert dataset_stats(raw)["positions"]["classes"]["car"] is None      # no car box left


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
    assert "Where box centres lie" in res.output and "all (8)" in res.output and "car (3)" in res.output
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


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "0"])
def test_simulate_names_a_bad_duration_in_one_line(tmp_path, value):
    res = runner.invoke(app, ["simulate", str(tmp_path / "sim"), "--duration-s", value])
    assert res.exit_code == 1
    assert res.output.startswith("error: --duration-s must be a finite number of seconds above 0")
    assert len(res.output.strip().splitlines()) == 1 and not (tmp_path / "sim").exists()
