"""Grid-aligned time windows."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evdet.events import grid_window_ends, iter_windows, window_bounds, window_slices


def test_window_bounds_hand_case():
    np.testing.assert_array_equal(window_bounds([50_000, 100_000], 50_000),
                                  [[0, 50_000], [50_000, 100_000]])
    with pytest.raises(ValueError, match="window_us must be positive"):
        window_bounds([1], 0)


def test_grid_windows_cover_first_and_last_event():
    # t = 49_999 is in [0, 50_000); t = 50_000 starts the next window.
    np.testing.assert_array_equal(grid_window_ends(49_999, 50_000), [50_000, 100_000])
    assert list(iter_windows(120_000, 120_000, 50_000)) == [(100_000, 150_000)]
    assert list(iter_windows(0, 99_999, 50_000)) == [(0, 50_000), (50_000, 100_000)]
    with pytest.raises(ValueError, match="precedes"):
        grid_window_ends(10, 5)


@settings(max_examples=50, deadline=None)
@given(t=st.lists(st.integers(0, 300_000), min_size=1, max_size=200),
       window_us=st.sampled_from([1, 7, 1000, 50_000]))
def test_property_windows_partition_the_events(t, window_us):
    t = np.sort(np.array(t, dtype=np.int64))
    ends = grid_window_ends(int(t[0]), int(t[-1]), window_us)
    assert (ends % window_us == 0).all() and (np.diff(ends) == window_us).all()
    slices = window_slices(t, window_bounds(ends, window_us))
    counts = slices[:, 1] - slices[:, 0]
    assert counts.sum() == t.size                                  # every event in one window
    assert slices[0, 0] == 0 and slices[-1, 1] == t.size and (slices[1:, 0] == slices[:-1, 1]).all()
    end_of_event = np.repeat(ends, counts)                         # and in the right one
    assert ((t >= end_of_event - window_us) & (t < end_of_event)).all()
