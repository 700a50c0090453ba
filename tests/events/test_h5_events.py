"""HDF5 event files: writer, windowed reader (binary search), bad files."""

import os
import stat

import hdf5plugin  # noqa: F401  (Blosc filter for the raw h5py checks below)
import h5py
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evdet.events import (EVENT_DTYPE, EventFormatError, H5EventReader, OutOfRangeEventsWarning,
                          read_events, sensor_size, write_events_h5)

BLOSC_FILTER_ID = "32001"


def _in_window(ev, t0, t1):
    return ev[(ev["t"] >= t0) & (ev["t"] < t1)]


def test_round_trip_layout_and_compression(tmp_path, random_events):
    ev = random_events(5000, 48, 64, seed=1, t_max_us=1_000_000)
    path = tmp_path / "seq_td.h5"
    write_events_h5(path, ev, height=48, width=64)
    with h5py.File(path, "r") as fh:
        grp = fh["events"]
        assert sorted(grp.keys()) == ["height", "p", "t", "width", "x", "y"]
        assert grp["height"][()] == 48 and grp["width"][()] == 64
        assert grp["t"].dtype == np.int64 and grp["x"].dtype == np.uint16 and grp["p"].dtype == np.uint8
        assert BLOSC_FILTER_ID in grp["t"]._filters
    got = read_events(path)
    assert got.dtype == EVENT_DTYPE
    np.testing.assert_array_equal(got, ev)
    assert sensor_size(path) == (48, 64)
    assert [p.name for p in tmp_path.iterdir()] == ["seq_td.h5"]   # no temp file left behind
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask       # usual permissions, not 0600


def test_failed_write_keeps_previous_file(tmp_path, random_events):
    path = tmp_path / "a.h5"
    ev = random_events(100, 10, 10)
    write_events_h5(path, ev, 10, 10)
    before = path.read_bytes()
    with pytest.raises(EventFormatError, match="outside the 5x5 sensor"):
        write_events_h5(path, ev, 5, 5)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["a.h5"]


def test_empty_file(tmp_path):
    path = tmp_path / "empty.h5"
    write_events_h5(path, np.zeros(0, EVENT_DTYPE), 4, 4)
    with H5EventReader(path) as reader:
        assert reader.num_events == 0 and reader.t_first_us is None
        assert reader.read(0, 100).size == 0


@settings(max_examples=40, deadline=None)
@given(t0=st.integers(-100, 2_100_000), length=st.integers(0, 700_000))
def test_windows_match_boolean_mask(tmp_path_factory, t0, length):
    path = tmp_path_factory.getbasetemp() / "windows.h5"
    rng = np.random.default_rng(3)
    n = 40_000
    ev = np.zeros(n, EVENT_DTYPE)
    ev["t"] = np.sort(rng.integers(0, 2_000_000, n))
    ev["t"][1000:1500] = ev["t"][1000]             # many equal timestamps
    ev["x"] = rng.integers(0, 32, n)
    ev["y"] = rng.integers(0, 16, n)
    if not path.exists():
        write_events_h5(path, ev, 16, 32)
    got = read_events(path, t0, t0 + length)
    np.testing.assert_array_equal(got, _in_window(ev, t0, t0 + length))


def test_window_at_equal_timestamps_is_half_open(tmp_path):
    ev = np.zeros(5, EVENT_DTYPE)
    ev["t"] = [10, 20, 20, 20, 30]
    path = tmp_path / "eq.h5"
    write_events_h5(path, ev, 1, 1)
    assert read_events(path, 20, 30)["t"].tolist() == [20, 20, 20]
    assert read_events(path, 11, 20)["t"].tolist() == []
    assert read_events(path, None, 20)["t"].tolist() == [10]
    assert read_events(path, 21)["t"].tolist() == [30]


class _CountingDataset:
    """Wraps an h5py dataset and counts the elements read from it."""

    def __init__(self, ds):
        self.ds, self.elements_read = ds, 0
        self.shape, self.dtype = ds.shape, ds.dtype

    def __getitem__(self, key):
        out = self.ds[key]
        self.elements_read += np.size(out)
        return out


def test_window_read_does_not_load_whole_file(tmp_path, random_events):
    n = 400_000
    ev = random_events(n, 8, 8, t_max_us=20_000_000)
    path = tmp_path / "big.h5"
    write_events_h5(path, ev, 8, 8)
    with H5EventReader(path) as reader:
        for name in ("t", "x", "y", "p"):
            reader._datasets[name] = _CountingDataset(reader._datasets[name])
        got = reader.read(10_000_000, 10_050_000)
        np.testing.assert_array_equal(got, _in_window(ev, 10_000_000, 10_050_000))
        assert reader._datasets["t"].elements_read < 50_000       # search + the window, not n
        assert reader._datasets["x"].elements_read == got.size


def test_consecutive_windows_tile_the_recording(tmp_path, random_events):
    ev = random_events(20_000, 8, 8, t_max_us=1_000_000)
    path = tmp_path / "tile.h5"
    write_events_h5(path, ev, 8, 8)
    with H5EventReader(path) as reader:
        parts = [reader.read(s, s + 50_000) for s in range(0, 1_000_000, 50_000)]
    np.testing.assert_array_equal(np.concatenate(parts), ev)


def _write_raw_h5(path, t, x, y, p, size=True, attrs=False):
    with h5py.File(path, "w") as fh:
        grp = fh.create_group("events")
        for name, col in (("t", t), ("x", x), ("y", y), ("p", p)):
            grp.create_dataset(name, data=np.asarray(col))
        if size:
            grp.create_dataset("height", data=4)
            grp.create_dataset("width", data=6)
        if attrs:
            grp.attrs["height"], grp.attrs["width"] = 4, 6


def test_out_of_range_coordinates_dropped_with_count(tmp_path):
    path = tmp_path / "oor.h5"
    _write_raw_h5(path, [0, 1, 2, 3], np.array([0, 6, 5, 1], np.uint16), np.array([0, 0, 4, 3], np.uint16),
                  np.array([1, 0, 1, 0], np.uint8))
    with pytest.warns(OutOfRangeEventsWarning, match=r"oor\.h5: dropped 2 of 4 events"):
        ev = read_events(path)
    assert ev["t"].tolist() == [0, 3]


def test_size_from_attributes_and_missing_size(tmp_path):
    path = tmp_path / "attrs.h5"
    _write_raw_h5(path, [0], [0], [0], [0], size=False, attrs=True)
    assert sensor_size(path) == (4, 6)
    path = tmp_path / "nosize.h5"
    _write_raw_h5(path, [0], [0], [0], [0], size=False)
    with pytest.raises(EventFormatError, match=r"nosize\.h5: the file does not state its sensor size"):
        sensor_size(path)
    assert sensor_size(path, default=(720, 1280)) == (720, 1280)


@pytest.mark.parametrize(
    "cols, message",
    [
        (dict(t=[0.0, 1.0]), r"events/t has dtype float64"),
        (dict(t=[0, 5, 3, 7]), r"events/t decreases at index 2"),
        (dict(p=[0, 2, 0, 1]), r"events/p holds 2 at index 1"),
        (dict(y=[0, 1]), r"events/y has 2 entries but events/t has 4"),
    ],
)
def test_bad_files_name_file_and_field(tmp_path, cols, message):
    base = dict(t=[0, 1, 2, 3], x=[0, 1, 2, 3], y=[0, 1, 2, 3], p=[0, 1, 0, 1])
    base.update(cols)
    if len(base["t"]) == 2:
        base.update(x=[0, 1], y=[0, 1], p=[0, 1])
    path = tmp_path / "bad.h5"
    _write_raw_h5(path, base["t"], base["x"], base["y"], base["p"])
    with pytest.raises(EventFormatError, match=rf"bad\.h5: {message}"):
        read_events(path)


def test_decreasing_time_index_is_absolute_in_windowed_read(tmp_path):
    t = np.arange(100_000, dtype=np.int64)
    t[60_000] = 5                                   # decreases at 60_000
    path = tmp_path / "dec.h5"
    z = np.zeros_like(t)
    _write_raw_h5(path, t, z.astype(np.uint16), z.astype(np.uint16), z.astype(np.uint8))
    with pytest.raises(EventFormatError, match=r"events/t decreases at index (60000|60001)"):
        read_events(path, 59_000, 70_000)


def test_not_hdf5_and_missing_group(tmp_path):
    junk = tmp_path / "junk.h5"
    junk.write_bytes(b"not an hdf5 file")
    with pytest.raises(EventFormatError, match=r"junk\.h5: cannot open as HDF5"):
        read_events(junk)
    empty = tmp_path / "nogroup.h5"
    with h5py.File(empty, "w") as fh:
        fh.create_dataset("foo", data=[1])
    with pytest.raises(EventFormatError, match=r"nogroup\.h5: no 'events' group"):
        read_events(empty)
