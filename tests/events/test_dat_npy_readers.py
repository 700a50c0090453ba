"""Prophesee DAT (Gen1 / N-CARS) and structured .npy readers."""

import hashlib

import numpy as np
import pytest

from evdet.events import EventFormatError, OutOfRangeEventsWarning, read_events, sensor_size
from evdet.events.dat import read_dat_header

NCARS_DAT = "ncars-dat/ncars_obj_004397_td.dat"
NCARS_NPY = "ncars-dat/ncars_obj_004397_td.npy"
# From tests/fixtures/real/ncars-dat/README.md (t as <u8, x/y as <u2, polarity as bool).
NCARS_SHA3 = {
    "t": "213b5e09ab6a3775eb0025c236ec6bc7499f3baae67e058d98e64bff",
    "x": "83611ca9449e3c55bf15e88635393f80966e802d7ed404da8711ebe3",
    "y": "daec9d79e8d5bdf62350d333c47c1a631a4f49b230e2fc1e2f97dd5a",
    "on": "e6d46421bc0089139972883621b8a4fe05a10b89ccd8d39ab687797c",
}


def sha3_columns(ev):
    digest = lambda a: hashlib.sha3_224(np.ascontiguousarray(a).tobytes()).hexdigest()  # noqa: E731
    return {"t": digest(ev["t"].astype("<u8")), "x": digest(ev["x"].astype("<u2")),
            "y": digest(ev["y"].astype("<u2")), "on": digest(ev["p"].astype(bool))}


def dat_bytes(records, header="% Data file containing Event2D events.\n% Version 2\n", type_size=b"\x00\x08"):
    """A DAT file from (t, x, y, p) records, packed by hand: x bits 0-13, y 14-27, p 28-31."""
    body = b"".join(
        np.array([t], "<u4").tobytes() + np.array([x | (y << 14) | (p << 28)], "<u4").tobytes()
        for t, x, y, p in records)
    return header.encode() + type_size + body


def test_ncars_dat_matches_reference_digests(real_data_dir):
    ev = read_events(real_data_dir / NCARS_DAT)
    assert len(ev) == 4407 and int(ev["p"].sum()) == 1671
    assert (int(ev["t"][0]), int(ev["t"][-1])) == (0, 99_937)
    assert sha3_columns(ev) == NCARS_SHA3


def test_ncars_npy_equals_dat(real_data_dir):
    from_npy = read_events(real_data_dir / NCARS_NPY)
    np.testing.assert_array_equal(from_npy, read_events(real_data_dir / NCARS_DAT))
    assert sha3_columns(from_npy) == NCARS_SHA3


def test_ncars_header_and_no_size(real_data_dir):
    header = read_dat_header(real_data_dir / NCARS_DAT)
    assert header.lines[0] == "% Data file containing N9Chronocam7Event2dE events."
    assert (header.event_type, header.event_size, header.height, header.width) == (0, 8, None, None)
    with pytest.raises(EventFormatError, match="does not state its sensor size"):
        sensor_size(real_data_dir / NCARS_DAT)
    assert sensor_size(real_data_dir / NCARS_DAT, default=(240, 304)) == (240, 304)


@pytest.mark.parametrize("name", [NCARS_DAT, NCARS_NPY])
def test_windows_equal_slices(real_data_dir, name):
    full = read_events(real_data_dir / name)
    got = read_events(real_data_dir / name, 20_000, 45_000)
    np.testing.assert_array_equal(got, full[(full["t"] >= 20_000) & (full["t"] < 45_000)])


def test_hand_packed_dat_with_size_header(tmp_path):
    path = tmp_path / "a_td.dat"
    records = [(5, 303, 239, 1), (9, 0, 0, 0), (9, 304, 1, 1)]          # the last is outside 304x240
    path.write_bytes(dat_bytes(records, header="% Height 240\n% Width 304\n"))
    assert sensor_size(path) == (240, 304)
    with pytest.warns(OutOfRangeEventsWarning, match=r"dropped 1 of 3 events"):
        ev = read_events(path)
    assert ev.tolist() == [(5, 303, 239, 1), (9, 0, 0, 0)]


@pytest.mark.parametrize("content, message", [
    (lambda: dat_bytes([(1, 0, 0, 0)])[:-3], r"truncated, 5 trailing bytes"),
    (lambda: dat_bytes([(1, 0, 0, 0)], type_size=b"\x00\x10"), r"event size 16 bytes, expected 8"),
    (lambda: dat_bytes([(1, 0, 0, 0)], type_size=b"\x05\x08"), r"event type 0x05 is not a 2D CD event"),
    (lambda: dat_bytes([(5, 0, 0, 0), (4, 0, 0, 0)]), r"t decreases at index 1"),
    (lambda: dat_bytes([(5, 0, 0, 3)]), r"events/p holds 3 at index 0"),
    (lambda: b"% header only\n", r"file ends after the header"),
])
def test_bad_dat_files(tmp_path, content, message):
    path = tmp_path / "bad.dat"
    path.write_bytes(content())
    with pytest.raises(EventFormatError, match=rf"bad\.dat: {message}"):
        read_events(path)


def test_npy_legacy_names_and_errors(tmp_path):
    arr = np.zeros(3, dtype=[("ts", "<u8"), ("x", "<u2"), ("y", "<u2"), ("polarity", "<i1")])
    arr["ts"] = [1, 2, 3]
    arr["polarity"] = [-1, 1, -1]
    np.save(tmp_path / "legacy.npy", arr)
    ev = read_events(tmp_path / "legacy.npy")
    assert ev["t"].tolist() == [1, 2, 3] and ev["p"].tolist() == [0, 1, 0]
    np.save(tmp_path / "plain.npy", np.arange(4))
    with pytest.raises(EventFormatError, match=r"plain\.npy: not a 1-D structured event array"):
        read_events(tmp_path / "plain.npy")
    bad = np.zeros(2, dtype=[("t", "<f8"), ("x", "<u2"), ("y", "<u2"), ("p", "u1")])
    np.save(tmp_path / "float_t.npy", bad)
    with pytest.raises(EventFormatError, match=r"float_t\.npy: field 't' has dtype float64"):
        read_events(tmp_path / "float_t.npy")


def test_unknown_and_missing_files(tmp_path):
    (tmp_path / "a.aedat4").write_bytes(b"x")
    with pytest.raises(EventFormatError, match=r"a\.aedat4: unknown event file type '\.aedat4'"):
        read_events(tmp_path / "a.aedat4")
    with pytest.raises(EventFormatError, match=r"missing\.h5: no such file"):
        read_events(tmp_path / "missing.h5")
    with pytest.raises(ValueError, match="give both height and width"):
        read_events(tmp_path / "a.aedat4", height=10)


def test_windowed_reads_report_absolute_index_of_time_decrease(tmp_path):
    t = list(range(0, 1000, 10))
    t[60] = 5                                        # decreases at index 60
    dat = tmp_path / "dec.dat"
    dat.write_bytes(dat_bytes([(ti, 0, 0, 0) for ti in t]))
    with pytest.raises(EventFormatError, match=r"dec\.dat: t decreases at index 60"):
        read_events(dat, 500, 700)
    arr = np.zeros(len(t), dtype=[("t", "<i8"), ("x", "<u2"), ("y", "<u2"), ("p", "u1")])
    arr["t"] = t
    np.save(tmp_path / "dec.npy", arr)
    with pytest.raises(EventFormatError, match=r"dec\.npy: t decreases at index 60"):
        read_events(tmp_path / "dec.npy", 500, 700)
    # a window before the corrupt part reads fine
    assert read_events(dat, 100, 200)["t"].tolist() == list(range(100, 200, 10))
