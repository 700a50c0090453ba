"""Reader of preprocessed sequences, tested on folders written here exactly as the reference RVT
scripts write them (np.savez of a list, Gen4 label dtype, resizable Blosc HDF5 'data')."""

from __future__ import annotations

import json
import pickle

import hdf5plugin
import h5py
import numpy as np
import pytest

from evdet.data.labels import BBOX_DTYPE
from evdet.data.preprocessed import (
    PreprocessedFormatError,
    PreprocessedSequence,
    list_sequences,
    read_preprocess_info,
)

REPR = "stacked_histogram_dt=50_nbins=10"
# The dtype of Gen4 / 1Mpx *_bbox.npy files, which the reference copies into labels.npz unchanged.
GEN4_DTYPE = np.dtype([("t", "<u8"), ("x", "<f4"), ("y", "<f4"), ("w", "<f4"), ("h", "<f4"),
                       ("class_id", "u1"), ("class_confidence", "<f4"), ("track_id", "<u4")])
GEN1_DTYPE = np.dtype([("ts", "<u8"), ("x", "<f4"), ("y", "<f4"), ("w", "<f4"), ("h", "<f4"),
                       ("class_id", "u1"), ("confidence", "<f4"), ("track_id", "<u4")])

# Source 12x16 -> representation 6x8 (ds2). Rows: t, x, y, w, h, class_id
SOURCE_BOXES = [
    (100_000, 2, 4, 6, 2, 0),
    (100_000, 10, 8, 10, 6, 2),
    (200_000, 0, 0, 16, 12, 1),
    (200_000, 15, 3, 1, 4, 0),       # x2 = 16 -> 7 after clamping; x = 7.5 -> flat, dropped
]
REPR_T = [50_000, 100_000, 150_000, 200_000]
FRAME_T = [100_000, 200_000]


def rvt_labels(dtype=GEN4_DTYPE):
    arr = np.zeros(len(SOURCE_BOXES), dtype=dtype)
    tname = "t" if "t" in dtype.names else "ts"
    for i, (t, x, y, w, h, c) in enumerate(SOURCE_BOXES):
        arr[tname][i], arr["x"][i], arr["y"][i], arr["w"][i], arr["h"][i] = t, x, y, w, h
        arr["class_id"][i] = c
        arr["track_id"][i] = i
    return arr


def write_rvt_sequence(seq_dir, data, *, suffix="_ds2_nearest", labels=None, frame_t=FRAME_T,
                       repr_t=REPR_T):
    """Write one sequence the way scripts/genx/preprocess_dataset.py does."""
    labels = rvt_labels() if labels is None else labels
    labels_dir = seq_dir / "labels_v2"
    labels_dir.mkdir(parents=True)
    tname = "t" if "t" in labels.dtype.names else "ts"
    starts, start = [], 0
    for t in frame_t:
        starts.append(start)
        start += int(np.count_nonzero(labels[tname] == t))
    np.savez(str(labels_dir / "labels.npz"), labels=labels, objframe_idx_2_label_idx=starts)
    np.save(str(labels_dir / "timestamps_us.npy"), np.asarray(frame_t, dtype="int64"))
    ev_dir = seq_dir / "event_representations_v2" / REPR
    ev_dir.mkdir(parents=True)
    repr_t = np.asarray(repr_t, dtype="int64")
    np.save(str(ev_dir / "objframe_idx_2_repr_idx.npy"),
            np.searchsorted(repr_t, np.asarray(frame_t, dtype="int64"), side="left"))
    np.save(str(ev_dir / "timestamps_us.npy"), repr_t)
    shape = data.shape[1:]
    with h5py.File(str(ev_dir / f"event_representations{suffix}.h5"), "w") as fh:
        ds = fh.create_dataset("data", dtype="uint8", shape=(1, *shape), chunks=(1, *shape),
                               maxshape=(None, *shape),
                               **hdf5plugin.Blosc(cname="zstd", clevel=1, shuffle=hdf5plugin.Blosc.SHUFFLE))
        for i, frame in enumerate(data):
            ds.resize(i + 1, axis=0)
            ds[i:i + 1] = frame
    return ev_dir


@pytest.fixture()
def data():
    return np.random.default_rng(0).integers(0, 11, size=(4, 20, 6, 8), dtype=np.uint8)


@pytest.fixture()
def rvt_seq(tmp_path, data):
    seq_dir = tmp_path / "pre" / "train" / "seqA"
    write_rvt_sequence(seq_dir, data)
    return seq_dir


def boxes_xywh(boxes):
    return [tuple(float(v) for v in (b["x"], b["y"], b["w"], b["h"])) for b in boxes]


def test_reads_reference_folder(rvt_seq, data):
    seq = PreprocessedSequence(rvt_seq, REPR)
    assert (seq.name, seq.height, seq.width, seq.channels) == ("seqA", 6, 8, 20)
    assert seq.downsample == "ds2_nearest"
    assert seq.num_reprs == 4 and len(seq) == 4
    assert seq.repr_timestamps_us.tolist() == REPR_T
    assert seq.label_timestamps_us.tolist() == FRAME_T
    assert seq.label_repr_idx.tolist() == [1, 3]
    got = seq.reprs(1, 3)
    assert got.dtype == np.uint8 and got.shape == (2, 20, 6, 8)
    np.testing.assert_array_equal(got, data[1:3])


def test_labels_scaled_to_ds2_pixels_as_the_reference(rvt_seq):
    seq = PreprocessedSequence(rvt_seq, REPR)
    assert seq.labels_at_repr(0) is None and seq.labels_at_repr(2) is None
    first = seq.labels_at_repr(1)
    assert first.dtype == BBOX_DTYPE
    # (2,4,6,2) -> x 1, y 2, x2 min(4, 7), y2 min(3, 5); (10,8,10,6) -> x 5, y 4, x2 min(10, 7) = 7, y2 5
    assert boxes_xywh(first) == [(1, 2, 3, 1), (5, 4, 2, 1)]
    assert first["class_id"].tolist() == [0, 2] and first["t"].tolist() == [100_000] * 2
    second = seq.labels_at_repr(3)
    # (0,0,16,12) -> x2 min(8, 7), y2 min(6, 5); the box at x 15 collapses and is dropped
    assert boxes_xywh(second) == [(0, 0, 7, 5)]
    assert second["track_id"].tolist() == [2]


def test_all_labels_in_source_and_repr_pixels(rvt_seq):
    seq = PreprocessedSequence(rvt_seq, REPR)
    source = seq.all_labels(in_repr_pixels=False)
    assert boxes_xywh(source) == [tuple(float(v) for v in row[1:5]) for row in SOURCE_BOXES]
    assert len(seq.all_labels()) == 3
    assert seq.all_labels()["t"].tolist() == [100_000, 100_000, 200_000]


def test_legacy_label_names_and_full_resolution_file(tmp_path, data):
    seq_dir = tmp_path / "val" / "gen1seq"
    write_rvt_sequence(seq_dir, data, suffix="", labels=rvt_labels(GEN1_DTYPE))
    seq = PreprocessedSequence(seq_dir, REPR)
    assert seq.downsample == "none"
    assert boxes_xywh(seq.labels_at_repr(1)) == [(2, 4, 6, 2), (10, 8, 10, 6)]


def test_pickle_round_trip_reopens_lazily(rvt_seq, data):
    seq = PreprocessedSequence(rvt_seq, REPR)
    seq.reprs(0, 1)                        # opens the file in this process
    clone = pickle.loads(pickle.dumps(seq))
    assert clone._h5 is None
    np.testing.assert_array_equal(clone.reprs(3, 4), data[3:4])
    seq.close()
    clone.close()


def test_index_errors(rvt_seq):
    seq = PreprocessedSequence(rvt_seq, REPR)
    with pytest.raises(IndexError):
        seq.reprs(3, 5)
    with pytest.raises(IndexError):
        seq.labels_at_repr(4)


def test_list_sequences_skips_work_folders(tmp_path, data):
    root = tmp_path / "pre"
    for name in ("b_seq", "a_seq"):
        write_rvt_sequence(root / "train" / name, data)
    write_rvt_sequence(root / "train" / "c_seq.tmp", data)
    (root / "train" / "notes").mkdir()
    assert [p.name for p in list_sequences(root, "train")] == ["a_seq", "b_seq"]
    with pytest.raises(FileNotFoundError, match="test"):
        list_sequences(root, "test")


def test_infer_info_from_reference_data(rvt_seq):
    info = read_preprocess_info(rvt_seq.parent.parent)
    assert info["inferred"] is True
    assert info["source_hw"] == [12, 16] and info["repr_hw"] == [6, 8]
    assert info["downsample"] == "ds2_nearest"
    assert (info["representation"], info["window_ms"], info["nbins"], info["channels"]) == (REPR, 50, 10, 20)
    assert info["splits"] == {"train": 1}


def test_info_from_preprocess_json(rvt_seq):
    root = rvt_seq.parent.parent
    (root / "preprocess.json").write_text(json.dumps(
        {"source_hw": [12, 16], "repr_hw": [6, 8], "downsample": "ds2_nearest", "representation": REPR}))
    info = read_preprocess_info(root)
    assert info["inferred"] is False and info["splits"] == {"train": 1}
    (root / "preprocess.json").write_text(json.dumps({"source_hw": [12, 16]}))
    with pytest.raises(PreprocessedFormatError, match="missing field"):
        read_preprocess_info(root)


def test_info_without_anything_to_infer(tmp_path):
    with pytest.raises(PreprocessedFormatError, match="no preprocess.json"):
        read_preprocess_info(tmp_path)


def test_errors_name_the_file(tmp_path, data):
    seq_dir = tmp_path / "s1"
    ev_dir = write_rvt_sequence(seq_dir, data)
    (ev_dir / "objframe_idx_2_repr_idx.npy").unlink()
    with pytest.raises(PreprocessedFormatError, match="objframe_idx_2_repr_idx.npy: no such file"):
        PreprocessedSequence(seq_dir, REPR)

    seq_dir = tmp_path / "s2"
    write_rvt_sequence(seq_dir, data, repr_t=REPR_T[:3] + [210_000])
    np.save(seq_dir / "event_representations_v2" / REPR / "timestamps_us.npy", np.arange(3))
    with pytest.raises(PreprocessedFormatError, match="3 timestamps but"):
        PreprocessedSequence(seq_dir, REPR)

    seq_dir = tmp_path / "s3"
    labels = rvt_labels()
    write_rvt_sequence(seq_dir, data, labels=labels)
    np.save(seq_dir / "labels_v2" / "timestamps_us.npy", np.asarray([100_000, 250_000]))
    with pytest.raises(PreprocessedFormatError, match="labels.npz: label 't' does not match"):
        PreprocessedSequence(seq_dir, REPR)

    with pytest.raises(PreprocessedFormatError, match="representation folder missing"):
        PreprocessedSequence(tmp_path / "s1", "voxel_grid_dt=50_nbins=5")


def test_several_files_need_a_choice(rvt_seq, data):
    ev_dir = rvt_seq / "event_representations_v2" / REPR
    with h5py.File(ev_dir / "event_representations.h5", "w") as fh:
        fh.create_dataset("data", data=np.zeros((4, 20, 12, 16), dtype=np.uint8))
    with pytest.raises(PreprocessedFormatError, match="several representation files"):
        PreprocessedSequence(rvt_seq, REPR)
    full = PreprocessedSequence(rvt_seq, REPR, downsample="none")
    assert (full.height, full.width) == (12, 16)
    with pytest.raises(PreprocessedFormatError, match="_ds2_sum.h5: no such file"):
        PreprocessedSequence(rvt_seq, REPR, downsample="ds2_sum")
