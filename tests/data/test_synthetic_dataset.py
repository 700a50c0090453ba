"""Synthetic generator, end to end: files on disk, label validity, event/label agreement,
determinism, presets, preview and the ``evdet simulate`` command (small, short scenes)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from evdet.cli import app
from evdet.data.labels import load_labels
from evdet.data.synthetic import generate_dataset, preset_config, render_preview, simulate_sequence
from evdet.events import read_events, sensor_size

H, W = 180, 320
DURATION_S = 1.0


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("synthetic")
    summary = generate_dataset(root, sequences=3, duration_s=DURATION_S, resolution=(H, W),
                               seed=7, progress=False)
    return root, summary


def _pairs(root: Path):
    for h5 in sorted(root.rglob("*_td.h5")):
        yield h5, h5.with_name(h5.name.replace("_td.h5", "_bbox.npy"))


def test_layout_and_dataset_yaml(dataset):
    root, summary = dataset
    for split in ("train", "val", "test"):
        assert len(list((root / split).glob("*_td.h5"))) == 1
        assert len(list((root / split).glob("*_bbox.npy"))) == 1
    doc = yaml.safe_load((root / "dataset.yaml").read_text())
    assert doc["classes"]["names"] == ["pedestrian", "car", "bicycle", "bus", "motorbike", "truck",
                                       "tram", "wheelchair"]
    assert doc["resolution"] == [H, W] and doc["seed"] == 7
    assert [s["split"] for s in summary["sequences"]] == ["train", "val", "test"]
    assert not list(root.rglob("*.tmp*"))


def test_events_are_valid(dataset):
    root, _ = dataset
    for h5, _ in _pairs(root):
        assert sensor_size(h5) == (H, W)
        ev = read_events(h5)
        assert ev.size > 1000
        assert np.all(np.diff(ev["t"]) >= 0)
        assert ev["t"][0] >= 0 and ev["t"][-1] < DURATION_S * 1e6
        assert ev["x"].max() < W and ev["y"].max() < H
        assert set(np.unique(ev["p"]).tolist()) == {0, 1}


def test_labels_are_valid_prophesee_boxes(dataset):
    root, _ = dataset
    period_us = 1e6 / 30.0
    for _, npy in _pairs(root):
        b = load_labels(npy)
        assert b.size > 0
        assert np.all(np.diff(b["t"]) >= 0)
        k = b["t"] / period_us
        np.testing.assert_allclose(k, np.round(k), atol=1e-4)            # on the 30 Hz grid
        assert np.all(np.round(k) >= 1)
        assert np.all(b["x"] >= 0) and np.all(b["y"] >= 0)
        assert np.all(b["x"] + b["w"] <= W + 1e-3) and np.all(b["y"] + b["h"] <= H + 1e-3)
        assert np.all(b["w"] >= 2) and np.all(b["h"] >= 2)
        assert np.all(b["class_id"] < 8) and np.all(b["class_confidence"] == 1.0)
        for tid in np.unique(b["track_id"]):                              # one class per track
            assert np.unique(b["class_id"][b["track_id"] == tid]).size == 1
        for t in np.unique(b["t"]):                                       # one box per track and frame
            ids = b["track_id"][b["t"] == t]
            assert np.unique(ids).size == ids.size


def _share_near_boxes(events, boxes, window_us=10_000, margin_px=4):
    """Fraction of the events of [t - window, t) within ``margin_px`` of a box at label time t."""
    inside = total = 0
    for t in np.unique(boxes["t"]):
        ev = events[(events["t"] >= t - window_us) & (events["t"] < t)]
        if ev.size == 0:
            continue
        fb = boxes[boxes["t"] == t]
        x, y = ev["x"].astype(float)[:, None], ev["y"].astype(float)[:, None]
        hit = ((x >= fb["x"] - margin_px) & (x < fb["x"] + fb["w"] + margin_px)
               & (y >= fb["y"] - margin_px) & (y < fb["y"] + fb["h"] + margin_px)).any(1)
        inside += int(hit.sum())
        total += ev.size
    return inside / max(total, 1)


def test_events_concentrate_on_labelled_objects(dataset):
    root, _ = dataset
    for h5, npy in _pairs(root):
        share = _share_near_boxes(read_events(h5), load_labels(npy))
        assert share > 0.75, f"{h5.name}: only {share:.2f} of the events lie near a box"


def test_boxes_have_recent_events(dataset):
    root, _ = dataset
    h5, npy = next(_pairs(root))
    ev, boxes = read_events(h5), load_labels(npy)
    for b in boxes[:: max(1, boxes.size // 40)]:
        sel = ev[(ev["t"] > b["t"] - 250_000) & (ev["t"] <= b["t"] + 1000)]
        inside = ((sel["x"] >= b["x"] - 3) & (sel["x"] < b["x"] + b["w"] + 3)
                  & (sel["y"] >= b["y"] - 3) & (sel["y"] < b["y"] + b["h"] + 3))
        assert inside.sum() >= 3


def test_same_seed_same_files_different_seed_differs(dataset, tmp_path):
    root, _ = dataset
    # sequence i draws from SeedSequence(seed).spawn(n)[i], so a 1-sequence dataset repeats the
    # first; the files do not depend on the number of worker processes either
    generate_dataset(tmp_path / "again", sequences=1, duration_s=DURATION_S, resolution=(H, W),
                     seed=7, progress=False, workers=2)
    for (h5, npy) in _pairs(root / "train"):
        rel = h5.relative_to(root)
        np.testing.assert_array_equal(read_events(tmp_path / "again" / rel), read_events(h5))
        np.testing.assert_array_equal(np.load(tmp_path / "again" / npy.relative_to(root)), np.load(npy))
    other = generate_dataset(tmp_path / "other", sequences=1, duration_s=DURATION_S,
                             resolution=(H, W), seed=8, progress=False)["sequences"][0]
    h5_other = tmp_path / "other" / other["split"] / f"{other['name']}_td.h5"
    first = next(_pairs(root / "train"))[0]
    a, b = read_events(h5_other), read_events(first)
    assert a.size != b.size or not np.array_equal(a, b)


def test_night_has_fewer_events_and_more_noise():
    day = simulate_sequence(preset_config("day"), 1.0, (H, W), np.random.default_rng(11))
    night = simulate_sequence(preset_config("night"), 1.0, (H, W), np.random.default_rng(11))
    assert night.events.size < day.events.size
    assert night.stats["signal_events"] < 0.9 * day.stats["signal_events"]
    # noise share, measured independently: events far from every box
    far_day = 1 - _share_near_boxes(day.events, day.boxes)
    far_night = 1 - _share_near_boxes(night.events, night.boxes)
    assert far_night > far_day


def test_pedestrian_boxes_are_person_shaped_at_hd():
    # a pedestrian is 0.45-0.55 m across and 1.72 m tall: with perspective its box stays well under
    # 0.6 wide per unit height, at the image sides too (no squat boxes of people near the edges)
    peds = []
    for seed in (1, 3, 4):
        seq = simulate_sequence(preset_config("day"), 0.5, (720, 1280), np.random.default_rng(seed))
        peds.append(seq.boxes[seq.boxes["class_id"] == 0])
    peds = np.concatenate(peds)
    assert peds.size > 50
    ratio = peds["w"] / peds["h"]
    assert np.median(ratio) < 0.6
    assert np.percentile(ratio, 90) < 0.75       # one mode: no second cluster of w ~ h boxes


def test_camera_shake_moves_the_background():
    still = simulate_sequence(preset_config("day"), 0.3, (90, 160), np.random.default_rng(3))
    shaky = simulate_sequence(preset_config("day", shake_px=1.5), 0.3, (90, 160),
                              np.random.default_rng(3))
    assert shaky.events.size > 2 * still.events.size
    # shake events cover the static background too (rows with no road users)
    rows_still = np.unique(still.events["y"][still.events["t"] > 100_000]).size
    rows_shaky = np.unique(shaky.events["y"][shaky.events["t"] > 100_000]).size
    assert rows_shaky > rows_still


def test_preview_png(dataset, tmp_path):
    root, _ = dataset
    h5, npy = next(_pairs(root))
    t = int(load_labels(npy)["t"][0])
    out = render_preview(h5, tmp_path / "p.png", t_us=t)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(FileNotFoundError, match="no \\*_td.h5"):
        render_preview(tmp_path, tmp_path / "q.png")


def test_cli_simulate_with_preview(tmp_path):
    out = tmp_path / "cli"
    res = CliRunner().invoke(app, ["simulate", str(out), "--sequences", "3", "--duration-s", "0.4",
                                   "--resolution", "160x90", "--preset", "night", "--seed", "2",
                                   "--preview"])
    assert res.exit_code == 0, res.output
    assert (out / "preview.png").exists() and (out / "dataset.yaml").exists()
    assert len(list(out.rglob("*_td.h5"))) == 3
    bad = CliRunner().invoke(app, ["simulate", str(out), "--resolution", "big"])
    assert bad.exit_code == 1 and "--resolution" in bad.output


def test_labelled_boxes_fill_the_view():
    from scipy.stats import spearmanr
    boxes = np.concatenate([simulate_sequence(preset_config("day"), 1.5, (H, W),
                                              np.random.default_rng(seed)).boxes for seed in (31, 32, 33)])
    assert boxes.size > 300
    cx, cy = boxes["x"] + boxes["w"] / 2, boxes["y"] + boxes["h"] / 2
    top, left = cy < H / 2, cx < W / 2
    quarters = [np.mean(top & left), np.mean(top & ~left), np.mean(~top & left), np.mean(~top & ~left)]
    assert max(quarters) <= 0.5, quarters                  # no quarter of the image holds most boxes
    assert np.mean(~top) >= 0.3, quarters                  # the near half is populated
    assert spearmanr(np.sqrt(boxes["w"] * boxes["h"]), cy)[0] > 0   # near users are larger


def test_centre_grid_hand_computed():
    from evdet.data.labels import empty_boxes
    from evdet.data.synthetic.preview import centre_grid
    b = empty_boxes(4)
    # centres (10, 10), (90, 10), (90, 70), (50, 45) in a 80-row x 100-column image, 2 x 2 cells
    b["x"], b["y"], b["w"], b["h"] = [5, 85, 80, 40], [5, 5, 60, 40], [10, 10, 20, 20], [10, 10, 20, 10]
    grid = centre_grid(b, height=80, width=100, rows=2, cols=2)
    np.testing.assert_allclose(grid, [[0.25, 0.25], [0.0, 0.5]])


@pytest.mark.parametrize("duration_s", [float("nan"), float("inf"), 0.0, -1.0])
def test_simulate_rejects_bad_duration(duration_s):
    with pytest.raises(ValueError, match="duration_s must be a finite number > 0"):
        simulate_sequence(preset_config("day"), duration_s, (H, W), np.random.default_rng(0))
