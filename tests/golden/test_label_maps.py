"""The golden runs' label maps: eTraM boxes in, Gen1 / Gen4 class ids out, dropped classes gone (by hand)."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from evdet.data.classes import load_class_map
from evdet.data.labels import BBOX_DTYPE, load_labels, save_labels
from tests.golden import golden_runs
from tests.golden.golden_runs import label_map_ids, map_boxes, map_raw_dataset

ETRAM_ORDER = ("pedestrian", "car", "bicycle", "bus", "motorbike", "truck", "tram", "wheelchair")


def one_box_per_class() -> np.ndarray:
    """Eight boxes, eTraM class id i at x = 10 * i (x tells which box came out), track i + 100."""
    boxes = np.zeros(8, dtype=BBOX_DTYPE)
    for i in range(8):
        boxes[i] = (50_000 * (i // 4), 10 * i, 5, 8, 12, i, 100 + i, 1.0)
    return boxes


def test_ids_by_hand():
    # gen1 = (car, pedestrian); gen4 = (pedestrian, two-wheeler, car); -1 = dropped
    assert label_map_ids("gen1").tolist() == [1, 0, -1, 0, -1, 0, 0, -1]
    assert label_map_ids("gen4").tolist() == [0, 2, 1, -1, 1, -1, -1, -1]


@pytest.mark.parametrize("target, kept", [
    ("gen1", {"pedestrian": 1, "car": 0, "bus": 0, "truck": 0, "tram": 0}),
    ("gen4", {"pedestrian": 0, "car": 2, "bicycle": 1, "motorbike": 1}),
])
def test_hand_built_boxes(target, kept):
    boxes = one_box_per_class()
    out = map_boxes(boxes, label_map_ids(target))
    expected_x = [10.0 * ETRAM_ORDER.index(name) for name in ETRAM_ORDER if name in kept]
    assert out["x"].tolist() == expected_x                                  # dropped classes gone, order kept
    assert out["class_id"].tolist() == [kept[name] for name in ETRAM_ORDER if name in kept]
    assert out["track_id"].tolist() == [100 + ETRAM_ORDER.index(n) for n in ETRAM_ORDER if n in kept]
    assert boxes["class_id"].tolist() == list(range(8))                      # the input is not touched
    assert len(map_boxes(boxes[:0], label_map_ids(target))) == 0


def test_raw_dataset_mapped(tmp_path):
    """A hand-made raw dataset: labels mapped, events copied as they are, dataset.yaml naming Gen4's classes."""
    raw = tmp_path / "raw"
    (raw / "train").mkdir(parents=True)
    (raw / "train" / "a_td.h5").write_bytes(b"events stand-in")            # only copied, never read
    save_labels(raw / "train" / "a_bbox.npy", one_box_per_class())
    (raw / "dataset.yaml").write_text(yaml.safe_dump({"classes": {"names": list(ETRAM_ORDER)},
                                                      "resolution": [96, 160]}))
    dst = map_raw_dataset(raw, tmp_path / "gen4", "gen4")
    assert (dst / "train" / "a_td.h5").read_bytes() == b"events stand-in"
    boxes = load_labels(dst / "train" / "a_bbox.npy")
    # pedestrian (x 0) -> 0, car (x 10) -> 2, bicycle (x 20) -> 1, motorbike (x 40) -> 1
    assert list(zip(boxes["x"].tolist(), boxes["class_id"].tolist())) == [(0, 0), (10, 2), (20, 1), (40, 1)]
    assert load_class_map(dst).names == ("pedestrian", "two-wheeler", "car")
    doc = yaml.safe_load((dst / "dataset.yaml").read_text())
    assert doc["resolution"] == [96, 160]
    assert doc["label_map"]["two-wheeler"] == ["bicycle", "motorbike"]


@pytest.mark.parametrize("bad, match", [
    ({"car": ("car",), "pedestrian": ("pedestrian", "car")}, "mapped twice"),
    ({"car": ("car", "lorry"), "pedestrian": ("pedestrian",)}, "no eTraM class"),
    ({"car": ("car",)}, "the gen1 classes are"),
])
def test_bad_maps_refused(monkeypatch, bad, match):
    monkeypatch.setitem(golden_runs.LABEL_MAPS, "gen1", bad)
    with pytest.raises(ValueError, match=match):
        label_map_ids("gen1")
