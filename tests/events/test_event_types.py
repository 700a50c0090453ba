"""Event array construction and validation."""

import numpy as np
import pytest

from evdet.events import EVENT_DTYPE, EventFormatError, OutOfRangeEventsWarning, as_events, make_events


def test_event_dtype_fields():
    assert EVENT_DTYPE.names == ("t", "x", "y", "p")
    assert [EVENT_DTYPE[n].str for n in EVENT_DTYPE.names] == ["<i8", "<u2", "<u2", "|u1"]


def test_make_events_columns_and_polarity_mapping():
    ev = make_events([0, 5, 5], np.array([1, 2, 3], np.int16), [4, 5, 6], np.array([-1, 1, -1]))
    assert ev.dtype == EVENT_DTYPE
    assert ev["t"].tolist() == [0, 5, 5]
    assert ev["x"].tolist() == [1, 2, 3]
    assert ev["p"].tolist() == [0, 1, 0]
    ev = make_events([1, 2], [0, 0], [0, 0], np.array([True, False]))
    assert ev["p"].tolist() == [1, 0]


def test_decreasing_time_names_source_and_index():
    with pytest.raises(EventFormatError, match=r"rec\.h5: events/t decreases at index 2"):
        make_events([0, 3, 2, 4], [0] * 4, [0] * 4, [0] * 4, source="rec.h5")


def test_wrong_dtype_and_bad_polarity_are_errors():
    with pytest.raises(EventFormatError, match=r"events/t has dtype float64"):
        make_events(np.array([0.0, 1.0]), [0, 0], [0, 0], [0, 0])
    with pytest.raises(EventFormatError, match=r"events/p holds 3 at index 1"):
        make_events([0, 1], [0, 0], [0, 0], [0, 3])
    with pytest.raises(EventFormatError, match=r"events/y has 1 entries but events/t has 2"):
        make_events([0, 1], [0, 0], [0], [0, 0])


def test_out_of_range_events_are_dropped_and_counted():
    x = np.array([0, -1, 7, 8, 3], np.int32)     # width 8: -1 and 8 are outside
    y = np.array([0, 0, 5, 0, 6])                # height 6: 6 is outside
    with pytest.warns(OutOfRangeEventsWarning, match=r"dropped 3 of 5 events"):
        ev = make_events(np.arange(5), x, y, np.zeros(5, int), height=6, width=8, source="f.h5")
    assert ev["t"].tolist() == [0, 2]
    assert ev["x"].tolist() == [0, 7]


def test_as_events_accepts_legacy_names():
    legacy = np.zeros(3, dtype=[("ts", "<u4"), ("x", "<i2"), ("y", "<i2"), ("pol", "i1")])
    legacy["ts"] = [1, 2, 3]
    legacy["x"] = [4, 5, 6]
    legacy["pol"] = [-1, 1, 1]
    ev = as_events(legacy)
    assert ev["t"].tolist() == [1, 2, 3] and ev["p"].tolist() == [0, 1, 1]
    on = np.zeros(2, dtype=[("t", "<i8"), ("x", "<u2"), ("y", "<u2"), ("on", "?")])
    on["on"] = [True, False]
    assert as_events(on)["p"].tolist() == [1, 0]


def test_as_events_missing_field_names_it():
    arr = np.zeros(2, dtype=[("t", "<i8"), ("x", "<u2"), ("p", "u1")])
    with pytest.raises(EventFormatError, match=r"a\.npy: missing field 'y'"):
        as_events(arr, source="a.npy")


def test_as_events_returns_valid_array_without_copy():
    ev = make_events([0, 1], [0, 1], [0, 1], [0, 1])
    assert as_events(ev) is ev


def test_as_events_checks_polarity_and_range_of_event_dtype_arrays():
    ev = make_events([0, 1, 2], [0, 1, 9], [0, 1, 2], [0, 1, 1])
    bad = ev.copy()
    bad["p"][1] = 2
    with pytest.raises(EventFormatError, match=r"events/p holds 2 at index 1"):
        as_events(bad)
    with pytest.warns(OutOfRangeEventsWarning, match=r"dropped 1 of 3 events"):
        kept = as_events(ev, height=4, width=4)
    assert kept["x"].tolist() == [0, 1]
