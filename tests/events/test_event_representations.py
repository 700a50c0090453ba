"""Voxel grid, time surface, event frame, VTEI, downsampling modes and naming."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evdet.events import (DOWNSAMPLE_MODES, REPRESENTATIONS, build_representation, downsample_events,
                          downsampled_size, make_events, representation_name, representation_spec,
                          stacked_histogram)

H, W = 6, 8


# ---- plain-loop oracles, written from the definitions ----------------------------------------

def voxel_by_loop(ev, height, width, nbins):
    out = np.zeros((nbins, height, width), np.float64)
    t0, t1 = int(ev["t"][0]), int(ev["t"][-1])
    for t, x, y, p in ev.tolist():
        tn = (nbins - 1) * (t - t0) / max(t1 - t0, 1)
        b = math.floor(tn)
        value = 1.0 if p else -1.0
        out[b, y, x] += value * (1 - (tn - b))
        if b + 1 < nbins:
            out[b + 1, y, x] += value * (tn - b)
    return out


def time_surface_by_loop(ev, height, width, tau_us, t_ref_us):
    last = {}
    for t, x, y, p in ev.tolist():
        last[(p, y, x)] = t
    out = np.zeros((2, height, width))
    for (p, y, x), t in last.items():
        out[p, y, x] = math.exp(-(t_ref_us - t) / tau_us)
    return out


def counts_by_loop(ev, height, width, nbins):
    """Unclipped (2*nbins, H, W) counts with the stacked-histogram float32 bins."""
    out = np.zeros((2 * nbins, height, width), np.int64)
    t0, t1 = int(ev["t"][0]), int(ev["t"][-1])
    denom = np.float32(max(t1 - t0, 1))
    for t, x, y, p in ev.tolist():
        b = min(int(np.floor(np.float32(t - t0) / denom * np.float32(nbins))), nbins - 1)
        out[p * nbins + b, y, x] += 1
    return out


def vtei_by_loop(ev, height, width, nbins):
    counts = counts_by_loop(ev, height, width, nbins)
    return np.sign(counts[nbins:] - counts[:nbins]).astype(np.int8)


def block_sum(a):
    """Sum each 2x2 block of the last two axes (dropping an odd last row / column)."""
    h, w = a.shape[-2] // 2 * 2, a.shape[-1] // 2 * 2
    a = a[..., :h, :w]
    return a[..., 0::2, 0::2] + a[..., 1::2, 0::2] + a[..., 0::2, 1::2] + a[..., 1::2, 1::2]


# ---- builders against their oracles ------------------------------------------------------------

@pytest.mark.parametrize("seed", [0, 1])
def test_voxel_grid_matches_loop(random_events, seed):
    ev = random_events(500, H, W, seed=seed)
    got = build_representation("voxel_grid", ev, H, W, nbins=5)
    assert got.dtype == np.float32 and got.shape == (5, H, W)
    np.testing.assert_allclose(got, voxel_by_loop(ev, H, W, 5), atol=1e-5)


def test_voxel_grid_hand_case():
    # t0 = 0, t1 = 100, nbins = 3: t = 25 sits at tn = 0.5 -> half in bin 0, half in bin 1.
    ev = make_events([0, 25, 100], [0, 1, 2], [0, 0, 0], [1, 0, 1])
    got = build_representation("voxel_grid", ev, 1, 3, nbins=3)
    expected = np.array([[[1.0, -0.5, 0.0]], [[0.0, -0.5, 0.0]], [[0.0, 0.0, 1.0]]], np.float32)
    np.testing.assert_allclose(got, expected)


def test_time_surface_matches_loop(random_events):
    ev = random_events(400, H, W, seed=2)
    got = build_representation("time_surface", ev, H, W, tau_us=7_000.0, t_ref_us=60_000)
    assert got.dtype == np.float32 and got.shape == (2, H, W)
    np.testing.assert_allclose(got, time_surface_by_loop(ev, H, W, 7_000.0, 60_000), rtol=1e-6)
    with pytest.raises(ValueError, match="precedes the last event"):
        build_representation("time_surface", ev, H, W, t_ref_us=0)


def test_time_surface_hand_case():
    ev = make_events([0, 1000], [0, 0], [0, 0], [1, 1])
    got = build_representation("time_surface", ev, 1, 2, tau_us=1000.0)
    assert got[1, 0, 0] == pytest.approx(1.0) and got[0].sum() == 0 and got[1, 0, 1] == 0
    got = build_representation("time_surface", ev, 1, 2, tau_us=1000.0, t_ref_us=2000)
    assert got[1, 0, 0] == pytest.approx(math.exp(-1.0))


def test_event_frame_counts_per_polarity(random_events):
    ev = random_events(600, H, W, seed=3)
    got = build_representation("event_frame", ev, H, W)
    expected = counts_by_loop(ev, H, W, 1)
    assert got.dtype == np.uint8 and got.shape == (2, H, W)
    np.testing.assert_array_equal(got, np.minimum(expected, 255))
    assert int(got.sum()) == len(ev)


def test_vtei_matches_loop(random_events):
    ev = random_events(700, H, W, seed=4)
    got = build_representation("vtei", ev, H, W, nbins=4)
    assert got.dtype == np.int8 and set(np.unique(got)) <= {-1, 0, 1}
    np.testing.assert_array_equal(got, vtei_by_loop(ev, H, W, 4))


# ---- downsampling ------------------------------------------------------------------------------

@pytest.mark.parametrize("name", REPRESENTATIONS)
def test_ds2_nearest_is_odd_pixels_of_full_resolution(random_events, name):
    ev = random_events(800, H, W, seed=5)
    full = build_representation(name, ev, H, W)
    got = build_representation(name, ev, H, W, downsample="ds2_nearest")
    np.testing.assert_array_equal(got, full[..., 1::2, 1::2])
    assert got.shape[-2:] == downsampled_size(H, W, "ds2_nearest") == (H // 2, W // 2)


@pytest.mark.parametrize("cutoff", [3, 10, 255])
def test_ds2_sum_is_clipped_block_sum(random_events, cutoff):
    ev = random_events(900, H, W, seed=6)
    expected = np.minimum(block_sum(counts_by_loop(ev, H, W, 10)), cutoff)
    got = build_representation("stacked_histogram", ev, H, W, downsample="ds2_sum", count_cutoff=cutoff)
    np.testing.assert_array_equal(got, expected)
    frame = build_representation("event_frame", ev, H, W, downsample="ds2_sum", count_cutoff=cutoff)
    np.testing.assert_array_equal(frame, np.minimum(block_sum(counts_by_loop(ev, H, W, 1)), cutoff))


def test_ds2_sum_keeps_events_that_nearest_loses():
    # One tiny object: 3 events at even pixels (0, 0), which ds2_nearest never samples.
    ev = make_events([0, 10, 20], [0, 0, 0], [0, 0, 0], [1, 1, 1])
    assert build_representation("event_frame", ev, 4, 4, downsample="ds2_nearest").sum() == 0
    assert build_representation("event_frame", ev, 4, 4, downsample="ds2_sum")[1, 0, 0] == 3


def test_ds2_sum_voxel_grid_is_block_sum(random_events):
    ev = random_events(300, H, W, seed=7)
    got = build_representation("voxel_grid", ev, H, W, downsample="ds2_sum", nbins=4)
    np.testing.assert_allclose(got, block_sum(voxel_by_loop(ev, H, W, 4)), atol=1e-5)


@settings(max_examples=40, deadline=None)
@given(
    data=st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 6), st.integers(0, 4),
                            st.integers(0, 1)), min_size=1, max_size=80),
    cutoff=st.integers(1, 20),
)
def test_property_downsample_modes_odd_sizes(data, cutoff):
    data.sort()
    ev = make_events(*(np.array(c) for c in zip(*data)))
    h, w = 5, 7                              # odd: the last row / column is dropped
    counts = counts_by_loop(ev, h, w, 2)
    got = build_representation("stacked_histogram", ev, h, w, nbins=2, count_cutoff=cutoff,
                               downsample="ds2_sum")
    np.testing.assert_array_equal(got, np.minimum(block_sum(counts), cutoff))
    near = build_representation("stacked_histogram", ev, h, w, nbins=2, count_cutoff=cutoff,
                                downsample="ds2_nearest")
    np.testing.assert_array_equal(near, np.minimum(counts[:, 1::2, 1::2], cutoff)[:, : h // 2, : w // 2])


def test_downsample_events_does_not_mutate_input():
    ev = make_events([0, 1, 2], [1, 4, 6], [3, 2, 4], [0, 1, 0])
    before = ev.copy()
    out = downsample_events(ev)
    np.testing.assert_array_equal(ev, before)
    assert out["x"].tolist() == [0, 2, 3] and out["y"].tolist() == [1, 1, 2]
    assert out["t"].tolist() == [0, 1, 2] and out["p"].tolist() == [0, 1, 0]


# ---- interface ---------------------------------------------------------------------------------

def test_spec_names_and_errors(random_events):
    ev = random_events(50, H, W)
    for name in REPRESENTATIONS:
        channels, dtype = representation_spec(name, nbins=3)
        params = {"nbins": 3} if name in ("stacked_histogram", "voxel_grid", "vtei") else {}
        for mode in DOWNSAMPLE_MODES:
            out = build_representation(name, ev, H, W, downsample=mode, **params)
            assert out.shape == (channels, *downsampled_size(H, W, mode)) and out.dtype == dtype
    np.testing.assert_array_equal(build_representation("stacked_histogram", ev, H, W),
                                  stacked_histogram(ev, H, W))
    rvt_name = representation_name("stacked_histogram", window_ms=50, nbins=10)
    assert rvt_name == "stacked_histogram_dt=50_nbins=10"
    assert representation_name("event_frame", window_ms=20) == "event_frame_dt=20"
    assert representation_name("time_surface", tau_us=20_000) == "time_surface_dt=50_tau=20000us"
    with pytest.raises(ValueError, match="unknown representation 'histogram'"):
        build_representation("histogram", ev, H, W)
    with pytest.raises(ValueError, match="unknown downsample mode 'ds4'"):
        build_representation("vtei", ev, H, W, downsample="ds4")
    with pytest.raises(TypeError):
        build_representation("event_frame", ev, H, W, nbins=3)   # event frames have no bins


@pytest.mark.parametrize("name, window_ms, nbins", [("stacked_histogram", 50, 10), ("voxel_grid", 20, 5),
                                                      ("vtei", 50, 3), ("event_frame", 33, None)])
def test_representation_name_round_trip(name, window_ms, nbins):
    from evdet.events import parse_representation_name, representation_name

    folder = representation_name(name, window_ms=window_ms, nbins=nbins or 10)
    kind, params = parse_representation_name(folder)
    assert kind == name and params["window_ms"] == window_ms
    assert params.get("nbins") == nbins


def test_parse_representation_name_rejects_unknown():
    from evdet.events import parse_representation_name

    with pytest.raises(ValueError, match="expected one of"):
        parse_representation_name("optical_flow_dt=50")
    with pytest.raises(ValueError, match="unknown field"):
        parse_representation_name("stacked_histogram_dt=50_bins=10")
