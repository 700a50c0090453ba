"""Synthetic generator, building blocks: camera geometry, DVS pixel model, noise, splits, traffic."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evdet.data.synthetic import SceneConfig, events_from_log_frames, preset_config, split_counts
from evdet.data.synthetic.camera import Camera
from evdet.data.synthetic.layout import build_layout
from evdet.data.synthetic.noise import background_activity, hot_pixels
from evdet.data.synthetic.traffic import Traffic


# ---- camera ---------------------------------------------------------------------------------------
def test_optical_axis_hits_ground_at_height_over_tan_pitch():
    cam = Camera(720, 1280, height_m=6.0, pitch_deg=35.0, hfov_deg=100.0)
    x, z = cam.ground_from_pixel(cam.cx, cam.cy)
    assert x == pytest.approx(0.0, abs=1e-9)
    assert z == pytest.approx(6.0 / math.tan(math.radians(35.0)), rel=1e-9)
    assert cam.focal_px == pytest.approx(640.0 / math.tan(math.radians(50.0)))


def test_ground_projection_round_trip_and_perspective():
    cam = Camera(180, 320)
    rng = np.random.default_rng(0)
    x = rng.uniform(-10, 10, 50)
    z = rng.uniform(3, 80, 50)
    u, v = cam.project(x, 0.0, z)
    x2, z2 = cam.ground_from_pixel(u, v)
    np.testing.assert_allclose(x2, x, atol=1e-8)
    np.testing.assert_allclose(z2, z, rtol=1e-9)
    # a 1.7 m person looks smaller (fewer rows) farther away, and stands higher in the image
    heights = [cam.project(0, 0, d)[1] - cam.project(0, 1.7, d)[1] for d in (5, 10, 20, 40)]
    assert all(a > b for a, b in zip(heights, heights[1:]))
    rows = [cam.row_of_ground(d) for d in (5, 10, 20, 40)]
    assert all(a > b for a, b in zip(rows, rows[1:]))


def test_scene_scales_with_resolution():
    big, small = Camera(720, 1280), Camera(180, 320)
    ub, vb = big.project(2.0, 1.0, 15.0)
    us, vs = small.project(2.0, 1.0, 15.0)
    assert ub == pytest.approx(4 * us)
    assert vb == pytest.approx(4 * vs)


# ---- DVS pixel model ----------------------------------------------------------------------------
def test_dvs_hand_computed_ramp():
    frames = np.array([0.0, 0.5, 0.1]).reshape(3, 1, 1)
    ev = events_from_log_frames(frames, np.array([0, 1000, 2000]), 0.2, 0.2)
    # up ramp 0 -> 0.5: levels 0.2 and 0.4 at 400 and 800 us; down 0.5 -> 0.1: level 0.2 at 1750 us
    assert ev["t"].tolist() == [400, 800, 1750]
    assert ev["p"].tolist() == [1, 1, 0]


def test_dvs_refractory_delays_pending_crossing():
    frames = np.array([0.0, 0.5, 0.5]).reshape(3, 1, 1)
    ev = events_from_log_frames(frames, np.array([0, 1000, 2000]), 0.2, 0.2, refractory_us=500)
    # the 800 us crossing falls in the refractory period after 400 us; it fires at the next render
    assert ev["t"].tolist() == [400, 2000]
    assert ev["p"].tolist() == [1, 1]


def _dvs_by_loop(frames, t_us, thr_on, thr_off, refractory_us, max_events):
    """Plain-Python reference of the pixel model described in evdet.data.synthetic.dvs."""
    _, h, w = frames.shape
    out = []
    for y in range(h):
        for x in range(w):
            ref, last = frames[0, y, x], -1e18
            for k in range(1, len(t_us)):
                a, b = frames[k - 1, y, x], frames[k, y, x]
                for _ in range(max_events):
                    if b - ref >= thr_on[y, x]:
                        level, pol = ref + thr_on[y, x], 1
                    elif b - ref <= -thr_off[y, x]:
                        level, pol = ref - thr_off[y, x], 0
                    else:
                        break
                    frac = 1.0 if abs(b - a) <= 1e-12 else min(max((level - a) / (b - a), 0.0), 1.0)
                    t = t_us[k - 1] + frac * (t_us[k] - t_us[k - 1])
                    if t - last < refractory_us:
                        break
                    out.append((int(math.floor(t)), x, y, pol))
                    last, ref = t, level
    out.sort(key=lambda e: e[0])
    return out


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), refractory=st.sampled_from([0, 150, 600]),
       max_events=st.integers(1, 4))
def test_dvs_matches_plain_loop(seed, refractory, max_events):
    rng = np.random.default_rng(seed)
    frames = np.cumsum(rng.normal(0, 0.3, (5, 3, 4)), axis=0)
    t_us = np.array([0, 700, 1500, 2100, 3000])
    thr_on = rng.uniform(0.1, 0.3, (3, 4))
    thr_off = rng.uniform(0.1, 0.3, (3, 4))
    ev = events_from_log_frames(frames, t_us, thr_on, thr_off, refractory_us=refractory,
                                max_events=max_events)
    expected = _dvs_by_loop(frames, t_us, thr_on, thr_off, refractory, max_events)
    got = sorted(zip(ev["t"].tolist(), ev["x"].tolist(), ev["y"].tolist(), ev["p"].tolist()))
    assert got == sorted(expected)
    assert np.all(np.diff(ev["t"]) >= 0)


def test_dvs_rejects_bad_input():
    with pytest.raises(ValueError, match="strictly increasing"):
        events_from_log_frames(np.zeros((2, 1, 1)), np.array([5, 5]), 0.2, 0.2)
    with pytest.raises(ValueError, match="thresholds"):
        events_from_log_frames(np.zeros((2, 1, 1)), np.array([0, 5]), 0.0, 0.2)


# ---- noise ----------------------------------------------------------------------------------------
def test_background_activity_rate_and_range():
    rng = np.random.default_rng(1)
    t, x, y, p = background_activity(2_000_000, 30, 40, rate_hz=5.0, rng=rng)
    expected = 5.0 * 30 * 40 * 2.0
    assert abs(t.size - expected) < 5 * math.sqrt(expected)
    assert t.min() >= 0 and t.max() < 2_000_000
    assert x.max() < 40 and y.max() < 30 and set(np.unique(p)) == {0, 1}


def test_hot_pixels_are_few_fixed_pixels():
    rng = np.random.default_rng(2)
    t, x, y, p = hot_pixels(1_000_000, 100, 100, fraction=1e-3, rate_hz=100.0, rng=rng)
    pixels = np.unique(y.astype(int) * 100 + x)
    assert pixels.size <= 10
    assert t.size > 10 * 50          # each of the 10 pixels fires 50-200 times in 1 s


# ---- splits, config ---------------------------------------------------------------------------------
@pytest.mark.parametrize("n, expected", [(1, (1, 0, 0)), (3, (1, 1, 1)), (6, (4, 1, 1)),
                                         (8, (6, 1, 1)), (10, (7, 2, 1))])
def test_split_counts(n, expected):
    assert split_counts(n, (0.67, 0.17, 0.16)) == expected


def test_config_validation_names_the_field():
    with pytest.raises(ValueError, match="class_mix"):
        SceneConfig(class_mix=(1.0, 0.0))
    with pytest.raises(ValueError, match="pitch_deg"):
        SceneConfig(pitch_deg=90.0)
    with pytest.raises(ValueError, match="unknown SceneConfig field"):
        preset_config("day", not_a_field=1)
    with pytest.raises(ValueError, match="unknown preset"):
        preset_config("dusk")


# ---- traffic ----------------------------------------------------------------------------------------
def _run_traffic(cfg, seconds, dt_s, seed, resolution=(720, 1280)):
    cam = Camera(*resolution, cfg.camera_height_m, cfg.pitch_deg, cfg.hfov_deg)
    rng = np.random.default_rng(seed)
    layout = build_layout(cam, cfg, rng)
    traffic = Traffic(layout, cam, cfg, rng)
    counts = np.zeros(len(cfg.classes))
    samples = []
    for k in range(int(seconds / dt_s)):
        boxes = traffic.boxes()
        traffic.spawn(dt_s, boxes)
        traffic.step(dt_s)
        traffic.remove_finished()
        if k * dt_s > 20.0:                     # after the scene has filled
            boxes = traffic.boxes()
            vis = traffic.visible(boxes)
            for a, b, v in zip(traffic.agents, boxes, vis):
                if v:
                    counts[a.class_id] += 1
                    samples.append((a.class_id, b[3], b[3] - b[1]))
    return counts, np.array(samples), layout


def test_person_box_is_upright_across_the_view():
    from evdet.data.synthetic.traffic import project_boxes
    cam = Camera(720, 1280)
    size = np.array([[0.45, 0.55, 1.72]])
    for z in (8.0, 20.0, 40.0):
        for frac in (0.0, 0.5, 0.9):                   # centre to near the image side
            x = frac * float(cam.half_width_m(z))
            for heading in ((1.0, 0.0), (0.0, 1.0), (0.6, 0.8)):
                box = project_boxes(cam, np.array([[x, z]]), np.array([heading]), size)[0]
                w, h = box[2] - box[0], box[3] - box[1]
                assert 0.15 < w / h < 0.6, (z, frac, heading, w, h)
    # the top of a pole stands in the column of its foot (no lean towards the nadir)
    box = project_boxes(cam, np.array([[25.0, 22.0]]), np.array([[0.0, 1.0]]), np.array([[1e-3, 1e-3, 1.72]]))[0]
    assert box[2] - box[0] < 0.1 and box[3] - box[1] > 20


def test_class_mix_follows_config():
    cfg = SceneConfig()
    counts, _, _ = _run_traffic(cfg, 260.0, 0.1, seed=3)
    share = counts / counts.sum()
    mix = np.asarray(cfg.normalized_mix)
    assert abs(share[1] - mix[1]) < 0.12          # cars about half
    assert abs(share[0] - mix[0]) < 0.12          # pedestrians about 40 %
    assert share[6] < 0.06 and share[7] < 0.06    # trams and wheelchairs rare
    assert counts.sum() / (240.0 / 0.1) == pytest.approx(cfg.mean_objects, rel=0.35)


def test_class_mix_is_configurable():
    mix = (0.0, 0.2, 0.0, 0.0, 0.0, 0.8, 0.0, 0.0)           # cars and trucks only
    counts, _, _ = _run_traffic(SceneConfig(class_mix=mix), 120.0, 0.1, seed=4)
    share = counts / counts.sum()
    assert share[[0, 2, 3, 4, 6, 7]].sum() == 0
    assert share[5] > share[1]


def test_far_users_are_smaller():
    _, samples, layout = _run_traffic(SceneConfig(), 120.0, 0.1, seed=5)
    peds = samples[(samples[:, 0] == 0) & (samples[:, 1] > layout.wall_row + 20)]
    bottom, height = peds[:, 1], peds[:, 2]
    # farther (bottom edge higher up) -> shorter box
    assert np.corrcoef(bottom, height)[0, 1] > 0.5
    assert np.median(height[bottom < np.median(bottom)]) < 40       # many small road users


# ---- labelling ------------------------------------------------------------------------------------
def test_label_times_on_30hz_grid():
    from evdet.data.synthetic.labelling import label_times_us
    assert label_times_us(100_001, 30.0).tolist() == [33333, 66667, 100000]
    assert label_times_us(100_000, 30.0).tolist() == [33333, 66667]


def test_labels_interpolate_and_drop_silent_or_tiny_users():
    from evdet.data.synthetic.labelling import TRACK_LOG_DTYPE, boxes_from_track_log
    tick_us = 20_000
    rows = []
    for tick in range(3):                       # 0..60 ms
        # track 1 moves right 10 px per tick and fires 5 events per tick
        rows.append((tick, 1, 1, (10 * tick, 50, 10 * tick + 40, 70),
                     (10 * tick + 10, 50, 10 * tick + 50, 70), 5))
        # track 2 stands still: no events
        rows.append((tick, 2, 0, (100, 10, 110, 40), (100, 10, 110, 40), 0))
        # track 3 fires but is 3 px wide (below the 4 px minimum side)
        rows.append((tick, 3, 2, (200, 10, 203, 40), (200, 10, 203, 40), 9))
        # track 4 is cut by the buildings' row 30: only rows 30..45 remain
        rows.append((tick, 4, 5, (250, 20, 270, 45), (250, 20, 270, 45), 4))
    log = np.array(rows, dtype=TRACK_LOG_DTYPE)
    b = boxes_from_track_log(log, tick_us, 60_000, 100, 300, wall_row=30, rate_hz=30.0,
                             window_us=40_000, min_events=3, min_box_side_px=4.0)
    assert b["t"].tolist() == [33333, 33333]
    assert b["track_id"].tolist() == [1, 4]
    # t = 33333 lies 13333 us into tick 1: x0 = 10 + 10 * 13333 / 20000
    assert b["x"][0] == pytest.approx(10 + 10 * 13333 / 20000, abs=1e-3)
    assert b["w"][0] == pytest.approx(40.0) and b["h"][0] == pytest.approx(20.0)
    assert (b["y"][1], b["h"][1]) == (30.0, 15.0)


# ---- the scene fills the view ------------------------------------------------------------------------
def _visible_centres_and_sizes(resolution, seeds, seconds=90.0, dt_s=0.25):
    """Box centres (N, 2) and sqrt(area) (N,) of the moving users in view, traffic only (no rendering)."""
    h, w = resolution
    cfg = SceneConfig()
    cam = Camera(h, w, cfg.camera_height_m, cfg.pitch_deg, cfg.hfov_deg)
    centres, sizes = [], []
    for seed in seeds:
        rng = np.random.default_rng(seed)
        layout = build_layout(cam, cfg, rng)
        traffic = Traffic(layout, cam, cfg, rng)
        for k in range(int(seconds / dt_s)):
            s_before = np.array([a.s_m for a in traffic.agents])
            traffic.spawn(dt_s)
            traffic.step(dt_s)
            if k * dt_s < 30.0 or not traffic.agents:
                traffic.remove_finished()
                continue
            moving = np.array([a.s_m for a in traffic.agents])[: s_before.size] > s_before
            boxes = traffic.boxes()[: s_before.size][moving]
            x0, y0 = np.maximum(boxes[:, 0], 0), np.maximum(boxes[:, 1], layout.wall_row)
            x1, y1 = np.minimum(boxes[:, 2], w), np.minimum(boxes[:, 3], h)
            ok = (x1 - x0 >= 2) & (y1 - y0 >= 2)
            x0, y0, x1, y1 = x0[ok], y0[ok], x1[ok], y1[ok]
            centres.append(np.stack([(x0 + x1) / 2, (y0 + y1) / 2], 1))
            sizes.append(np.sqrt((x1 - x0) * (y1 - y0)))
            traffic.remove_finished()
    return np.concatenate(centres), np.concatenate(sizes)


def _assert_fills_view(centres, sizes, h, w):
    from scipy.stats import spearmanr
    top, left = centres[:, 1] < h / 2, centres[:, 0] < w / 2
    quarters = [np.mean(top & left), np.mean(top & ~left), np.mean(~top & left), np.mean(~top & ~left)]
    assert max(quarters) <= 0.5, quarters
    assert np.mean(~top) >= 0.3, quarters
    assert spearmanr(sizes, centres[:, 1])[0] > 0          # near (low in the image) is large


@pytest.mark.parametrize("resolution", [(180, 320), (360, 640), (720, 1280)])
def test_road_users_fill_the_view(resolution):
    centres, sizes = _visible_centres_and_sizes(resolution, seeds=(21, 22, 23, 24))
    assert centres.shape[0] > 500
    _assert_fills_view(centres, sizes, *resolution)
