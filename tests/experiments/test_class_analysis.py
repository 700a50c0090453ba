import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from evdet.data.classes import ClassMap, write_dataset_yaml
from evdet.data.labels import BBOX_DTYPE, save_labels
from evdet.evaluation.class_analysis import (AnalysisError, BoxSet, analyze_dataset, centre_candidates,
                                        owner_stride_index)
from evdet.experiments.records.record import load_experiment
from evdet.models.simota import simota_assign

CM = ClassMap(names=("pedestrian", "car", "bicycle"), groups={"small_road_users": ("pedestrian", "bicycle")})


def _boxes(rows) -> np.ndarray:
    """rows: (t, x, y, w, h, class_id) in source pixels."""
    arr = np.zeros(len(rows), dtype=BBOX_DTYPE)
    for i, (t, x, y, w, h, c) in enumerate(rows):
        arr[i] = (t, x, y, w, h, c, i, 1.0)
    return arr


def _candidates_by_loop(x, y, w, h, stride, radius=1.5, cells_x=400, cells_y=400):
    """Plain-loop oracle of SimOTA's centre prior: anchors (i + 0.5) * stride, 0 <= i < cells, within
    radius * stride of the box centre on both axes."""
    cx, cy = x + w / 2, y + h / 2
    nx = sum(abs((i + 0.5) * stride - cx) < radius * stride for i in range(cells_x))
    ny = sum(abs((i + 0.5) * stride - cy) < radius * stride for i in range(cells_y))
    return nx * ny


def test_owner_level_by_hand():
    # 3-scale: stride 8 < 64 px <= stride 16 < 128 px <= stride 32
    sides = np.array([3.0, 63.9, 64.0, 127.0, 128.0, 900.0])
    assert owner_stride_index(sides, (8, 16, 32)).tolist() == [0, 0, 1, 1, 2, 2]
    # 4-scale: stride 4 < 32 <= 8 < 64 <= 16 < 128 <= 32
    assert owner_stride_index(np.array([20.0, 40.0, 100.0, 130.0]), (4, 8, 16, 32)).tolist() == [0, 1, 2, 3]


def test_centre_candidates_by_hand():
    b = BoxSet(x=np.array([0.0, 10.0, 0.0]), y=np.array([0.0, 10.0, 0.0]), w=np.array([8.0, 4.0, 100.0]),
               h=np.array([8.0, 4.0, 100.0]), class_id=np.zeros(3, int))
    # stride 8, |anchor - centre| < 12: centre 4 -> anchors 4, 12 (2 per axis); centre 12 -> 4, 12, 20;
    # centre 50 -> 44, 52, 60 (36 is 14 away). Whether the anchor is inside the box does not matter.
    assert centre_candidates(b, 8).tolist() == [4, 9, 9]
    # stride 16, radius 24: centre 4 -> 8, 24; centre 12 -> 8, 24 (40 is 28 away); centre 50 -> 40, 56, 72
    assert centre_candidates(b, 16).tolist() == [4, 4, 9]
    # a 16 x 16 input has 2 cells per axis at stride 8: anchor 20 does not exist
    assert centre_candidates(b, 8, input_hw=(16, 16)).tolist() == [4, 4, 0]


@settings(max_examples=60, deadline=None)
@given(x=st.floats(0, 300), y=st.floats(0, 300), w=st.floats(0.5, 200), h=st.floats(0.5, 200),
       stride=st.sampled_from([2, 4, 8, 16, 32]), bounded=st.booleans())
def test_centre_candidates_match_loop(x, y, w, h, stride, bounded):
    b = BoxSet(np.array([x]), np.array([y]), np.array([w]), np.array([h]), np.zeros(1, int))
    if bounded:
        expected = _candidates_by_loop(x, y, w, h, stride, cells_x=math.ceil(640 / stride),
                                       cells_y=math.ceil(360 / stride))
        assert centre_candidates(b, stride, (360, 640))[0] == expected
    else:
        assert centre_candidates(b, stride)[0] == _candidates_by_loop(x, y, w, h, stride)


@settings(max_examples=40, deadline=None)
@given(cx4=st.integers(-40, 4 * 100), cy4=st.integers(-40, 4 * 70), w4=st.integers(1, 4 * 40),
       h4=st.integers(1, 4 * 40), stride=st.sampled_from([8, 16, 32]))
def test_coverage_counts_what_simota_assign_takes(cx4, cy4, w4, h4, stride):
    # one level of a 64 x 96 input; every anchor predicts the GT box itself (IoU 1), so SimOTA keeps
    # all its candidates (dynamic k = their number, at most 9 < 10): its positives are the candidates
    cx, cy, w, h = cx4 / 4, cy4 / 4, w4 / 4, h4 / 4   # quarter pixels: exact in float32 and float64
    rows, cols = 64 // stride, 96 // stride
    gy, gx = torch.meshgrid(torch.arange(rows, dtype=torch.float32), torch.arange(cols, dtype=torch.float32),
                            indexing="ij")
    centers = (torch.stack([gx, gy], -1).reshape(-1, 2) + 0.5) * stride
    anchors = centers.shape[0]
    gt = torch.tensor([[cx, cy, w, h]])
    result = simota_assign(gt.expand(anchors, 4), torch.zeros(anchors), torch.zeros(anchors, 2), centers,
                           torch.full((anchors,), float(stride)), gt, torch.tensor([0]))
    box = BoxSet(np.array([cx - w / 2]), np.array([cy - h / 2]), np.array([w]), np.array([h]), np.zeros(1, int))
    assert centre_candidates(box, stride, input_hw=(64, 96))[0] == result.num_fg


def _raw_dataset(root: Path) -> np.ndarray:
    """Two train sequences + one val sequence at 720x1280; returns all train boxes."""
    (root / "train").mkdir(parents=True)
    write_dataset_yaml(root, CM, resolution=[720, 1280])
    (root / "val").mkdir()
    a = _boxes([(0, 100, 100, 20, 60, 0), (0, 200, 100, 10, 40, 0), (10, 300, 300, 200, 120, 1),
                (10, 40, 40, 12, 10, 2)])
    b = _boxes([(0, 500, 300, 300, 200, 1), (5, 600, 400, 30, 70, 0), (7, 10, 10, 150, 100, 1),
                (9, 800, 500, 60, 60, 2)])
    save_labels(root / "train" / "a_bbox.npy", a)
    save_labels(root / "train" / "b_bbox.npy", b)
    save_labels(root / "val" / "c_bbox.npy", _boxes([(0, 1, 1, 5, 5, 1)]))
    return np.concatenate([a, b])


def test_analyze_raw_dataset_against_numpy(tmp_path: Path, three_runs: Path):
    boxes = _raw_dataset(tmp_path / "raw")
    results = load_experiment(three_runs, "baseline").results       # AP ped .2, car .5, bicycle .2
    a = analyze_dataset(tmp_path / "raw", results=results, input_hw=(360, 640))
    assert a["layout"] == "raw" and a["source_hw"] == [720, 1280] and a["scale_xy"] == [0.5, 0.5]
    assert a["total"] == 8 and a["files"] == 2
    w, h = boxes["w"] * 0.5, boxes["h"] * 0.5
    for cid, name in enumerate(CM.names):
        c = a["classes"][name]
        m = boxes["class_id"] == cid
        assert c["support"] == int(m.sum())
        assert c["data_share"] == pytest.approx(m.sum() / 8)
        np.testing.assert_allclose([c["area_px2"][k] for k in ("P25", "P50", "P75")],
                                   np.percentile((w * h)[m], [25, 50, 75]))
        np.testing.assert_allclose([c["aspect_w_over_h"][k] for k in ("P25", "P50", "P75")],
                                   np.percentile((w / h)[m], [25, 50, 75]), rtol=1e-6)
        assert c["narrow_share"] == pytest.approx(np.mean((w / h)[m] < 0.5))
        assert c["thin_share"] == pytest.approx(np.mean(np.minimum(w, h)[m] < 8))
    ped = a["classes"]["pedestrian"]
    # pedestrians at input px: 10x30, 5x20, 15x35 -> aspect .33, .25, .43: all narrow; 5x20 is thin
    assert ped["narrow_share"] == 1.0 and ped["thin_share"] == pytest.approx(1 / 3)
    # AP share .2/.9 over data share 3/8
    assert ped["AP_share"] == pytest.approx(0.2 / 0.9)
    assert ped["efficiency"] == pytest.approx((0.2 / 0.9) / (3 / 8))
    # longest sides of pedestrians 30, 20, 35 px: all owned by stride 8 in 3-scale, stride 4 / 8 in 4-scale
    lv3, lv4 = ped["levels"]["3-scale p4"], ped["levels"]["4-scale p4"]
    assert lv3["owner_share"] == {"8": 1.0, "16": 0.0, "32": 0.0}
    assert lv4["owner_share"]["4"] == pytest.approx(2 / 3) and lv4["owner_share"]["8"] == pytest.approx(1 / 3)
    # below the finest level's nominal range (longest side < 4 * stride): 30 and 20 < 32; none < 16
    assert lv3["below_range_share"] == pytest.approx(2 / 3) and lv4["below_range_share"] == 0.0
    # every box is centred in the 360 x 640 frame: SimOTA's centre prior gives each candidates at every level
    assert lv3["covered_share"] == 1.0 and lv4["covered_share"] == 1.0 and lv3["covered_any_share"] == 1.0
    json.dumps(a)   # JSON-serialisable


def test_analysis_refuses_other_class_map(tmp_path: Path, three_runs: Path):
    _raw_dataset(tmp_path / "raw")
    res = load_experiment(three_runs, "baseline").results
    res = {**res, "class_names": ["car", "pedestrian", "bicycle"]}
    with pytest.raises(AnalysisError, match="class maps differ"):
        analyze_dataset(tmp_path / "raw", results=res)


def test_analysis_errors_name_the_problem(tmp_path: Path):
    with pytest.raises(AnalysisError, match="no such data folder"):
        analyze_dataset(tmp_path / "nothing")
    (tmp_path / "empty" / "train").mkdir(parents=True)
    with pytest.raises(AnalysisError, match="no label files"):
        analyze_dataset(tmp_path / "empty")
    with pytest.raises(AnalysisError, match="no such split"):
        analyze_dataset(tmp_path / "empty", splits=("test",))


def test_analyze_preprocessed_layout(tmp_path: Path):
    root = tmp_path / "pre"
    seq = root / "train" / "seq1"
    (seq / "labels_v2").mkdir(parents=True)
    (seq / "event_representations_v2" / "stacked_histogram_dt=50_nbins=10").mkdir(parents=True)
    boxes = _boxes([(0, 100, 100, 40, 80, 0), (0, 400, 200, 200, 100, 1)])
    np.savez(seq / "labels_v2" / "labels.npz", labels=boxes, objframe_idx_2_label_idx=np.array([0]))
    (root / "preprocess.json").write_text(json.dumps({
        "source_hw": [720, 1280], "repr_hw": [360, 640], "downsample": "ds2_nearest",
        "representation": "stacked_histogram_dt=50_nbins=10"}))
    write_dataset_yaml(root, CM)
    a = analyze_dataset(root)
    assert a["layout"] == "preprocessed" and a["input_hw"] == [360, 640] and a["scale_xy"] == [0.5, 0.5]
    assert a["classes"]["pedestrian"]["area_px2"]["P50"] == pytest.approx(20 * 40)
    assert a["classes"]["car"]["support"] == 1 and a["classes"]["bicycle"]["support"] == 0
    assert a["classes"]["bicycle"]["area_px2"]["P50"] is None
