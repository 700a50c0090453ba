"""Box label arrays (evdet.data.labels) and class maps (evdet.data.classes)."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from evdet.data.classes import ETRAM, GEN1, GEN4, ClassMap, load_class_map, write_dataset_yaml
from evdet.data.labels import (
    BBOX_DTYPE,
    LabelFormatError,
    boxes_from_detections,
    clip_boxes,
    load_labels,
    save_labels,
    to_bbox_array,
)

# Gen1 files use 'ts' and 'confidence', and a different field order and class_id type.
GEN1_DTYPE = np.dtype([("ts", "<u8"), ("x", "<f4"), ("y", "<f4"), ("w", "<f4"), ("h", "<f4"),
                       ("class_id", "u1"), ("confidence", "<f4"), ("track_id", "<u4")])


def make_boxes(rows, dtype=BBOX_DTYPE):
    """rows: (t, x, y, w, h, class_id) tuples -> structured array of ``dtype``."""
    arr = np.zeros(len(rows), dtype=dtype)
    tname = "t" if "t" in dtype.names else "ts"
    for i, (t, x, y, w, h, c) in enumerate(rows):
        arr[tname][i], arr["x"][i], arr["y"][i], arr["w"][i], arr["h"][i] = t, x, y, w, h
        arr["class_id"][i] = c
    return arr


def test_to_bbox_array_accepts_legacy_names():
    legacy = make_boxes([(10, 1, 2, 3, 4, 1), (20, 5, 6, 7, 8, 0)], GEN1_DTYPE)
    legacy["confidence"] = [0.5, 0.25]
    legacy["track_id"] = [7, 9]
    out = to_bbox_array(legacy)
    assert out.dtype == BBOX_DTYPE
    assert out["t"].tolist() == [10, 20]
    assert out["class_confidence"].tolist() == [0.5, 0.25]
    assert out["track_id"].tolist() == [7, 9]
    assert out["w"].tolist() == [3.0, 7.0]


def test_to_bbox_array_defaults_confidence_to_one():
    dtype = np.dtype([("t", "<i8"), ("x", "<f4"), ("y", "<f4"), ("w", "<f4"), ("h", "<f4"),
                      ("class_id", "<u4")])
    out = to_bbox_array(make_boxes([(0, 0, 0, 1, 1, 0)], dtype))
    assert out["class_confidence"].tolist() == [1.0]
    assert out["track_id"].tolist() == [0]


@pytest.mark.parametrize("problem, needle", [
    ("missing", "missing field(s) ['h']"),
    ("negative", "field 'w' is negative at row 1"),
    ("nan", "field 'x' holds non-finite"),
    ("order", "field 't' decreases at row 1"),
])
def test_to_bbox_array_errors_name_source_and_field(problem, needle):
    arr = make_boxes([(10, 0, 0, 5, 5, 0), (20, 1, 1, 5, 5, 0)])
    if problem == "missing":
        arr = arr[["t", "x", "y", "w", "class_id"]]
    elif problem == "negative":
        arr["w"][1] = -1
    elif problem == "nan":
        arr["x"][0] = np.nan
    else:
        arr["t"] = [20, 10]
    with pytest.raises(LabelFormatError) as err:
        to_bbox_array(arr, source="seq_bbox.npy")
    assert "seq_bbox.npy" in str(err.value) and needle in str(err.value)


@pytest.mark.parametrize("dtype, values, needle", [
    ("<i4", [0, -1], "field 'class_id' is negative (-1) at row 1"),
    ("<f4", [1.0, 2.7], "field 'class_id' holds 2.7"),
    ("<f8", [np.inf, 1.0], "field 'class_id' holds inf at row 0, not a whole number"),
    ("<u8", [2**32 + 3, 0], "field 'class_id' holds 4294967299 at row 0, beyond uint32"),
    ("<U3", ["car", "ped"], "field 'class_id' has dtype <U3, expected integers"),
])
def test_class_ids_are_never_wrapped_or_truncated(dtype, values, needle):
    arr = np.zeros(2, [("t", "<i8"), ("x", "<f4"), ("y", "<f4"), ("w", "<f4"), ("h", "<f4"),
                       ("class_id", dtype)])
    arr["class_id"] = values
    with pytest.raises(LabelFormatError) as err:
        to_bbox_array(arr, source="seq_bbox.npy")
    assert str(err.value).startswith("seq_bbox.npy: ") and needle in str(err.value)


def test_whole_float_and_wide_integer_class_ids_are_kept():
    for dtype, values in (("<f8", [3.0, 0.0]), ("<i8", [2**32 - 1, 5]), ("u1", [7, 1])):
        arr = np.zeros(2, [("t", "<i8"), ("x", "<f4"), ("y", "<f4"), ("w", "<f4"), ("h", "<f4"),
                           ("class_id", dtype)])
        arr["class_id"] = values
        assert to_bbox_array(arr)["class_id"].tolist() == [int(v) for v in values]


def test_to_bbox_array_rejects_plain_array():
    with pytest.raises(LabelFormatError, match="not a structured array"):
        to_bbox_array(np.zeros((3, 5)))


def test_save_and_load_round_trip_without_leftovers(tmp_path):
    boxes = make_boxes([(0, 1.5, 2.5, 3, 4, 2), (50_000, 10, 20, 30, 40, 7)])
    path = tmp_path / "a_bbox.npy"
    save_labels(path, boxes)
    back = load_labels(path)
    np.testing.assert_array_equal(back, boxes)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_bbox.npy"]


def test_load_labels_names_unreadable_file(tmp_path):
    path = tmp_path / "broken_bbox.npy"
    path.write_bytes(b"not numpy")
    with pytest.raises(LabelFormatError, match="broken_bbox.npy"):
        load_labels(path)


def test_load_labels_names_an_empty_file(tmp_path):
    path = tmp_path / "empty_bbox.npy"
    path.write_bytes(b"")
    with pytest.raises(LabelFormatError, match=r"empty_bbox.npy: cannot read label file \(empty file \(0 bytes\)\)"):
        load_labels(path)


def test_clip_boxes_hand_case():
    boxes = make_boxes([(0, -5, 2, 10, 4, 0), (0, 95, 45, 10, 10, 0), (0, 200, 0, 5, 5, 0)])
    out = clip_boxes(boxes, height=50, width=100)
    # box 0: x -5..5 -> 0..5; box 1: x 95..105 -> 95..100, y 45..55 -> 45..50; box 2 outside -> w 0
    assert out["x"].tolist() == [0, 95, 100]
    assert out["w"].tolist() == [5, 5, 0]
    assert out["y"].tolist() == [2, 45, 0]
    assert out["h"].tolist() == [4, 5, 5]
    assert boxes["x"][0] == -5          # input untouched


def test_boxes_from_detections_scales_and_fills_fields():
    out = boxes_from_detections(np.array([[1, 2, 5, 10]]), np.array([0.75]), np.array([3]),
                                t_us=1234, scale=2.0)
    assert out.dtype == BBOX_DTYPE
    assert (out["x"][0], out["y"][0], out["w"][0], out["h"][0]) == (2, 4, 8, 16)
    assert out["t"][0] == 1234 and out["class_id"][0] == 3
    assert out["class_confidence"][0] == pytest.approx(0.75)


def test_class_maps_of_known_datasets():
    assert ETRAM.names[0] == "pedestrian" and ETRAM.names[7] == "wheelchair"
    assert ETRAM.group_ids("MM") == (2, 4, 7)
    assert ETRAM.group_ids("VH") == (1, 3, 5, 6)
    assert GEN1.names == ("car", "pedestrian")
    assert GEN4.num_classes == 3


def test_class_map_validation():
    with pytest.raises(ValueError, match="not unique"):
        ClassMap(("a", "a"))
    with pytest.raises(ValueError, match="unknown classes"):
        ClassMap(("a", "b"), {"g": ("c",)})


def test_dataset_yaml_round_trip(tmp_path):
    cmap = ClassMap(("car", "bike"), {"small": ("bike",)})
    path = write_dataset_yaml(tmp_path, cmap, resolution=[240, 304])
    assert yaml.safe_load(path.read_text())["resolution"] == [240, 304]
    assert load_class_map(tmp_path) == cmap


def test_load_class_map_auto_and_known_names(tmp_path):
    assert load_class_map(tmp_path) == ETRAM                     # auto, no dataset.yaml: eTraM's 8 classes
    assert load_class_map(tmp_path, "gen1") == GEN1
    cmap = ClassMap(("car", "bike"), {"small": ("bike",)})
    write_dataset_yaml(tmp_path, cmap)
    assert load_class_map(tmp_path, "auto") == cmap              # auto: the dataset's own
    assert load_class_map(tmp_path, "gen4") == GEN4              # a known name: the folder is not read
    assert load_class_map(tmp_path / "absent", "etram3").names == ("PED", "VH", "MM")


def test_load_class_map_errors_are_one_line_and_name_the_cause(tmp_path):
    with pytest.raises(ValueError) as err:
        load_class_map(tmp_path, "nope")
    assert str(err.value) == ("unknown class map 'nope' (data.class_map); known: auto, etram, etram3, gen1, gen4")
    path = tmp_path / "dataset.yaml"
    path.write_text("resolution: [1, 2]\n")
    with pytest.raises(ValueError, match=f"^{path}: field 'classes' is missing$"):
        load_class_map(tmp_path)
    for body, problem in (("classes: {groups: {}}\n", "field 'names' is missing"),
                          ("classes: {names: [car, car]}\n", "class names are not unique"),
                          ("classes: {names: [car], groups: {g: [bus]}}\n", "group 'g' names unknown classes")):
        path.write_text(body)
        with pytest.raises(ValueError) as err:
            load_class_map(tmp_path)
        assert str(err.value).startswith(f"{path}: classes: ") and problem in str(err.value), str(err.value)
        assert "\n" not in str(err.value)


def test_class_map_from_names_takes_the_known_groups():
    assert ClassMap.from_names(list(ETRAM.names)) == ETRAM       # the groups PED / VH / MM / small_road_users
    assert ClassMap.from_names(("car", "pedestrian")) == GEN1
    assert ClassMap.from_names(["x", "y"]) == ClassMap(("x", "y"))
    own = ClassMap(("car",), {"all": ("car",)})
    assert ClassMap.from_names(own) is own
