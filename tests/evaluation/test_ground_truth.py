"""The one ground-truth path: label frames from disk, restricted to the frames that were predicted."""

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "training"))

from tiny_dataset import REPR_NAME, REPR_US, box_of_frame, label_reprs, make_tiny_dataset  # noqa: E402

from evdet.evaluation.dataset import load_ground_truth, split_inputs  # noqa: E402


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    return make_tiny_dataset(tmp_path_factory.mktemp("gt"), lengths={"val": [9, 6]})


def test_ground_truth_is_every_label_frame_as_written(root):
    truth = load_ground_truth(root, "val", REPR_NAME)
    assert sorted(truth) == ["seq_val_0", "seq_val_1"]
    for name, n in (("seq_val_0", 9), ("seq_val_1", 6)):
        frames = label_reprs(n)                             # one box per label frame, on odd representations
        t = (frames + 1) * REPR_US
        g = truth[name]
        np.testing.assert_array_equal(g.boxes["t"], t)
        np.testing.assert_array_equal(g.repr_t_us, t)
        expected = np.array([box_of_frame(i, 2) for i in range(len(frames))])
        np.testing.assert_allclose(np.stack([g.boxes[f] for f in ("x", "y", "w", "h")], 1), expected[:, :4])
        np.testing.assert_array_equal(g.boxes["class_id"], expected[:, 4])


def test_only_predicted_frames_count(root):
    truth = load_ground_truth(root, "val", REPR_NAME)
    # frames at representations 1 and 3 of seq 0 were predicted (100 ms and 200 ms), none of seq 1
    names, gts, dts = split_inputs(truth, {}, {"seq_val_0": {100_000, 200_000}})
    assert names == ["seq_val_0"] and gts[0]["t"].tolist() == [100_000, 200_000] and len(dts[0]) == 0
    names, gts, _ = split_inputs(truth, {})
    assert names == ["seq_val_0", "seq_val_1"] and [len(g) for g in gts] == [4, 3]   # odd reprs of 9 and 6
    with pytest.raises(ValueError, match="sequence 'seq_x'"):
        split_inputs(truth, {}, {"seq_x": {1}})
    with pytest.raises(FileNotFoundError, match="no sequence 'seq_x'"):
        load_ground_truth(root, "val", REPR_NAME, ["seq_x"])
