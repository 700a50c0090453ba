"""Prophesee RAW EVT 2.0 / 3.0: real file digests, hand-built words, encoder round trips, oracle."""

import hashlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evdet.events import EventFormatError, OutOfRangeEventsWarning, make_events, read_events, sensor_size, write_raw
from evdet.events.evt_stream import decode_evt2, decode_evt3
from evdet.events.raw import infer_sensor_size, read_raw_header
from evdet.events.raw_encode import encode_evt2, encode_evt3

SPARKLERS = "psee-evt2-sparklers/sparklers_gen3_evt2.raw"
# From tests/fixtures/real/psee-evt2-sparklers/README.md (t as <u8, x/y as <u2, polarity as bool).
SPARKLERS_SHA3 = {
    "t": "9855ba39c1baea316ae623b72466e420df60a7510248391856eb4eaf",
    "x": "93fc6cff19b483fd48ca53345c6c1cf05123681d7b7272a1717e9303",
    "y": "07cfaef58e5fa71ce9910ed5b88fb7e9fcf71e4a8654cc2c4666f1ae",
    "on": "d2b5e9c4047f4c431937b24cd46c8b504e055372b0ded1df77f0ffa1",
}


def sha3_columns(ev):
    digest = lambda a: hashlib.sha3_224(np.ascontiguousarray(a).tobytes()).hexdigest()  # noqa: E731
    return {"t": digest(ev["t"].astype("<u8")), "x": digest(ev["x"].astype("<u2")),
            "y": digest(ev["y"].astype("<u2")), "on": digest(ev["p"].astype(bool))}


def columns(decoded):
    t, x, y, p = decoded
    return list(zip(t.tolist(), x.tolist(), y.tolist(), p.tolist()))


def write_words(path, words, header):
    path.write_bytes(header.encode() + np.asarray(words).tobytes())
    return path


# ---- the real EVT 2.0 file ---------------------------------------------------------------------

def test_sparklers_matches_reference_digests(real_data_dir):
    path = real_data_dir / SPARKLERS
    ev = read_events(path)
    assert len(ev) == 521_252
    assert int(ev["p"].sum()) == 185_861
    assert (int(ev["t"][0]), int(ev["t"][-1])) == (913_716_224, 913_812_095)
    assert sha3_columns(ev) == SPARKLERS_SHA3
    assert sensor_size(path) == (480, 640)       # no geometry line: from plugin hal_plugin_gen3_fx3


def test_sparklers_window_equals_slice(real_data_dir):
    path = real_data_dir / SPARKLERS
    full = read_events(path)
    t0, t1 = 913_750_000, 913_760_000
    got = read_events(path, t0, t1)
    np.testing.assert_array_equal(got, full[(full["t"] >= t0) & (full["t"] < t1)])


def test_sparklers_reencoded_is_identical(real_data_dir, tmp_path):
    ev = read_events(real_data_dir / SPARKLERS)
    for fmt in ("evt2", "evt3"):
        path = tmp_path / f"sparklers_{fmt}.raw"
        write_raw(path, ev, 480, 640, evt_format=fmt)
        np.testing.assert_array_equal(read_events(path), ev)


# ---- hand-built word streams (independent of the encoder) -------------------------------------

def test_evt2_hand_built_words():
    words = np.array([
        (1 << 28) | (3 << 22) | (9 << 11) | 9,          # CD before any TIME_HIGH: dropped
        0x8000_0010,                                    # time high 16 -> 1024 us
        (1 << 28) | (5 << 22) | (100 << 11) | 200,      # ON  t=1029 x=100 y=200
        (0 << 28) | (63 << 22) | (639 << 11) | 479,     # OFF t=1087 x=639 y=479
        0xA000_0001,                                    # external trigger: skipped
        0x8FFF_FFFF,                                    # time high 2**28-1
        (0 << 28) | (1 << 22) | (0 << 11) | 0,          # t = 2**34 - 64 + 1
        0x8000_0000,                                    # wraps
        (1 << 28) | (2 << 22) | (1 << 11) | 1,          # t = 2**34 + 2
    ], dtype="<u4")
    assert columns(decode_evt2(words)) == [
        (1029, 100, 200, 1), (1087, 639, 479, 0), (2**34 - 63, 0, 0, 0), (2**34 + 2, 1, 1, 1)]


def test_evt3_hand_built_words_with_vectors_and_wrap():
    words = np.array([
        0x0001, 0x2007,            # y and x before any TIME_HIGH: dropped
        0x8001, 0x6005,            # t = 4096 + 5
        0x0003,                    # y = 3
        0x2000 | 1 << 11 | 10,     # single ON event at x = 10
        0x3000 | 0 << 11 | 20,     # vector base x = 20, OFF
        0x4000 | 0b1000_0000_0101, # VECT_12: x = 20, 22, 31; base -> 32
        0x5000 | 0b1000_0001,      # VECT_8:  x = 32, 39;     base -> 40
        0x6010, 0x0004, 0x2005,    # t = 4112, y = 4, x = 5 OFF
        0xA123,                    # external trigger: skipped
        0x8FFF, 0x6FFF, 0x2001,    # t = 2**24 - 1, x = 1
        0x8000, 0x6002, 0x2802,    # wrap: t = 2**24 + 2, x = 2 ON
    ], dtype="<u2")
    t = 4101
    assert columns(decode_evt3(words)) == [
        (t, 10, 3, 1), (t, 20, 3, 0), (t, 22, 3, 0), (t, 31, 3, 0), (t, 32, 3, 0), (t, 39, 3, 0),
        (4112, 5, 4, 0), (2**24 - 1, 1, 4, 0), (2**24 + 2, 2, 4, 1)]


def test_evt3_vectors_before_base_are_dropped_but_advance_nothing():
    words = np.array([0x8000, 0x6000, 0x0000, 0x4FFF, 0x3000 | 4, 0x5001], dtype="<u2")
    assert columns(decode_evt3(words)) == [(0, 4, 0, 0)]


# ---- encoder round trips -------------------------------------------------------------------------

def bursty_events(seed, n=4000, t_span_us=60_000_000):
    """Random events plus runs of same-(t, y, p) neighbours along x (vector words) and long gaps
    (several 24-bit wraps)."""
    rng = np.random.default_rng(seed)
    t = np.sort(rng.integers(0, t_span_us, n))
    x = rng.integers(0, 1280, n)
    y = rng.integers(0, 720, n)
    p = rng.integers(0, 2, n)
    for start in range(0, n - 40, 200):
        k = rng.integers(2, 40)
        t[start:start + k] = t[start]
        y[start:start + k] = y[start]
        p[start:start + k] = p[start]
        x[start:start + k] = np.sort(rng.choice(np.arange(600, 700), k, replace=False))
    return make_events(t, x, y, p)


@pytest.mark.parametrize("seed", [0, 1])
def test_evt3_round_trip_uses_vectors_and_wraps(seed):
    ev = bursty_events(seed)
    words = encode_evt3(ev)
    kinds = set((words >> 12).tolist())
    assert {0x0, 0x2, 0x3, 0x4, 0x5, 0x6, 0x8} <= kinds
    assert int(ev["t"][-1]) > 3 * 2**24
    np.testing.assert_array_equal(make_events(*decode_evt3(words)), ev)


def test_evt2_round_trip_with_wrap():
    ev = bursty_events(2, n=2000)
    ev["t"][1000:] += 2**34 + 12345            # beyond the 34-bit EVT 2.0 time range
    words = encode_evt2(ev)
    np.testing.assert_array_equal(make_events(*decode_evt2(words)), ev)


event_rows = st.lists(
    st.tuples(st.sampled_from([0, 0, 0, 1, 7, 4095, 4096, 70_000, 2**23, 2**24 + 5]),
              st.integers(0, 30), st.integers(0, 3), st.integers(0, 1)),
    min_size=0, max_size=80)


def _rows_to_events(rows):
    if not rows:
        return make_events(np.zeros(0, np.int64), [], [], [])
    dt, x, y, p = (np.array(c) for c in zip(*rows))
    return make_events(np.cumsum(dt), x, y, p)


@settings(max_examples=80, deadline=None)
@given(rows=event_rows)
def test_property_evt3_round_trip(rows):
    ev = _rows_to_events(rows)
    np.testing.assert_array_equal(make_events(*decode_evt3(encode_evt3(ev))), ev)


@settings(max_examples=60, deadline=None)
@given(rows=event_rows)
def test_property_evt2_round_trip(rows):
    ev = _rows_to_events(rows)
    np.testing.assert_array_equal(make_events(*decode_evt2(encode_evt2(ev))), ev)


def test_evt3_decoder_agrees_with_evt3_package(tmp_path):
    evt3 = pytest.importorskip("evt3")
    ev = bursty_events(3, n=6000)
    path = tmp_path / "oracle.raw"
    write_raw(path, ev, 720, 1280, evt_format="evt3")
    ours = read_events(path)
    ref = evt3.decode_file(str(path))
    assert (ref.sensor_width, ref.sensor_height) == (1280, 720)
    np.testing.assert_array_equal(ours["t"], ref.timestamp.astype(np.int64))
    np.testing.assert_array_equal(ours["x"], ref.x)
    np.testing.assert_array_equal(ours["y"], ref.y)
    np.testing.assert_array_equal(ours["p"], ref.polarity)
    np.testing.assert_array_equal(ours, ev)


# ---- headers and sensor size ---------------------------------------------------------------------

@pytest.mark.parametrize("plugin, size", [
    ("hal_plugin_gen41_evk3", (720, 1280)), ("hal_plugin_imx636_evk4", (720, 1280)),
    ("hal_plugin_gen4_evk2", (720, 1280)), ("hal_plugin_gen31_fx3", (480, 640)),
    ("hal_plugin_gen3_fx3", (480, 640)), ("hal_plugin_genx320", (320, 320)), ("mystery", (None, None)),
])
def test_sensor_size_from_plugin_name(plugin, size):
    assert infer_sensor_size(plugin) == size


def test_evt3_without_geometry(tmp_path):
    words = np.array([0x8000, 0x6001, 0x0000 | 700, 0x2000 | 1200], dtype="<u2")
    gen41 = write_words(tmp_path / "gen41.raw", words, "% evt 3.0\n% plugin_name hal_plugin_gen41_evk3\n")
    assert sensor_size(gen41) == (720, 1280)
    assert read_events(gen41).tolist() == [(1, 1200, 700, 0)]
    unknown = write_words(tmp_path / "unknown.raw", words, "% evt 3.0\n% plugin_name mystery\n")
    with pytest.raises(EventFormatError, match=r"unknown\.raw: no sensor size in the header"):
        read_events(unknown)
    with pytest.raises(EventFormatError, match=r"unknown\.raw: the file does not state its sensor size"):
        sensor_size(unknown)
    assert sensor_size(unknown, default=(720, 1280)) == (720, 1280)
    assert read_events(unknown, height=720, width=1280).tolist() == [(1, 1200, 700, 0)]


def test_header_fields(tmp_path):
    path = write_words(tmp_path / "h.raw", np.zeros(0, "<u2"),
                       "% date 2024\n% format EVT3;height=320;width=320\n% end\n")
    header = read_raw_header(path)
    assert (header.evt_format, header.height, header.width) == ("evt3", 320, 320)
    assert header.data_offset == path.stat().st_size
    assert read_events(path).size == 0


def test_out_of_range_raw_events_are_dropped(tmp_path):
    words = np.array([0x8000_0000, (1 << 28) | (700 << 11) | 10, (1 << 28) | (5 << 11) | 10], dtype="<u4")
    path = write_words(tmp_path / "oor.raw", words, "% evt 2.0\n% geometry 640x480\n")
    with pytest.warns(OutOfRangeEventsWarning, match=r"oor\.raw: dropped 1 of 2 events"):
        ev = read_events(path)
    assert ev["x"].tolist() == [5]


@pytest.mark.parametrize("header, words, message", [
    ("% evt 3.0\n% geometry 64x64\n", np.array([0x8000, 0x1000], "<u2"),
     r"EVT 3.0 word 1 has reserved type 0x1"),
    ("% evt 2.0\n% geometry 64x64\n", np.array([0x8000_0001, 0x3000_0000], "<u4"),
     r"EVT 2.0 word 1 has reserved type 0x3"),
    ("% evt 3.0\n% geometry 64x64\n", np.array([0x8005, 0x8004], "<u2"),
     r"EVT 3.0 time high decreases at word 1"),
    ("% evt 2.0\n% geometry 64x64\n", np.array([0x8000_0005, 0x8000_0004], "<u4"),
     r"EVT 2.0 time high decreases at word 1"),
    ("% evt 3.0\n% geometry 64x64\n", np.array([0x8000, 0x6005, 0x0000, 0x2001, 0x6004, 0x2001], "<u2"),
     r"events/t decreases at index 1"),
    ("% evt 2.1\n", np.zeros(2, "<u4"), r"unsupported event format '2.1'"),
    ("% geometry 64x64\n", np.zeros(2, "<u4"), r"the header names no event format"),
    ("", np.zeros(0, "<u4"), r"empty file \(0 bytes\)"),
    ("% evt 2.0\n% geometry 64x64\n", np.zeros(3, "<u2"), r"truncated, 2 trailing bytes"),
    ("% evt 2.0\n% geometry 64by64\n", np.zeros(2, "<u4"), r"header 'geometry' holds '64by64'"),
])
def test_bad_raw_files_name_file_and_problem(tmp_path, header, words, message):
    path = write_words(tmp_path / "bad.raw", words, header)
    with pytest.raises(EventFormatError, match=rf"bad\.raw: {message}"):
        read_events(path)


# ---- windowed reading with a resumable decoder ----------------------------------------------------

@pytest.mark.parametrize("fmt", ["evt2", "evt3"])
def test_raw_reader_windows_tile_and_restart(tmp_path, monkeypatch, fmt):
    from evdet.events import evt_stream
    from evdet.events.raw import RawEventReader

    monkeypatch.setattr(evt_stream, "_MAX_FIRST_CAPACITY", 64)     # exercise buffer growth
    monkeypatch.setattr(evt_stream, "_SKIP_CAPACITY", 64)          # and skipping in batches
    ev = bursty_events(4, n=3000, t_span_us=40_000_000)
    path = tmp_path / f"w_{fmt}.raw"
    write_raw(path, ev, 720, 1280, evt_format=fmt)
    ends = list(range(0, 40_000_001, 3_000_000)) + [None]
    with RawEventReader(path) as reader:
        parts = [reader.read(start, end) for start, end in zip([None] + ends[:-1], ends)]
        np.testing.assert_array_equal(np.concatenate(parts), ev)
        for t0, t1 in [(5_000_000, 6_000_000), (1_000_000, 20_000_000), (30_000_000, 30_000_000),
                       (25_000_000, None), (None, 2_000_000)]:     # jumps forward and backward
            lo = 0 if t0 is None else t0
            hi = np.iinfo(np.int64).max if t1 is None else t1
            np.testing.assert_array_equal(reader.read(t0, t1), ev[(ev["t"] >= lo) & (ev["t"] < hi)])


def test_write_raw_rejects_what_it_cannot_store(tmp_path):
    ev = make_events([0, 1], [0, 700], [0, 0], [0, 1])
    with pytest.raises(ValueError, match="outside the 640x480 sensor"):
        write_raw(tmp_path / "a.raw", ev, 480, 640)
    with pytest.raises(ValueError, match="11-bit"):
        write_raw(tmp_path / "a.raw", ev, 480, 4096)
    with pytest.raises(ValueError, match="negative timestamps"):
        write_raw(tmp_path / "a.raw", make_events([-5, 1], [0, 0], [0, 0], [0, 1]), 480, 640)
    with pytest.raises(ValueError, match="evt_format must be"):
        write_raw(tmp_path / "a.raw", ev[:1], 480, 640, evt_format="evt21")
    assert list(tmp_path.iterdir()) == []


# ---- the checks the EVT 3.0 kernel proves while decoding (skipping make_events' second pass) -----

def test_evt3_vectors_at_the_right_edge_keep_and_drop_exactly(tmp_path):
    header = "% evt 3.0\n% geometry 64x8\n"
    # base 52: a VECT_12 whose only set bits land on x = 52 and x = 63 (the last column): kept.
    inside = np.array([0x8000, 0x6001, 0x0002, 0x3000 | 52, 0x4000 | 1 << 11 | 1], "<u2")
    got = read_events(write_words(tmp_path / "in.raw", inside, header))
    assert got.tolist() == [(1, 52, 2, 0), (1, 63, 2, 0)]
    # base 56: bit 8 lands on x = 64, one past the sensor: dropped with a warning, bit 0 kept.
    outside = np.array([0x8000, 0x6001, 0x0002, 0x3800 | 56, 0x4000 | 1 << 8 | 1], "<u2")
    with pytest.warns(OutOfRangeEventsWarning, match=r"out\.raw: dropped 1 of 2 events"):
        got = read_events(write_words(tmp_path / "out.raw", outside, header))
    assert got.tolist() == [(1, 56, 2, 1)]


def test_evt3_rows_below_the_sensor_are_dropped(tmp_path):
    words = np.array([0x8000, 0x6003, 0x0000 | 9, 0x2000 | 5, 0x0000 | 7, 0x2800 | 6], "<u2")
    with pytest.warns(OutOfRangeEventsWarning, match=r"dropped 1 of 2 events"):
        got = read_events(write_words(tmp_path / "y.raw", words, "% evt 3.0\n% geometry 64x8\n"))
    assert got.tolist() == [(3, 6, 7, 1)]


def test_evt3_time_decreasing_inside_a_vector_stream_is_an_error(tmp_path):
    words = np.array([0x8000, 0x6009, 0x0001, 0x3000, 0x5003, 0x6002, 0x3000, 0x5001], "<u2")
    with pytest.raises(EventFormatError, match=r"d\.raw: events/t decreases at index 2"):
        read_events(write_words(tmp_path / "d.raw", words, "% evt 3.0\n% geometry 64x8\n"))
