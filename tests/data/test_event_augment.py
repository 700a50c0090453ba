"""Event augmentations against independent expectations (histograms rebuilt from events, Poisson means)."""

import numpy as np
import pytest
import torch

from evdet.data.config import AugmentConfig
from evdet.data.event_augment import (
    EventAugmentParams,
    EventLayout,
    apply_event_augment,
    draw_event_augment,
    event_layout,
    time_reverse,
)
from evdet.events import EVENT_DTYPE, stacked_histogram

LAYOUT = EventLayout(bins=5, window_us=50_000)


def _events(rng, n, height, width, t0=0, t1=50_000):
    ev = np.zeros(n, dtype=EVENT_DTYPE)
    ev["t"] = np.sort(rng.integers(t0, t1, n))
    ev["x"], ev["y"] = rng.integers(0, width, n), rng.integers(0, height, n)
    ev["p"] = rng.integers(0, 2, n)
    return ev


def test_time_reversal_equals_the_histogram_of_reversed_events():
    rng = np.random.default_rng(0)
    ev = _events(rng, 400, 12, 16)
    # keep the window's first and last event and drop events on bin boundaries (reversal exact off them)
    span = ev["t"][-1] - ev["t"][0]
    rel = (ev["t"] - ev["t"][0]) / span * 5
    keep = (np.abs(rel - np.round(rel)) > 1e-3)
    keep[0] = keep[-1] = True
    ev = ev[keep]
    rev = ev[::-1].copy()
    rev["t"] = ev["t"][0] + ev["t"][-1] - ev["t"][::-1]
    rev["p"] = 1 - ev["p"][::-1]
    h = torch.from_numpy(stacked_histogram(ev, 12, 16, nbins=5).astype(np.float32))[None]
    h_rev = torch.from_numpy(stacked_histogram(rev, 12, 16, nbins=5).astype(np.float32))[None]
    # the first / last events sit on the boundaries 0 and nbins: move them by hand
    out = time_reverse(h, 5)
    diff = (out - h_rev).abs().sum()
    assert float(diff) <= 2.0   # at most the two boundary events land in a neighbouring bin
    assert float(out.sum()) == float(h.sum())


def test_time_reversal_twice_is_the_identity():
    f = torch.randint(0, 10, (3, 10, 7, 9)).float()
    torch.testing.assert_close(time_reverse(time_reverse(f, 5), 5), f)
    # hand case: bins 2, channel order (p0b0, p0b1, p1b0, p1b1) -> (p1b1, p1b0, p0b1, p0b0)
    g = torch.arange(4.0).reshape(1, 4, 1, 1)
    assert time_reverse(g, 2).flatten().tolist() == [3.0, 2.0, 1.0, 0.0]


def test_noise_expected_count_is_rate_times_pixels_times_window():
    rate, h, w, steps = 20.0, 60, 80, 8
    p = EventAugmentParams(noise_rate_hz=rate)
    out = apply_event_augment(torch.zeros(steps, 10, h, w), p, LAYOUT, noise_seed=3, step_ids=np.arange(steps))
    expected = rate * h * w * 0.05 * steps           # 3840 events
    assert abs(float(out.sum()) - expected) < 4 * np.sqrt(expected)
    # each window's noise is its own draw
    assert not torch.equal(out[0], out[1])


def test_hot_pixels_fire_at_their_rate_on_the_same_pixels():
    p = EventAugmentParams(hot_pixels=3, hot_pixel_rate_hz=4000.0)
    out = apply_event_augment(torch.zeros(4, 10, 30, 40), p, EventLayout(5, 50_000, cutoff=None), noise_seed=1,
                              step_ids=np.arange(4))
    per_pixel = out.sum(dim=(0, 1))
    hit = per_pixel > 0
    assert 1 <= int(hit.sum()) <= 3
    assert abs(float(per_pixel.sum()) - 3 * 4000 * 0.05 * 4) < 4 * np.sqrt(3 * 4000 * 0.05 * 4)


def test_noise_is_clipped_at_the_cutoff():
    f = torch.full((1, 10, 4, 4), 10.0)
    out = apply_event_augment(f, EventAugmentParams(noise_rate_hz=1e4), LAYOUT, noise_seed=0, step_ids=np.array([0]))
    assert float(out.max()) == 10.0


def test_dropout_is_binomial_thinning():
    f = torch.full((2, 10, 50, 50), 6.0)
    p = EventAugmentParams(dropout_rate=0.25, dropout_seed=5)
    out = apply_event_augment(f, p, LAYOUT, noise_seed=None, step_ids=np.arange(2))
    assert torch.equal(out, out.round()) and bool((out <= f).all()) and float(out.min()) >= 0
    n = f.numel() * 6
    assert abs(float(out.sum()) - 0.75 * n) < 4 * np.sqrt(n * 0.25 * 0.75)
    zero = apply_event_augment(f, EventAugmentParams(dropout_rate=1.0, dropout_seed=5), LAYOUT, noise_seed=None,
                               step_ids=np.arange(2))
    assert float(zero.sum()) == 0.0
    assert float(f.min()) == 6.0   # input unchanged


def test_dropout_refuses_fractional_counts():
    with pytest.raises(ValueError, match="integer counts"):
        apply_event_augment(torch.full((1, 10, 2, 2), 0.5), EventAugmentParams(dropout_rate=0.5, dropout_seed=0),
                            LAYOUT, noise_seed=None, step_ids=np.array([0]))


def test_off_switches_draw_nothing_and_change_nothing():
    rng = np.random.default_rng(0)
    state = rng.bit_generator.state
    cfg = AugmentConfig()
    assert draw_event_augment(cfg, rng) == EventAugmentParams()
    assert rng.bit_generator.state == state
    assert event_layout("voxel_grid_dt=50_nbins=10", 10, cfg) is None   # off: any representation is fine
    f = torch.ones(1, 10, 2, 2)
    assert apply_event_augment(f, EventAugmentParams(), LAYOUT, noise_seed=1, step_ids=np.array([0])) is f


def test_layouts_and_refusals():
    on = AugmentConfig(time_reversal_prob=0.5)
    assert event_layout("stacked_histogram_dt=50_nbins=10", 20, on) == EventLayout(10, 50_000)
    assert event_layout("event_frame_dt=33", 2, on) == EventLayout(1, 33_000)
    with pytest.raises(ValueError, match="data.augment.time_reversal_prob: needs polarity-major"):
        event_layout("voxel_grid_dt=50_nbins=10", 10, on)
    with pytest.raises(ValueError, match="dropout_rate"):   # range checks run when the config is built
        AugmentConfig(dropout_prob=1.0, dropout_rate=2.0)


def test_draw_respects_probabilities():
    cfg = AugmentConfig(dropout_prob=1.0, dropout_rate=0.3, time_reversal_prob=1.0, noise_prob=1.0,
                        noise_rate_hz=5.0, hot_pixels=2)
    p = draw_event_augment(cfg, np.random.default_rng(1))
    assert p.reverse and p.dropout_seed is not None and p.dropout_rate == 0.3 and p.hot_pixels == 2
    share = np.mean([draw_event_augment(AugmentConfig(time_reversal_prob=0.3), np.random.default_rng(s)).reverse
                     for s in range(400)])
    assert 0.22 < share < 0.38
