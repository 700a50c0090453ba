"""Stacked histogram: plain-loop oracle, the reference torch formula, hand cases, properties."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evdet.events import EVENT_DTYPE, make_events, stacked_histogram, temporal_bins


def histogram_by_loop(ev, height, width, nbins, count_cutoff):
    """Plain Python oracle, written from the definition in DESIGN.md sec. 3."""
    out = np.zeros((2 * nbins, height, width), dtype=np.int64)
    if len(ev) == 0:
        return out.astype(np.uint8)
    t_first, t_last = int(ev["t"][0]), int(ev["t"][-1])
    denom = np.float32(max(t_last - t_first, 1))
    for t, x, y, p in ev.tolist():
        b = int(np.floor(np.float32(t - t_first) / denom * np.float32(nbins)))
        b = min(b, nbins - 1)
        out[int(p) * nbins + b, y, x] += 1
    return np.minimum(out, count_cutoff).astype(np.uint8)


def histogram_like_rvt(ev, height, width, nbins, count_cutoff):
    """The reference (RVT) implementation: torch put_ with accumulate, float32 time normalisation."""
    torch = pytest.importorskip("torch")
    time = torch.from_numpy(ev["t"].astype(np.int64))
    x = torch.from_numpy(ev["x"].astype(np.int64))
    y = torch.from_numpy(ev["y"].astype(np.int64))
    pol = torch.from_numpy(ev["p"].astype(np.int64))
    rep = torch.zeros((2, nbins, height, width), dtype=torch.uint8).flatten()
    t0, t1 = time[0], time[-1]
    t_norm = (time - t0) / max(int(t1 - t0), 1)
    t_idx = torch.clamp((t_norm * nbins).floor(), max=nbins - 1)
    index = x + width * y + height * width * t_idx.long() + nbins * height * width * pol
    rep = rep.to(torch.int64).put_(index, torch.ones_like(x), accumulate=True)
    rep = torch.clamp(rep, min=0, max=count_cutoff).to(torch.uint8)
    return rep.view(2 * nbins, height, width).numpy()


def test_hand_computed_case():
    # t_first = 100, t_last = 200, nbins = 4: bins of t = 100, 124, 125, 150, 199, 200 are
    # floor(0*4)=0, floor(.24*4)=0, floor(.25*4)=1, 2, floor(.99*4)=3, min(4, 3)=3.
    ev = make_events([100, 124, 125, 150, 199, 200], [0, 1, 2, 0, 1, 1], [0, 0, 0, 1, 1, 1],
                     [0, 0, 1, 1, 0, 0])
    h = stacked_histogram(ev, height=2, width=3, nbins=4, count_cutoff=10)
    assert h.shape == (8, 2, 3) and h.dtype == np.uint8
    expected = np.zeros((8, 2, 3), np.uint8)
    expected[0, 0, 0] = 1          # p0 bin0
    expected[0, 0, 1] = 1          # p0 bin0
    expected[4 + 1, 0, 2] = 1      # p1 bin1
    expected[4 + 2, 1, 0] = 1      # p1 bin2
    expected[3, 1, 1] = 2          # p0 bin3 twice (t=199 and t=200 clamped)
    np.testing.assert_array_equal(h, expected)


def test_count_cutoff_clips():
    ev = make_events(np.arange(30), [1] * 30, [0] * 30, [1] * 30)
    h = stacked_histogram(ev, 1, 2, nbins=1, count_cutoff=10)
    assert h[1, 0, 1] == 10 and h.sum() == 10
    assert stacked_histogram(ev, 1, 2, nbins=1, count_cutoff=None)[1, 0, 1] == 30
    assert stacked_histogram(ev, 1, 2, nbins=1, count_cutoff=0).sum() == 0


def test_single_timestamp_window_goes_to_bin_zero():
    ev = make_events([7, 7, 7], [0, 1, 2], [0, 0, 0], [0, 1, 1])
    h = stacked_histogram(ev, 1, 3, nbins=5)
    assert h[0].sum() == 1 and h[5].sum() == 2 and h.sum() == 3


def test_empty_window():
    h = stacked_histogram(np.zeros(0, EVENT_DTYPE), 3, 4, nbins=2)
    assert h.shape == (4, 3, 4) and not h.any()


def test_float32_rounding_matches_reference_formula():
    # dt / denom is not exactly representable: float32 and float64 disagree for some events;
    # the histogram must follow float32 as the reference does. Event i sits at pixel x = i, so
    # the channel holding pixel i is that event's bin.
    torch = pytest.importorskip("torch")
    # With t_last - t_first = 30_000_001, dt = 3_000_000 * k is bin k - 1 in float64 but bin k in
    # float32 (dt / denom rounds up); the other timestamps are spread over the window.
    t = np.sort(np.concatenate([np.arange(0, 30_000_001, 3_000_000), np.arange(7, 30_000_001, 999_983),
                                [30_000_001]])).astype(np.int64)
    n, nbins = t.size, 10
    ev = make_events(t, np.arange(n), np.zeros(n, int), np.zeros(n, int))
    loop_bins = np.array([min(int(np.floor(np.float32(ti - t[0]) / np.float32(t[-1] - t[0])
                                           * np.float32(nbins))), nbins - 1) for ti in t])
    tt = torch.from_numpy(t)
    torch_bins = torch.clamp(((tt - tt[0]) / int(t[-1] - t[0]) * nbins).floor(), max=nbins - 1).long().numpy()
    f64_bins = np.minimum(np.floor((t - t[0]) / (t[-1] - t[0]) * nbins), nbins - 1).astype(np.int64)
    hist = stacked_histogram(ev, 1, n, nbins=nbins)
    hist_bins = hist[:nbins, 0, :].argmax(axis=0)
    assert (hist[:nbins, 0, :].sum(axis=0) == 1).all()
    np.testing.assert_array_equal(hist_bins, loop_bins)
    np.testing.assert_array_equal(hist_bins, torch_bins)
    np.testing.assert_array_equal(temporal_bins(t, nbins), loop_bins)
    assert (loop_bins != f64_bins).any()          # the case really exercises float32 rounding


@pytest.mark.parametrize("nbins, cutoff, seed", [(10, 10, 0), (3, 2, 1), (1, 255, 2), (7, 4, 3)])
def test_matches_plain_loop_and_reference(random_events, nbins, cutoff, seed):
    ev = random_events(3000, 6, 8, seed=seed, t_max_us=50_000)
    expected = histogram_by_loop(ev, 6, 8, nbins, cutoff)
    got = stacked_histogram(ev, 6, 8, nbins=nbins, count_cutoff=cutoff)
    np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(got, histogram_like_rvt(ev, 6, 8, nbins, cutoff))


@settings(max_examples=60, deadline=None)
@given(
    data=st.lists(st.tuples(st.integers(0, 10**9), st.integers(0, 4), st.integers(0, 2),
                            st.integers(0, 1)), min_size=1, max_size=60),
    nbins=st.integers(1, 6),
    cutoff=st.integers(1, 255),
)
def test_property_equals_oracle_and_conserves_counts(data, nbins, cutoff):
    data.sort()
    t, x, y, p = (np.array(c) for c in zip(*data))
    ev = make_events(t, x, y, p)
    got = stacked_histogram(ev, 3, 5, nbins=nbins, count_cutoff=cutoff)
    np.testing.assert_array_equal(got, histogram_by_loop(ev, 3, 5, nbins, cutoff))
    assert got.max() <= cutoff
    if cutoff == 255:
        assert int(got.sum()) == len(ev)
    # each polarity's events land only in that polarity's channels
    assert int(got[:nbins].astype(int).sum()) <= int((p == 0).sum())
    # shifting all timestamps does not change the histogram
    shifted = ev.copy()
    shifted["t"] += 12345
    np.testing.assert_array_equal(stacked_histogram(shifted, 3, 5, nbins=nbins, count_cutoff=cutoff), got)


def test_bad_input_is_rejected():
    ev = make_events([0, 1], [0, 5], [0, 0], [0, 0])
    with pytest.raises(ValueError, match=r"event 1 at \(x=5, y=0\) lies outside the 4x2 frame"):
        stacked_histogram(ev, 2, 4)
    unsorted = np.zeros(3, EVENT_DTYPE)
    unsorted["t"] = [0, 5, 2]
    with pytest.raises(ValueError, match=r"events/t decreases at index 2"):
        stacked_histogram(unsorted, 2, 4)
    with pytest.raises(ValueError, match=r"count_cutoff must lie in 0..255"):
        stacked_histogram(ev, 2, 8, count_cutoff=300)


@pytest.mark.parametrize("height, width, seed", [(6, 8, 0), (7, 9, 1), (2, 5, 2)])
def test_nearest_ds2_equals_rvt_nearest_exact_interpolation(random_events, height, width, seed):
    """The fused half-size histogram equals RVT's: full histogram, then torch nearest-exact 0.5x."""
    torch = pytest.importorskip("torch")
    ev = random_events(2000, height, width, seed=seed, t_max_us=50_000)
    full = torch.from_numpy(histogram_like_rvt(ev, height, width, 10, 10))[None]
    expected = torch.nn.functional.interpolate(full, size=(height // 2, width // 2), mode="nearest-exact")
    got = stacked_histogram(ev, height, width, nearest_ds2=True)
    assert got.shape == (20, height // 2, width // 2)
    np.testing.assert_array_equal(got, expected[0].numpy())
    # Time bins come from the whole window: events at even pixels still set t_first / t_last.
    np.testing.assert_array_equal(got, stacked_histogram(ev, height, width)[:, 1::2, 1::2][:, :height // 2, :width // 2])


def test_overflow_rvt_wraps_modulo_256_before_the_cutoff_saturate_clips():
    """260 events in one cell and bin: RVT's uint8 accumulation stores 260 mod 256 = 4; saturate stores 10."""
    n = 260
    ev = make_events(np.arange(n), np.zeros(n, int), np.zeros(n, int), np.ones(n, int))
    rvt = stacked_histogram(ev, 2, 2, nbins=1, count_cutoff=10)
    sat = stacked_histogram(ev, 2, 2, nbins=1, count_cutoff=10, overflow="saturate")
    assert (int(rvt[1, 0, 0]), int(sat[1, 0, 0])) == (4, 10)
    few = ev[:200]                            # below 256 the two agree
    np.testing.assert_array_equal(stacked_histogram(few, 2, 2, nbins=1),
                                  stacked_histogram(few, 2, 2, nbins=1, overflow="saturate"))
    with pytest.raises(ValueError, match="overflow must be one of"):
        stacked_histogram(ev, 2, 2, overflow="wrap")
