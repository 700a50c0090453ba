"""Preprocessing into the RVT layout, checked against hand-computed windows and a plain-loop
histogram written here (never against the code's own saved output)."""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path

import h5py
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evdet.data.label_filter import filter_boxes, prophesee_label_filter, select_label_frames
from evdet.data.labels import BBOX_DTYPE, save_labels
from evdet.data.preprocess.dataset import (
    EventWindows,
    PreprocessError,
    preprocess_dataset,
    representation_timestamps,
)
from evdet.data.preprocessed import PreprocessedSequence, list_sequences, read_preprocess_info
from evdet.events import EVENT_DTYPE, write_events_h5

REPR = "stacked_histogram_dt=50_nbins=10"
PERIOD_US = 33_333                      # 30 Hz labels at t = k * 33_333, k = 0..44 (~1.5 s)
LABEL_T = [PERIOD_US * k for k in range(45)]
DURATION_US = 1_500_000
# Kept label frames, by hand: the median spacing is 33_333 us, so the 10 Hz base period is
# 3 * 33_333 = 99_999 us. The first frame is the first label at or after 100 ms: k = 3 gives
# 99_999 < 100_000, so k = 4; then every third label: k = 4, 7, ..., 43.
FRAME_K = list(range(4, 44, 3))
FRAME_T = [PERIOD_US * k for k in FRAME_K]


def expected_window_ends():
    """Window end times by hand: one 50 ms step back from the first frame (133_332 -> 83_332;
    33_332 is the dropped partial window), then each 99_999 us gap split at
    int(a + 99_999 / 2) = a + 49_999, ending on the last frame."""
    ends = [FRAME_T[0] - 50_000]
    for a in FRAME_T[:-1]:
        ends += [a, a + 49_999]
    return ends + [FRAME_T[-1]]


# ---- raw data written by the test ----------------------------------------------------------------
def make_events(rng, height, width, n=9000, extra=()):
    """Uniform random events over the recording plus ``extra`` (t, x, y, p) events placed exactly on
    window boundaries."""
    t = rng.integers(0, DURATION_US, n)
    x = rng.integers(0, width, n)
    y = rng.integers(0, height, n)
    p = rng.integers(0, 2, n)
    if extra:
        ex = np.asarray(extra, dtype=np.int64)
        t, x, y, p = (np.concatenate([a, ex[:, i]]) for i, a in enumerate((t, x, y, p)))
    order = np.argsort(t, kind="stable")
    ev = np.zeros(t.size, EVENT_DTYPE)
    ev["t"], ev["x"], ev["y"], ev["p"] = t[order], x[order], y[order], p[order]
    return ev


def make_boxes(scale=1.0, extra_rows=()):
    """Two boxes at every 30 Hz label time (source pixels), plus ``extra_rows`` (t, x, y, w, h, c)."""
    rows = []
    for k, t in enumerate(LABEL_T):
        rows.append((t, (5 + k % 7) * scale, 10 * scale, 12 * scale, 10 * scale, 0))
        rows.append((t, 30 * scale, 20 * scale, 20 * scale, 15 * scale, 2))
    rows += list(extra_rows)
    rows.sort(key=lambda r: r[0])
    boxes = np.zeros(len(rows), BBOX_DTYPE)
    for i, (t, x, y, w, h, c) in enumerate(rows):
        boxes[i]["t"], boxes[i]["x"], boxes[i]["y"], boxes[i]["w"], boxes[i]["h"] = t, x, y, w, h
        boxes[i]["class_id"] = c
        boxes[i]["track_id"] = i
    return boxes


def write_sequence(split_dir: Path, name: str, events, boxes, height, width):
    split_dir.mkdir(parents=True, exist_ok=True)
    write_events_h5(split_dir / f"{name}_td.h5", events, height, width)
    save_labels(split_dir / f"{name}_bbox.npy", boxes)


# ---- independent oracles -------------------------------------------------------------------------
def window_events(events, t_end):
    """The reference window: t_end - 50 ms <= t <= t_end (searchsorted left / right)."""
    t = events["t"]
    return events[(t >= t_end - 50_000) & (t <= t_end)]


def histogram_counts(ev, nbins=10, keep=lambda x, y: True, move=lambda x, y: (x, y)):
    """Plain-loop stacked histogram as a Counter {(channel, y, x): count}; the temporal bin uses
    the whole window's first/last time in float32, as the reference."""
    counts = Counter()
    if ev.size == 0:
        return counts
    t0 = ev["t"][0]
    denom = np.float32(max(int(ev["t"][-1]) - int(t0), 1))
    for e in ev:
        b = min(int(np.floor(np.float32(int(e["t"]) - int(t0)) / denom * np.float32(nbins))), nbins - 1)
        x, y = int(e["x"]), int(e["y"])
        if keep(x, y):
            x, y = move(x, y)
            counts[(int(e["p"]) * nbins + b, y, x)] += 1
    return counts


def dense(counts, shape, cutoff=10):
    out = np.zeros(shape, dtype=np.uint8)
    for (c, y, x), n in counts.items():
        out[c, y, x] = min(n, cutoff)
    return out


# ---- fixtures --------------------------------------------------------------------------------------
SMALL_H, SMALL_W = 48, 64
BOUNDARY_EVENTS = [
    (FRAME_T[1], 3, 4, 1),              # exactly at a window end: in that window and the next one
    (FRAME_T[1] - 50_000, 5, 6, 0),     # exactly at a window start: included
    (FRAME_T[1] - 50_001, 7, 8, 1),     # just before it: not included
]


@pytest.fixture(scope="module")
def small_raw(tmp_path_factory):
    root = tmp_path_factory.mktemp("small_raw")
    rng = np.random.default_rng(1)
    ev = {"train": make_events(rng, SMALL_H, SMALL_W, extra=BOUNDARY_EVENTS),
          "val": make_events(rng, SMALL_H, SMALL_W)}
    for split in ("train", "val"):
        write_sequence(root / split, f"{split}_seq", ev[split], make_boxes(), SMALL_H, SMALL_W)
    return root, ev


@pytest.fixture(scope="module")
def small_pre(small_raw, tmp_path_factory):
    raw, ev = small_raw
    dst = tmp_path_factory.mktemp("small_pre")
    summary = preprocess_dataset(raw, dst, workers=1, progress=False)
    return dst, ev, summary


BIG_H, BIG_W = 720, 1280
# A cluster in one 2x2 block (rows 100-101, cols 200-201): 4 pixels x 3 events, same bin region.
CLUSTER = [(FRAME_T[2] - 1000 + i, 200 + (i % 2), 100 + (i // 2) % 2, 1) for i in range(12)]


@pytest.fixture(scope="module")
def big_raw(tmp_path_factory):
    root = tmp_path_factory.mktemp("big_raw")
    ev = make_events(np.random.default_rng(2), BIG_H, BIG_W, n=6000, extra=CLUSTER)
    write_sequence(root / "train", "big", ev, make_boxes(scale=10.0), BIG_H, BIG_W)
    return root, ev


# ---- unit cases ---------------------------------------------------------------------------------
def test_select_label_frames_30hz_by_hand():
    frames = select_label_frames(np.repeat(LABEL_T, 2))
    assert frames.t_us.tolist() == FRAME_T
    assert frames.base_period_us == 99_999
    assert frames.periods.tolist() == [1] * (len(FRAME_T) - 1)
    assert frames.source_rate_hz == pytest.approx(30.0, abs=0.01)


def test_select_label_frames_60hz_jitter_and_gaps():
    t = [100_000 + round(k * 1e6 / 60) for k in range(40)]         # 60 Hz: base = 6 periods
    t[6] += 1_500          # 1.5 ms late: kept, and the next frames are measured from it
    t[12] += 4_000         # 102_500 us after t[6]: 2.5 ms off the grid, dropped
    kept_k = [0, 6, 18, 30, 36]   # 18 is 198_500 us (2 periods) after t[6]; 19..29 are missing
    t = [v for k, v in enumerate(t) if not 19 <= k <= 29]
    frames = select_label_frames(np.asarray(t))
    assert frames.t_us.tolist() == [100_000, 201_500, 400_000, 600_000, 700_000]
    assert frames.periods.tolist() == [1, 2, 2, 1]
    assert frames.t_us.tolist() == [t[k if k < 19 else k - 11] for k in kept_k]
    assert frames.base_period_us == 6 * 16_667        # 6 x the median spacing (16_667 us)


def test_select_label_frames_nothing_after_align():
    assert select_label_frames(np.asarray([0, 50_000, 90_000])).t_us.size == 0


def test_representation_timestamps_by_hand():
    ends, idx = representation_timestamps(np.asarray(FRAME_T), np.full(len(FRAME_T) - 1, 2), 50_000)
    assert ends.tolist() == expected_window_ends()
    assert idx.tolist() == [1 + 2 * i for i in range(len(FRAME_T))]
    single, idx1 = representation_timestamps(np.asarray([260_000]), np.zeros(0, dtype=np.int64), 50_000)
    # 260_000 - k * 50_000 > 0 for k = 0..5; the smallest (10_000, a partial window) is dropped
    assert single.tolist() == [60_000, 110_000, 160_000, 210_000, 260_000] and idx1.tolist() == [4]


def test_filter_boxes_reasons_by_hand():
    rows = [(0, 10, 10, 20, 10, 1),       # kept as is
            (0, 10, 10, 20, 10, 9),       # class 9 of 8: unknown_class
            (0, 100, 5, 10, 10, 0),       # right of a 64-wide frame: zero_area
            (0, -10, 5, 30, 10, 0),       # clipped to x 0..20: kept, w 20
            (0, 50, 40, 20, 20, 0),       # clipped to the last pixel: x2 63, y2 47 -> w 13, h 7
            (0, 10, 10, 4, 10, 0),        # w 4 < 5: small_side
            (0, 2, 2, 58, 10, 0)]         # w 58 > floor(0.9 * 64) = 57: too_wide (train only)
    boxes = np.zeros(len(rows), BBOX_DTYPE)
    for i, r in enumerate(rows):
        boxes[i]["t"], boxes[i]["x"], boxes[i]["y"], boxes[i]["w"], boxes[i]["h"], boxes[i]["class_id"] = r
    kept, dropped = filter_boxes(boxes, 48, 64, train=True, num_classes=8)
    assert dropped == {"unknown_class": 1, "zero_area": 1, "small_side": 1, "small_diag": 0, "too_wide": 1}
    assert [(b["x"], b["y"], b["w"], b["h"]) for b in kept] == [(10, 10, 20, 10), (0, 5, 20, 10),
                                                                (50, 40, 13, 7)]
    kept_val, dropped_val = filter_boxes(boxes, 48, 64, train=False, num_classes=8)
    assert dropped_val["too_wide"] == 0 and len(kept_val) == 4
    assert boxes["x"][3] == -10                                    # input untouched


def test_prophesee_label_filter_as_rvt_gen1_by_hand():
    # RVT's Gen1 preprocessing (apply_psee_bbox_filter): w >= 10, h >= 10 and w^2 + h^2 >= 30^2 at 304x240
    assert prophesee_label_filter(240, 304) == (10.0, 30.0) and prophesee_label_filter(720, 1280) == (20.0, 60.0)
    rows = [(0, 10, 10, 10, 30, 0),       # diag sqrt(1000) = 31.6, sides 10: kept
            (0, 10, 10, 12, 25, 0),       # sides fine, diag sqrt(769) = 27.7 < 30: small_diag
            (0, 10, 10, 21, 21, 0),       # diag sqrt(882) = 29.7 < 30: small_diag
            (0, 10, 10, 9, 40, 0),        # w 9 < 10: small_side
            (0, 10, 10, 18, 24, 0)]       # diag exactly 30: kept (>=)
    boxes = np.zeros(len(rows), BBOX_DTYPE)
    for i, r in enumerate(rows):
        boxes[i]["t"], boxes[i]["x"], boxes[i]["y"], boxes[i]["w"], boxes[i]["h"], boxes[i]["class_id"] = r
    kept, dropped = filter_boxes(boxes, 240, 304, train=True, num_classes=2, min_side_px=10, min_diag_px=30)
    assert [(b["w"], b["h"]) for b in kept] == [(10, 30), (18, 24)]
    assert dropped["small_diag"] == 2 and dropped["small_side"] == 1


def test_event_windows_inclusive_and_chunked():
    ev = make_events(np.random.default_rng(5), 4, 4, n=3000, extra=[(100_000, 0, 0, 1)])
    calls = []

    def read(a, b):
        calls.append((a, b))
        return ev[(ev["t"] >= a) & (ev["t"] < b)]

    windows = EventWindows(read, 50_000, chunk_us=120_000)
    for end in (100_000, 150_000, 199_999, 600_000, 1_400_000):
        np.testing.assert_array_equal(windows.window(end), window_events(ev, end))
    assert all(b - a <= 800_001 for a, b in calls)     # never the whole recording in one read
    with pytest.raises(ValueError, match="must not decrease"):
        windows.window(1_000_000)


# ---- end to end -----------------------------------------------------------------------------------
def test_layout_and_dtypes(small_pre):
    dst, _, summary = small_pre
    assert summary["done"] == 2 and summary["downsample"] == "none" and summary["repr_hw"] == [48, 64]
    seq_dir = dst / "train" / "train_seq"
    with np.load(seq_dir / "labels_v2" / "labels.npz") as data:
        assert sorted(data.files) == ["labels", "objframe_idx_2_label_idx"]
        assert data["labels"].dtype == BBOX_DTYPE
        assert data["objframe_idx_2_label_idx"].dtype == np.int64
    assert np.load(seq_dir / "labels_v2" / "timestamps_us.npy").dtype == np.int64
    rdir = seq_dir / "event_representations_v2" / REPR
    assert sorted(p.name for p in rdir.iterdir()) == ["event_representations.h5",
                                                      "objframe_idx_2_repr_idx.npy", "timestamps_us.npy"]
    assert np.load(rdir / "timestamps_us.npy").dtype == np.int64
    assert np.load(rdir / "objframe_idx_2_repr_idx.npy").dtype == np.int64
    with h5py.File(rdir / "event_representations.h5", "r") as fh:
        ds = fh["data"]
        assert ds.dtype == np.uint8 and ds.shape == (len(expected_window_ends()), 20, 48, 64)
        assert ds.chunks == (1, 20, 48, 64)
        plist = ds.id.get_create_plist()
        code, _, values, _ = plist.get_filter(0)
        assert plist.get_nfilters() == 1 and code == 32001     # Blosc
        assert values[-3:] == (1, 1, 5)                        # clevel 1, byte shuffle, zstd
    assert (dst / "dataset.yaml").is_file()
    info = json.loads((dst / "preprocess.json").read_text())
    assert info["complete"] and info["source_hw"] == [48, 64] and info["label_rate_hz"] == 10.0
    assert info["sequences"]["train/train_seq"]["reprs"] == len(expected_window_ends())


def test_window_ends_and_label_frames(small_pre):
    dst, _, _ = small_pre
    seq = PreprocessedSequence(dst / "train" / "train_seq", REPR)
    assert seq.repr_timestamps_us.tolist() == expected_window_ends()
    assert seq.label_timestamps_us.tolist() == FRAME_T               # ~10 Hz out of 30 Hz
    np.testing.assert_array_equal(seq.repr_timestamps_us[seq.label_repr_idx], FRAME_T)
    source = make_boxes()
    for j, t in enumerate(FRAME_T):
        got = seq.label_frame(j)
        want = source[source["t"] == t]
        np.testing.assert_array_equal(got, want)                     # nothing filtered here
        np.testing.assert_array_equal(seq.labels_at_repr(int(seq.label_repr_idx[j])), want)
    assert seq.labels_at_repr(0) is None and seq.labels_at_repr(2) is None


def test_histograms_equal_plain_loop_on_exact_windows(small_pre):
    dst, ev, _ = small_pre
    seq = PreprocessedSequence(dst / "train" / "train_seq", REPR)
    data = seq.reprs(0, seq.num_reprs)
    ends = expected_window_ends()
    for i, t_end in enumerate(ends):
        expected = dense(histogram_counts(window_events(ev["train"], t_end)), (20, SMALL_H, SMALL_W))
        np.testing.assert_array_equal(data[i], expected, err_msg=f"window {i} ending {t_end}")
    # The boundary events: the one at FRAME_T[1] is counted in two windows, the one just before the
    # window start in none of the windows ending at FRAME_T[1].
    i = ends.index(FRAME_T[1])
    assert data[i][:, 4, 3].sum() >= 1 and data[i + 1][:, 4, 3].sum() >= 1
    assert data[i][:, 6, 5].sum() >= 1


def test_round_trip_info_and_listing(small_pre):
    dst, _, _ = small_pre
    info = read_preprocess_info(dst)
    assert info["inferred"] is False and info["repr_hw"] == [48, 64] and info["splits"] == {"train": 1, "val": 1}
    assert [p.name for p in list_sequences(dst, "val")] == ["val_seq"]


def test_ds2_nearest_is_auto_for_1280x720(big_raw, tmp_path):
    raw, ev = big_raw
    summary = preprocess_dataset(raw, tmp_path / "pre", workers=1, progress=False)
    assert summary["downsample"] == "ds2_nearest" and summary["repr_hw"] == [360, 640]
    seq = PreprocessedSequence(tmp_path / "pre" / "train" / "big", REPR)
    assert seq.repr_file.name == "event_representations_ds2_nearest.h5"
    assert (seq.height, seq.width, seq.num_reprs) == (360, 640, len(expected_window_ends()))
    for i in (0, 5, seq.num_reprs - 1):
        counts = histogram_counts(window_events(ev, int(seq.repr_timestamps_us[i])),
                                  keep=lambda x, y: x % 2 == 1 and y % 2 == 1,
                                  move=lambda x, y: (x // 2, y // 2))
        np.testing.assert_array_equal(seq.reprs(i, i + 1)[0], dense(counts, (20, 360, 640)))
    # Labels stay at source resolution in labels.npz and are halved by the reader.
    frame = seq.label_frame(0, in_repr_pixels=False)
    half = seq.label_frame(0)
    np.testing.assert_allclose(half["x"], frame["x"] * 0.5)
    np.testing.assert_allclose(half["w"], frame["w"] * 0.5)


def test_ds2_sum_keeps_every_event(big_raw, tmp_path):
    raw, ev = big_raw
    preprocess_dataset(raw, tmp_path / "pre", downsample="sum", workers=1, progress=False)
    seq = PreprocessedSequence(tmp_path / "pre" / "train" / "big", REPR)
    assert seq.repr_file.name == "event_representations_ds2_sum.h5" and seq.height == 360
    i = expected_window_ends().index(FRAME_T[2])
    counts = histogram_counts(window_events(ev, FRAME_T[2]), move=lambda x, y: (x // 2, y // 2))
    got = seq.reprs(i, i + 1)[0]
    np.testing.assert_array_equal(got, dense(counts, (20, 360, 640)))
    assert got[10:, 50, 100].sum() == 10            # the 12-event cluster, clipped at 10 in its bin
    assert int(got.sum()) >= window_events(ev, FRAME_T[2]).size - 2


def test_label_filtering_in_the_pipeline(tmp_path):
    rng = np.random.default_rng(3)
    t = FRAME_T[0]
    extra = [(t, 10, 10, 20, 10, 9),          # unknown_class
             (t, 100, 5, 10, 10, 0),          # zero_area
             (t, 10, 10, 4, 10, 0),           # small_side
             (t, 2, 2, 60, 10, 0)]            # too_wide on train, kept on val
    for split in ("train", "val"):
        write_sequence(tmp_path / "raw" / split, "s", make_events(rng, SMALL_H, SMALL_W, n=500),
                       make_boxes(extra_rows=extra), SMALL_H, SMALL_W)
    summary = preprocess_dataset(tmp_path / "raw", tmp_path / "pre", workers=1, progress=False)
    assert summary["labels_dropped"] == {"unknown_class": 2, "zero_area": 2, "small_side": 2, "small_diag": 0,
                                         "too_wide": 1}
    info = json.loads((tmp_path / "pre" / "preprocess.json").read_text())
    assert info["sequences"]["train/s"]["labels_dropped"]["too_wide"] == 1
    train = PreprocessedSequence(tmp_path / "pre" / "train" / "s", REPR).label_frame(0)
    val = PreprocessedSequence(tmp_path / "pre" / "val" / "s", REPR).label_frame(0)
    assert len(train) == 2 and len(val) == 3 and val["w"].max() == 60
    # 15 of 45 label times are kept at 10 Hz... 14 here (k = 4..43): thinned boxes are counted.
    assert summary["labels_kept"] == 2 * 2 * len(FRAME_T) + 1
    assert summary["labels_thinned"] == 2 * 2 * (45 - len(FRAME_T))
    # A smaller side limit keeps the 4 px box (small-object studies); it is recorded in the settings.
    summary = preprocess_dataset(tmp_path / "raw", tmp_path / "pre3", workers=1, progress=False,
                                 min_box_side_px=3)
    assert summary["labels_dropped"]["small_side"] == 0
    assert json.loads((tmp_path / "pre3" / "preprocess.json").read_text())["min_box_side_px"] == 3.0
    # RVT's Gen1 rule by name: side 10 and diagonal 30 at this small sensor; recorded in the settings
    summary = preprocess_dataset(tmp_path / "raw", tmp_path / "psee", workers=1, progress=False,
                                 label_filter="prophesee")
    info = json.loads((tmp_path / "psee" / "preprocess.json").read_text())
    assert (info["min_box_side_px"], info["min_box_diag_px"]) == (10.0, 30.0)
    assert summary["labels_dropped"]["small_side"] >= 2


def test_histogram_overflow_rvt_wraps_and_saturate_clips(tmp_path):
    # 260 events in one cell and bin: RVT's uint8 accumulation stores 260 % 256 = 4 (then the cutoff
    # of 10 keeps 4); the saturating count stores min(260, 10) = 10. Other cells are the same in both.
    t_hot = FRAME_T[2] - 20_000
    ev = make_events(np.random.default_rng(5), SMALL_H, SMALL_W, extra=[(t_hot, 3, 4, 1)] * 260)
    write_sequence(tmp_path / "raw" / "train", "s", ev, make_boxes(), SMALL_H, SMALL_W)
    i = expected_window_ends().index(FRAME_T[2])
    counts = histogram_counts(window_events(ev, FRAME_T[2]))
    (channel, n), = [(c, k) for (c, y, x), k in counts.items() if (y, x) == (4, 3) and k >= 256]
    got = {}
    for mode in ("rvt", "saturate"):
        preprocess_dataset(tmp_path / "raw", tmp_path / mode, workers=1, progress=False, histogram_overflow=mode)
        assert json.loads((tmp_path / mode / "preprocess.json").read_text())["histogram_overflow"] == mode
        got[mode] = PreprocessedSequence(tmp_path / mode / "train" / "s", REPR).reprs(i, i + 1)[0]
    assert got["rvt"][channel, 4, 3] == min(n % 256, 10) and got["saturate"][channel, 4, 3] == 10
    got["rvt"][channel, 4, 3] = got["saturate"][channel, 4, 3]
    np.testing.assert_array_equal(got["rvt"], got["saturate"])
    with pytest.raises(PreprocessError, match="histogram overflow"):
        preprocess_dataset(tmp_path / "raw", tmp_path / "x", workers=1, progress=False, histogram_overflow="wrap")


def test_resume_redoes_leftover_tmp_and_skips_finished(small_raw, tmp_path):
    raw, _ = small_raw
    dst = tmp_path / "pre"
    preprocess_dataset(raw, dst, workers=1, progress=False)
    # Simulate a run killed while writing val_seq: the final folder is missing, a partial .tmp remains.
    import shutil

    shutil.rmtree(dst / "val" / "val_seq")
    (dst / "val" / "val_seq.tmp" / "labels_v2").mkdir(parents=True)
    (dst / "val" / "val_seq.tmp" / "labels_v2" / "labels.npz").write_bytes(b"partial")
    before = {p: p.stat().st_mtime_ns for p in (dst / "train").rglob("*")}
    summary = preprocess_dataset(raw, dst, workers=1, progress=False)
    assert (summary["done"], summary["skipped"]) == (1, 1)
    assert not (dst / "val" / "val_seq.tmp").exists()
    assert PreprocessedSequence(dst / "val" / "val_seq", REPR).num_reprs == len(expected_window_ends())
    assert {p: p.stat().st_mtime_ns for p in (dst / "train").rglob("*")} == before
    # A third run has nothing to do and writes nothing inside the sequences.
    everything = {p: p.stat().st_mtime_ns for p in dst.rglob("*") if p.name != "preprocess.json"}
    summary = preprocess_dataset(raw, dst, workers=1, progress=False)
    assert (summary["done"], summary["skipped"], summary["reprs"]) == (0, 2, 0)
    assert {p: p.stat().st_mtime_ns for p in dst.rglob("*") if p.name != "preprocess.json"} == everything


def test_one_run_per_output_folder(small_raw, tmp_path):
    import subprocess
    import sys

    dst = tmp_path / "pre"
    dst.mkdir()
    (dst / ".preprocess.lock").write_text(str(os.getpid()))          # a live process holds it
    with pytest.raises(PreprocessError, match=rf"\.preprocess\.lock: output folder .* is held by process {os.getpid()}; wait"):
        preprocess_dataset(small_raw[0], dst, workers=1, progress=False)
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    (dst / ".preprocess.lock").write_text(str(gone.pid))             # left by a dead process
    assert preprocess_dataset(small_raw[0], dst, workers=1, progress=False)["done"] == 2
    assert not (dst / ".preprocess.lock").exists()


def test_other_settings_into_same_output_are_refused(small_pre, small_raw):
    dst, _, _ = small_pre
    with pytest.raises(PreprocessError, match=r"nbins: 10 -> 5"):
        preprocess_dataset(small_raw[0], dst, nbins=5, workers=1, progress=False)


def test_missing_bbox_file_is_named(tmp_path):
    split = tmp_path / "raw" / "train"
    split.mkdir(parents=True)
    write_events_h5(split / "lonely_td.h5", make_events(np.random.default_rng(0), 8, 8, n=10), 8, 8)
    with pytest.raises(PreprocessError, match=r"lonely_td.h5: no label file lonely_bbox.npy"):
        preprocess_dataset(tmp_path / "raw", tmp_path / "pre", workers=1, progress=False)
    (split / "lonely_td.h5").unlink()
    save_labels(split / "orphan_bbox.npy", make_boxes())
    with pytest.raises(PreprocessError, match=r"orphan_bbox.npy: no event file"):
        preprocess_dataset(tmp_path / "raw", tmp_path / "pre", workers=1, progress=False)


def test_bad_labels_are_named(tmp_path):
    split = tmp_path / "raw" / "val"
    split.mkdir(parents=True)
    write_events_h5(split / "bad_td.h5", make_events(np.random.default_rng(0), 8, 8, n=10), 8, 8)
    np.save(split / "bad_bbox.npy", make_boxes()[["t", "x", "y", "w", "class_id"]])
    with pytest.raises(PreprocessError, match=r"bad_bbox.npy: missing field\(s\) \['h'\]"):
        preprocess_dataset(tmp_path / "raw", tmp_path / "pre", workers=1, progress=False)
    assert not (tmp_path / "pre").exists()          # failed before writing anything


def test_a_failing_sequence_does_not_stop_the_others(tmp_path):
    rng = np.random.default_rng(0)
    write_sequence(tmp_path / "raw" / "train", "good", make_events(rng, SMALL_H, SMALL_W, n=200),
                   make_boxes(), SMALL_H, SMALL_W)
    bad = make_events(rng, SMALL_H, SMALL_W, n=200)
    bad_path = tmp_path / "raw" / "train" / "bad_td.h5"
    with h5py.File(bad_path, "w") as fh:                   # time runs backwards after 100 events
        for name in ("x", "y", "p"):
            fh.create_dataset(f"events/{name}", data=bad[name])
        fh.create_dataset("events/t", data=np.concatenate([bad["t"][:100], bad["t"][100:] - 1_000_000]))
        fh.create_dataset("events/height", data=SMALL_H)
        fh.create_dataset("events/width", data=SMALL_W)
    save_labels(tmp_path / "raw" / "train" / "bad_bbox.npy", make_boxes())
    with pytest.raises(PreprocessError, match=r"1 sequence\(s\) failed; first: train/bad: .*bad_td.h5"):
        preprocess_dataset(tmp_path / "raw", tmp_path / "pre", workers=1, progress=False)
    assert [p.name for p in list_sequences(tmp_path / "pre", "train")] == ["good"]
    assert not (tmp_path / "pre" / "train" / "bad.tmp").exists()
    info = json.loads((tmp_path / "pre" / "preprocess.json").read_text())
    assert info["complete"] is False and list(info["failed"]) == ["train/bad"]


def test_mixed_resolutions_are_refused(tmp_path):
    rng = np.random.default_rng(0)
    write_sequence(tmp_path / "raw" / "train", "a", make_events(rng, 8, 8, n=10), make_boxes(), 8, 8)
    write_sequence(tmp_path / "raw" / "val", "b", make_events(rng, 8, 10, n=10), make_boxes(), 8, 10)
    with pytest.raises(PreprocessError, match="b_td.h5: sensor 8x10 differs"):
        preprocess_dataset(tmp_path / "raw", tmp_path / "pre", workers=1, progress=False)


def test_sequence_without_labels_after_filtering_is_not_written(tmp_path):
    rng = np.random.default_rng(0)
    boxes = make_boxes()
    boxes["w"] = 3                                      # every box under 5 px
    write_sequence(tmp_path / "raw" / "train", "tiny", make_events(rng, 16, 16, n=50), boxes, 16, 16)
    write_sequence(tmp_path / "raw" / "train", "ok", make_events(rng, 16, 16, n=50),
                   make_boxes(scale=0.5), 16, 16)
    summary = preprocess_dataset(tmp_path / "raw", tmp_path / "pre", workers=1, progress=False)
    assert (summary["done"], summary["empty"]) == (1, 1)
    assert [p.name for p in list_sequences(tmp_path / "pre", "train")] == ["ok"]
    info = json.loads((tmp_path / "pre" / "preprocess.json").read_text())
    assert info["empty_sequences"] == ["train/tiny"]


def write_dat(path: Path, events, height, width):
    """A Gen1-style DAT file: header lines, type/size bytes, (uint32 t, uint32 x|y<<14|p<<28)."""
    header = f"% Data file containing Event2D events.\n% Version 2\n% Height {height}\n% Width {width}\n"
    records = np.zeros(events.size, dtype=[("t", "<u4"), ("data", "<u4")])
    records["t"] = events["t"]
    records["data"] = (events["x"].astype(np.uint32) | (events["y"].astype(np.uint32) << 14)
                       | (events["p"].astype(np.uint32) << 28))
    with open(path, "wb") as fh:
        fh.write(header.encode() + bytes([0, 8]) + records.tobytes())


def test_late_starting_clock_gets_no_leading_empty_windows(tmp_path):
    # Events and labels shifted by 5 s: windows start at the first event, not at t = 0, and the
    # first label frame is the first at or after 5 s + 100 ms; otherwise the same timeline.
    shift = 5_000_000
    ev = make_events(np.random.default_rng(4), SMALL_H, SMALL_W, n=600)
    ev["t"] += shift
    boxes = make_boxes()
    boxes["t"] += shift
    write_sequence(tmp_path / "raw" / "train", "late", ev, boxes, SMALL_H, SMALL_W)
    preprocess_dataset(tmp_path / "raw", tmp_path / "pre", workers=1, progress=False)
    seq = PreprocessedSequence(tmp_path / "pre" / "train" / "late", REPR)
    assert seq.repr_timestamps_us.tolist() == [e + shift for e in expected_window_ends()]
    assert seq.label_timestamps_us.tolist() == [t + shift for t in FRAME_T]


@pytest.mark.parametrize("fmt", ["dat", "raw"])
def test_dat_and_raw_sources_give_the_same_result_as_h5(small_raw, small_pre, tmp_path, fmt):
    from evdet.events import write_raw

    raw, ev = small_raw
    split = tmp_path / "raw" / "train"
    split.mkdir(parents=True)
    if fmt == "dat":
        write_dat(split / "train_seq_td.dat", ev["train"], SMALL_H, SMALL_W)
    else:
        write_raw(split / "train_seq.raw", ev["train"], SMALL_H, SMALL_W, evt_format="evt3")
    save_labels(split / "train_seq_bbox.npy", make_boxes())
    preprocess_dataset(tmp_path / "raw", tmp_path / "pre", workers=1, progress=False)
    got = PreprocessedSequence(tmp_path / "pre" / "train" / "train_seq", REPR)
    from_h5 = PreprocessedSequence(small_pre[0] / "train" / "train_seq", REPR)
    np.testing.assert_array_equal(got.reprs(0, got.num_reprs), from_h5.reprs(0, from_h5.num_reprs))
    np.testing.assert_array_equal(got.repr_timestamps_us, from_h5.repr_timestamps_us)


@pytest.mark.slow
def test_worker_processes_give_the_same_result(small_raw, small_pre, tmp_path):
    raw, _ = small_raw
    summary = preprocess_dataset(raw, tmp_path / "pre", workers=2, progress=False)
    assert summary["done"] == 2
    for split in ("train", "val"):
        a = PreprocessedSequence(tmp_path / "pre" / split / f"{split}_seq", REPR)
        b = PreprocessedSequence(small_pre[0] / split / f"{split}_seq", REPR)
        np.testing.assert_array_equal(a.reprs(0, a.num_reprs), b.reprs(0, b.num_reprs))


@pytest.mark.parametrize("kind, nbins, channels, dtype", [("voxel_grid", 5, 5, np.float32),
                                                          ("event_frame", 10, 2, np.uint8),
                                                          ("time_surface", 10, 2, np.float32)])
def test_other_representations_use_the_same_windows(small_raw, tmp_path, kind, nbins, channels, dtype):
    from evdet.events import build_representation, representation_name

    raw, ev = small_raw
    summary = preprocess_dataset(raw, tmp_path / "pre", representation=kind, nbins=nbins, workers=1,
                                 progress=False)
    name = representation_name(kind, window_ms=50, nbins=nbins)
    assert summary["representation"] == name
    seq = PreprocessedSequence(tmp_path / "pre" / "train" / "train_seq", name)
    data = seq.reprs(0, seq.num_reprs)
    assert data.shape == (len(expected_window_ends()), channels, SMALL_H, SMALL_W) and data.dtype == dtype
    extra = {"voxel_grid": {"nbins": nbins}, "event_frame": {}}.get(kind)
    for i in (0, 7, seq.num_reprs - 1):
        t_end = expected_window_ends()[i]
        params = {"t_ref_us": t_end} if extra is None else extra
        want = build_representation(kind, window_events(ev["train"], t_end), SMALL_H, SMALL_W, **params)
        np.testing.assert_array_equal(data[i], want)


# ---- properties -----------------------------------------------------------------------------------

@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**31), window_us=st.integers(1, 200_000), chunk_us=st.integers(1, 600_000),
       n_ends=st.integers(1, 30))
def test_event_windows_match_brute_force(seed, window_us, chunk_us, n_ends):
    rng = np.random.default_rng(seed)
    ev = make_events(rng, 4, 4, n=int(rng.integers(0, 400)))
    ends = np.sort(rng.integers(-100_000, 1_800_000, n_ends))
    windows = EventWindows(lambda a, b: ev[(ev["t"] >= a) & (ev["t"] < b)], window_us, chunk_us=chunk_us)
    for end in ends:
        t = ev["t"]
        want = ev[(t >= end - window_us) & (t <= end)]
        np.testing.assert_array_equal(windows.window(int(end)), want)


@settings(max_examples=40, deadline=None)
@given(rate_hz=st.sampled_from([20, 30, 60]), seed=st.integers(0, 2**31),
       n=st.integers(2, 120), drop=st.floats(0, 0.5))
def test_label_timeline_properties(rate_hz, seed, n, drop):
    rng = np.random.default_rng(seed)
    t = np.round(np.arange(n) * 1e6 / rate_hz).astype(np.int64) + rng.integers(-800, 800, n)
    t = np.unique(np.clip(t, 0, None))
    t = t[rng.uniform(size=t.size) >= drop] if t.size > 2 else t
    frames = select_label_frames(t)
    if frames.t_us.size == 0:
        assert t.size == 0 or t.max() < 100_000      # frames start at the first label >= 100 ms
        return
    assert set(frames.t_us.tolist()) <= set(t.tolist())
    assert frames.t_us[0] >= 100_000
    # thinned to ~10 Hz: consecutive kept frames are whole base periods apart (+-2 ms)
    gaps = np.diff(frames.t_us)
    assert np.all(np.abs(gaps - frames.periods * frames.base_period_us) <= 2_000)
    steps = max(1, round(frames.base_period_us / 50_000))
    ends, idx = representation_timestamps(frames.t_us, frames.periods * steps, 50_000)
    assert np.all(np.diff(ends) > 0)
    np.testing.assert_array_equal(ends[idx], frames.t_us)
    assert ends[-1] == frames.t_us[-1] and ends[0] > 0
    steps_before = np.diff(ends[: idx[0] + 1])
    assert np.all(steps_before == 50_000)     # stepping back from the first frame
    # between frames: base period / windows per period, within the 2 ms label jitter
    steps_after = np.diff(ends[idx[0]:])
    assert np.all(np.abs(steps_after - frames.base_period_us / steps) <= 2_000)


# ---- kills and damaged output (issue 10) ---------------------------------------------------------
def write_long_raw(root: Path, n_seq: int = 4, duration_us: int = 3_000_000) -> None:
    """Sequences long enough (60 windows each) that a run can be killed while workers write."""
    for s in range(n_seq):
        rng = np.random.default_rng(100 + s)
        n = duration_us // 400
        ev = np.zeros(n, EVENT_DTYPE)
        ev["t"] = np.sort(rng.integers(0, duration_us, n))
        ev["x"], ev["y"], ev["p"] = rng.integers(0, SMALL_W, n), rng.integers(0, SMALL_H, n), rng.integers(0, 2, n)
        t = np.arange(0, duration_us, PERIOD_US)
        boxes = np.zeros(t.size, BBOX_DTYPE)
        boxes["t"], boxes["x"], boxes["y"], boxes["w"], boxes["h"] = t, 5 + s, 6, 12, 10
        boxes["class_id"] = s % 3
        write_sequence(root / ("train" if s % 2 == 0 else "val"), f"s{s}", ev, boxes, SMALL_H, SMALL_W)


def assert_same_output(got_root: Path, want_root: Path) -> None:
    """Every sequence of ``want_root`` exists in ``got_root`` with equal arrays."""
    want = sorted(p.relative_to(want_root) for p in want_root.glob("*/*") if p.is_dir())
    got = sorted(p.relative_to(got_root) for p in got_root.glob("*/*") if p.is_dir())
    assert got == want
    for rel in want:
        a, b = PreprocessedSequence(got_root / rel, REPR), PreprocessedSequence(want_root / rel, REPR)
        np.testing.assert_array_equal(a.reprs(0, a.num_reprs), b.reprs(0, b.num_reprs))
        np.testing.assert_array_equal(a.repr_timestamps_us, b.repr_timestamps_us)
        np.testing.assert_array_equal(a.label_repr_idx, b.label_repr_idx)
        np.testing.assert_array_equal(a.all_labels(), b.all_labels())
        a.close()
        b.close()


def child_pids(pid: int) -> list[int]:
    """Processes whose parent is ``pid`` (read from /proc, Linux)."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def running(pid: int) -> bool:
    """True while process ``pid`` exists and is not a zombie waiting to be reaped (Linux)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def wait_until(condition, timeout_s: float, what: str) -> None:
    import time

    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def finished(dst: Path) -> list[Path]:
    return [p for p in dst.glob("*/*") if p.is_dir() and not p.name.endswith(".tmp")]


@pytest.mark.slow                  # ~10 process starts: 8 s idle, 25 s on 2 busy cores
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc (Linux)")
def test_killing_the_main_process_alone_kills_its_workers_and_reruns_lose_nothing(tmp_path):
    import signal
    import subprocess
    import sys

    raw, dst = tmp_path / "raw", tmp_path / "pre"
    write_long_raw(raw)
    preprocess_dataset(raw, tmp_path / "ref", workers=1, progress=False)
    code = ("from evdet.data.preprocess.dataset import preprocess_dataset; "
            f"preprocess_dataset({str(raw)!r}, {str(dst)!r}, workers=2, progress=False)")

    def cmdline(pid):
        try:
            return Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:  # the process ended between listing and reading
            return b""

    def workers_of(proc):
        return [p for p in child_pids(proc.pid) if b"spawn_main" in cmdline(p)]

    moments = {  # kill the main process (alone, SIGKILL) at these moments of successive runs
        "workers started": lambda proc, before: len(workers_of(proc)) == 2,
        "a sequence being written": lambda proc, before: any(dst.glob("*/*.tmp")),
        "a sequence finished": lambda proc, before: len(finished(dst)) > before,
    }
    for moment, condition in moments.items():
        before = len(finished(dst))
        proc = subprocess.Popen([sys.executable, "-c", code])
        wait_until(lambda: condition(proc, before) or proc.poll() is not None, 60, moment)
        assert proc.poll() is None, f"the run ended before '{moment}'"
        workers = workers_of(proc)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        wait_until(lambda: not any(running(p) for p in workers), 10,
                   f"the workers to die after the main process was killed at '{moment}'")
    summary = preprocess_dataset(raw, dst, workers=1, progress=False)
    assert summary["done"] + summary["skipped"] == 4
    assert_same_output(dst, tmp_path / "ref")
    assert json.loads((dst / "preprocess.json").read_text())["complete"] is True
    assert not list(dst.glob("*/*.tmp")) and not (dst / ".preprocess.lock").exists()


@pytest.mark.parametrize("damage", ["truncated h5", "unwritten chunks, no manifest", "missing timestamps",
                                    "corrupt labels"])
def test_a_damaged_finished_folder_is_redone_not_trusted(small_raw, small_pre, tmp_path, damage):
    raw, _ = small_raw
    dst = tmp_path / "pre"
    preprocess_dataset(raw, dst, workers=1, progress=False)
    seq = dst / "val" / "val_seq"
    h5 = seq / "event_representations_v2" / REPR / "event_representations.h5"
    if damage == "truncated h5":          # what a killed writer leaves behind
        data = h5.read_bytes()
        h5.write_bytes(data[: len(data) // 2])
    elif damage == "unwritten chunks, no manifest":     # an older evdet killed while writing
        (seq / "manifest.json").unlink()
        with h5py.File(h5, "r+") as fh:                 # the last representations never written
            data = fh["data"][:]
            del fh["data"]
            fh.create_dataset("data", shape=data.shape, dtype=data.dtype, chunks=(1, *data.shape[1:]))
            fh["data"][:-3] = data[:-3]
    elif damage == "corrupt labels":      # same size, a byte changed: the zip CRC no longer matches
        npz = seq / "labels_v2" / "labels.npz"
        data = bytearray(npz.read_bytes())
        data[60] ^= 0xFF
        npz.write_bytes(bytes(data))
    else:
        (seq / "event_representations_v2" / REPR / "timestamps_us.npy").unlink()
    summary = preprocess_dataset(raw, dst, workers=1, progress=False)
    assert (summary["done"], summary["skipped"]) == (1, 1)
    assert summary["redone"] == 1
    assert_same_output(dst, small_pre[0])


def test_a_whole_folder_without_manifest_is_checked_and_kept(small_raw, small_pre, tmp_path):
    """Folders written before manifests existed are kept after a full check, not recomputed."""
    raw, _ = small_raw
    dst = tmp_path / "pre"
    preprocess_dataset(raw, dst, workers=1, progress=False)
    seq = dst / "val" / "val_seq"
    (seq / "manifest.json").unlink()
    h5 = seq / "event_representations_v2" / REPR / "event_representations.h5"
    before = h5.stat().st_mtime_ns
    summary = preprocess_dataset(raw, dst, workers=1, progress=False)
    assert (summary["done"], summary["skipped"], summary["redone"]) == (0, 2, 0)
    assert h5.stat().st_mtime_ns == before
    manifest = json.loads((seq / "manifest.json").read_text())
    assert manifest["counts"] == {"reprs": len(expected_window_ends()), "label_frames": len(FRAME_T),
                                  "labels_kept": 2 * len(FRAME_T)}
    assert_same_output(dst, small_pre[0])


def test_verify_sequence_by_checksum_finds_a_changed_byte(small_pre, tmp_path):
    import shutil

    from evdet.data.preprocess.manifest import IncompleteSequenceError, verify_sequence

    seq = tmp_path / "seq"
    shutil.copytree(small_pre[0] / "train" / "train_seq", seq)
    counts = verify_sequence(seq, REPR, "none", checksums=True)
    assert counts["reprs"] == len(expected_window_ends()) and counts["label_frames"] == len(FRAME_T)
    path = seq / "event_representations_v2" / REPR / "event_representations.h5"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 1              # same size, one bit changed in an early chunk
    path.write_bytes(bytes(data))
    verify_sequence(seq, REPR, "none")     # sizes and the last chunk cannot see it
    with pytest.raises(IncompleteSequenceError, match=r"event_representations.h5: SHA-256 differs"):
        verify_sequence(seq, REPR, "none", checksums=True)


def test_survivors_of_a_killed_run_are_waited_for_or_named(small_raw, tmp_path):
    import subprocess
    import sys

    import socket

    from evdet.data.preprocess.workers import OutputLock

    dst = tmp_path / "pre"
    dst.mkdir()
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    stray = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        (dst / ".preprocess.lock").write_text(f"{gone.pid}\n{stray.pid}\n")   # dead main, live worker
        with pytest.raises(PreprocessError, match=rf"helper process\(es\) \[{stray.pid}\] of the dead process {gone.pid}"):
            with OutputLock(dst, survivor_wait_s=0.2):
                pass
    finally:
        stray.kill()
        stray.wait()
    with OutputLock(dst, survivor_wait_s=0.2) as lock:                      # now it is gone
        assert lock.path.read_text().split() == [str(os.getpid()), socket.gethostname()]
    (dst / ".preprocess.lock").write_text("")           # created, its pid not yet written
    with pytest.raises(PreprocessError, match="another process is starting"):
        OutputLock(dst).__enter__()
    os.utime(dst / ".preprocess.lock", (0, 0))          # an empty lock from long ago is stale
    with OutputLock(dst) as lock:
        assert lock.path.read_text().split() == [str(os.getpid()), socket.gethostname()]


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc (Linux)")
@pytest.mark.parametrize("platform", ["linux", "other"])
def test_die_with_parent_ends_a_process_whose_parent_is_killed(tmp_path, platform):
    """The middle process starts a child that calls die_with_parent, prints the child's pid, and
    is killed; the child must end (by the kernel on Linux, by the watchdog elsewhere)."""
    import subprocess
    import sys

    child = ("import sys, time; sys.platform = %r; "
             "from evdet.data.preprocess.workers import die_with_parent; import os; "
             "die_with_parent(os.getppid()); print('ready', flush=True); time.sleep(30)") % platform
    middle = ("import subprocess, sys; "
              f"c = subprocess.Popen([sys.executable, '-c', {child!r}], stdout=subprocess.PIPE); "
              "ready = c.stdout.readline() == b'ready\\n'; print(c.pid if ready else 'not ready', flush=True); "
              "import time; time.sleep(30)")
    proc = subprocess.Popen([sys.executable, "-c", middle], stdout=subprocess.PIPE, text=True)
    pid = int(proc.stdout.readline())
    assert Path(f"/proc/{pid}").exists()
    proc.kill()
    proc.wait()
    wait_until(lambda: not running(pid), 5, "the child to die with its parent")
