"""Multi-view preprocessing and loading: the views of a scene stay together on the same 50 ms windows."""

import numpy as np
import pytest

from evdet.data.labels import load_labels
from evdet.data.multiview_dataset import (
    POSE_DIM,
    load_scenes,
    make_batch,
    preprocess_multiview,
    random_windows,
    stream_windows,
)
from evdet.data.synthetic.multiview_io import generate_multiview_dataset
from evdet.events import read_events, stacked_histogram
from evdet.models.fusion import POSE_DIM as MODEL_POSE_DIM


@pytest.fixture(scope="module")
def roots(tmp_path_factory):
    raw = tmp_path_factory.mktemp("mvraw")
    pre = tmp_path_factory.mktemp("mvpre")
    generate_multiview_dataset(raw, scenes=2, views=2, duration_s=1.6, resolution=(64, 96), seed=2,
                               splits=(1.0, 0.0, 0.0))
    preprocess_multiview(raw, pre, splits=("train",), downsample="none")
    return raw, pre


def test_views_share_windows_built_from_their_own_events(roots):
    raw, pre = roots
    scenes = load_scenes(pre, "train")
    assert len(scenes) == 2
    for sc in scenes:
        x = sc.reprs(0, sc.num_steps)
        for v, name in enumerate(sc.views):
            seq = sc.seqs[v]
            assert np.array_equal(seq.repr_timestamps_us[sc.offsets[v]:sc.offsets[v] + sc.num_steps], sc.timestamps_us)
            h5 = raw / "train" / sc.name / name / f"{sc.name}_{name}_td.h5"
            for k in (0, sc.num_steps // 2, sc.num_steps - 1):
                t = int(sc.timestamps_us[k])
                ev = read_events(h5, t - 50_000, t + 1)             # window [t - 50 ms, t], both ends
                assert np.array_equal(x[v, k], stacked_histogram(ev, sc.height, sc.width))


def test_label_mask_is_the_union_and_targets_are_each_views_boxes(roots):
    raw, pre = roots
    sc = load_scenes(pre, "train")[0]
    raw_boxes = [load_labels(raw / "train" / sc.name / v / f"{sc.name}_{v}_bbox.npy") for v in sc.views]
    for k in range(sc.num_steps):
        t = int(sc.timestamps_us[k])
        has = [bool(np.any(sc.seqs[v].label_timestamps_us == t)) for v in range(len(sc.views))]
        assert sc.label_mask[k] == any(has)
    b = make_batch([sc], [w for w in random_windows([sc], 3, np.random.default_rng(0), 4) if w.scene == 0][:1])
    assert b["frames"].shape[0] == 2 and b["seq_names"] == [f"{sc.name}/view0", f"{sc.name}/view1"]
    assert np.array_equal(b["label_mask"][0], b["label_mask"][1]) and bool(b["label_mask"][0, -1])
    t_last = int(b["t_us"][0, -1])
    for v in range(2):
        tgt = b["targets"][v][-1]
        raw_t = raw_boxes[v][raw_boxes[v]["t"] == t_last]
        assert tgt.shape[0] <= raw_t.size                          # preprocessing drops small boxes only
        assert set(tgt[:, 0].long().tolist()) <= set(raw_t["class_id"].tolist())
    assert b["view_pose"].shape == (2, POSE_DIM) and POSE_DIM == MODEL_POSE_DIM


def test_stream_walks_whole_scenes_in_order(roots):
    _, pre = roots
    scenes = load_scenes(pre, "train")
    batches = stream_windows(scenes, 4, 2, np.random.default_rng(1))
    for slot in range(2):
        lane = [b[slot] for b in batches]
        for a, b in zip(lane, lane[1:]):
            if b.scene == a.scene:
                assert b.start == a.stop and not b.first
            else:
                assert b.first and b.start == 0
        assert lane[0].first and lane[0].start == 0
    batch = make_batch(scenes, batches[0])
    assert batch["frames"].shape[:2] == (4, 4)                     # 2 slots x 2 views, 4 steps
    assert batch["is_first"].tolist() == [True] * 4
