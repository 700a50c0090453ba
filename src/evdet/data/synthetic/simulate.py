"""One synthetic sequence: layout, traffic, rendering + DVS events, noise, jitter and labels."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from evdet.data.synthetic.camera import Camera
from evdet.data.synthetic.config import SceneConfig
from evdet.data.synthetic.dvs import assemble_events, contrast_thresholds
from evdet.data.synthetic.labelling import TRACK_LOG_DTYPE, boxes_from_track_log
from evdet.data.synthetic.layout import Layout, build_layout, render_background
from evdet.data.synthetic.noise import background_activity, hot_pixels
from evdet.data.synthetic.render import render_log_frame, render_tick
from evdet.data.synthetic.traffic import N_APPEARANCE, Traffic

WARMUP_S = 90.0          # traffic runs this long before t = 0, so the scene starts populated
_WARMUP_DT_S = 0.5
MIN_MOVE_PX = 0.5        # a user is redrawn once it moved this far (slow users: fewer renders)


@dataclass
class SyntheticSequence:
    """A generated recording.

    Attributes:
        events: ``EVENT_DTYPE`` (N,), sorted by t, t in [0, duration_us).
        boxes: ``BBOX_DTYPE`` (M,), sorted by t, at the label rate.
        height, width: sensor size.
        layout: the scene geometry.
        stats: counts (signal / noise events, tracks, sub-steps).
    """

    events: np.ndarray
    boxes: np.ndarray
    height: int
    width: int
    layout: Layout
    stats: dict = field(default_factory=dict)


def _shake_offsets(cfg: SceneConfig, t_us: float, phases: np.ndarray) -> np.ndarray:
    """Camera offset (x, y) in pixels at time t: two incommensurate sinusoids per axis."""
    if cfg.shake_px <= 0:
        return np.zeros(2)
    t = t_us * 1e-6
    f = cfg.shake_hz
    x = 0.7 * math.sin(2 * math.pi * f * t + phases[0]) + 0.3 * math.sin(2 * math.pi * 2.3 * f * t + phases[1])
    y = 0.7 * math.sin(2 * math.pi * 1.3 * f * t + phases[2]) + 0.3 * math.sin(2 * math.pi * 3.1 * f * t + phases[3])
    return cfg.shake_px * np.array([x, y])


class _EventBuffer:
    """Growable event buffers handed to the numba kernel, flushed into chunks."""

    def __init__(self, capacity: int):
        self.chunks: list[tuple[np.ndarray, ...]] = []
        self._alloc(capacity)

    def _alloc(self, capacity: int) -> None:
        self.t = np.empty(capacity, np.int64)
        self.x = np.empty(capacity, np.uint16)
        self.y = np.empty(capacity, np.uint16)
        self.p = np.empty(capacity, np.uint8)
        self.n = 0

    def flush_or_grow(self) -> None:
        if self.n == 0:
            self._alloc(self.t.size * 4)
            return
        self.chunks.append((self.t[:self.n].copy(), self.x[:self.n].copy(), self.y[:self.n].copy(),
                            self.p[:self.n].copy()))
        self.n = 0

    def columns(self) -> tuple[np.ndarray, ...]:
        """All events emitted so far as (t_us, x, y, p) columns (kernel order, unsorted)."""
        if self.n:
            self.flush_or_grow()
        if not self.chunks:
            return (np.zeros(0, np.int64), np.zeros(0, np.uint16), np.zeros(0, np.uint16),
                    np.zeros(0, np.uint8))
        return tuple(np.concatenate([c[k] for c in self.chunks]) for k in range(4))


def _appearance(traffic: Traffic) -> tuple[np.ndarray, np.ndarray]:
    """Silhouette kinds (N,) int64 and looks (N, N_APPEARANCE) float64 of the current users."""
    if not traffic.agents:
        return np.zeros(0, np.int64), np.zeros((0, N_APPEARANCE))
    kinds = np.array([a.kind for a in traffic.agents], np.int64)
    return kinds, np.stack([a.appearance for a in traffic.agents]).astype(np.float64)


@dataclass
class _Scene:
    """The static parts of a sequence and its warmed-up traffic."""

    cfg: SceneConfig
    camera: Camera
    layout: Layout
    background: np.ndarray          # (H, W) float64 linear intensity
    thr_on: np.ndarray              # (H, W) contrast thresholds
    thr_off: np.ndarray
    shake_phases: np.ndarray        # (4,)
    traffic: Traffic

    @property
    def use_shake(self) -> bool:
        return self.cfg.shake_px > 0

    def shake(self, t_us: float) -> np.ndarray:
        return _shake_offsets(self.cfg, t_us, self.shake_phases)


def _build_scene(cfg: SceneConfig, height: int, width: int, rng: np.random.Generator) -> _Scene:
    """Camera, layout, background, pixel thresholds and traffic run for ``WARMUP_S`` (rng order fixed)."""
    camera = Camera(height, width, cfg.camera_height_m, cfg.pitch_deg, cfg.hfov_deg)
    layout = build_layout(camera, cfg, rng)
    bg = render_background(layout, camera, cfg, rng)
    thr_on = contrast_thresholds((height, width), cfg.threshold_on, cfg.threshold_sigma,
                                 cfg.threshold_min, rng)
    thr_off = contrast_thresholds((height, width), cfg.threshold_off, cfg.threshold_sigma,
                                  cfg.threshold_min, rng)
    shake_phases = rng.uniform(0, 2 * np.pi, 4)
    traffic = Traffic(layout, camera, cfg, rng)
    for _ in range(int(WARMUP_S / _WARMUP_DT_S)):
        traffic.spawn(_WARMUP_DT_S)
        traffic.step(_WARMUP_DT_S)
        traffic.remove_finished()
    traffic.t_s = 0.0
    return _Scene(cfg, camera, layout, bg.astype(np.float64), thr_on, thr_off, shake_phases, traffic)


class _Renderer:
    """Pixel state of the sensor and the event buffer, advanced one traffic tick at a time."""

    def __init__(self, scene: _Scene, tick_us: int):
        cfg, h, w = scene.cfg, scene.camera.height_px, scene.camera.width_px
        self.scene, self.tick_us = scene, tick_us
        boxes, depth = scene.traffic.geometry()
        order = np.argsort(-depth, kind="stable")
        kinds, looks = _appearance(scene.traffic)
        sh = scene.shake(0)
        self.l_cur = render_log_frame(scene.background, boxes[order] + sh[[0, 1, 0, 1]],
                                      kinds[order], looks[order], cfg.headlights, cfg.illumination,
                                      cfg.log_eps, scene.layout.wall_row, sh[0], sh[1],
                                      scene.use_shake)
        self.ref = self.l_cur.copy()                   # DVS reference level per pixel
        self.last_t = np.full((h, w), -1e18)           # last event time per pixel, us
        self.stamp = np.zeros((h, w), np.int64)        # last sub-step that touched the pixel
        self.buffer = _EventBuffer(max(1 << 18, h * w))
        self.stamp_base = 0
        self.n_substeps = 0
        self.max_sub = max(1, tick_us // max(cfg.min_substep_us, 1))
        self.drawn: dict[int, tuple[np.ndarray, float]] = {}   # track id -> (box, time) last drawn

    def substeps(self, b0: np.ndarray, b1: np.ndarray, sh0: np.ndarray, sh1: np.ndarray) -> int:
        """Sub-steps so that no visible edge moves more than ``max_px_per_substep`` per render
        (boxes clipped to the frame first: users under the lens project far out)."""
        h, w, wall = self.scene.camera.height_px, self.scene.camera.width_px, self.scene.layout.wall_row
        lo = np.array([-2.0, wall - 2.0, -2.0, wall - 2.0])
        hi = np.array([w + 2.0, h + 2.0, w + 2.0, h + 2.0])
        disp = float(np.max(np.abs(np.clip(b1, lo, hi) - np.clip(b0, lo, hi)))) if b0.size else 0.0
        disp = max(disp, float(np.max(np.abs(sh1 - sh0))))
        return int(min(max(math.ceil(disp / self.scene.cfg.max_px_per_substep), 1), self.max_sub))

    def render(self, tick: int, t0_us: int, t1_us: int, idx: np.ndarray, b0: np.ndarray,
               b1: np.ndarray, sh0: np.ndarray, sh1: np.ndarray) -> np.ndarray:
        """Render the users ``idx`` (far to near) moving from ``b0`` to ``b1`` over one tick.

        Returns:
            ``TRACK_LOG_DTYPE`` rows of the tick, one per rendered user.
        """
        scene, cfg, buf = self.scene, self.scene.cfg, self.buffer
        agents = scene.traffic.agents
        n_sub = self.substeps(b0, b1, sh0, sh1)
        obj_events = np.zeros(idx.size, np.int64)
        kinds, looks = _appearance(scene.traffic)
        kinds, looks = kinds[idx], looks[idx]
        prev_b = np.empty((idx.size, 4))
        prev_t = np.empty(idx.size)
        for j, i in enumerate(idx):
            first = b0[j] if b0[j, 0] > -1e3 else b1[j]     # -1e4: wholly behind the lens
            prev_b[j], prev_t[j] = self.drawn.get(agents[i].track_id, (first, float(t0_us)))
        start = 0
        while start < n_sub:
            buf.n, start = render_tick(
                scene.background, self.l_cur, self.ref, self.last_t, self.stamp, scene.thr_on,
                scene.thr_off, b0, b1, prev_b, prev_t, kinds, looks, cfg.headlights,
                cfg.illumination, cfg.log_eps, scene.layout.wall_row, sh0, sh1, scene.use_shake,
                MIN_MOVE_PX, float(t0_us), float(t1_us), n_sub, start, self.stamp_base,
                float(cfg.refractory_us), cfg.max_events_per_step, buf.t, buf.x, buf.y, buf.p,
                buf.n, obj_events)
            if start < n_sub:
                buf.flush_or_grow()
        self.drawn = {agents[i].track_id: (prev_b[j], prev_t[j]) for j, i in enumerate(idx)}
        self.stamp_base += n_sub
        self.n_substeps += n_sub
        rows = np.zeros(idx.size, TRACK_LOG_DTYPE)
        rows["tick"] = tick
        rows["track_id"] = [agents[i].track_id for i in idx]
        rows["class_id"] = [agents[i].class_id for i in idx]
        rows["box0"], rows["box1"], rows["events"] = b0, b1, obj_events
        return rows


def _run_traffic(scene: _Scene, renderer: _Renderer, duration_us: int,
                 on_progress: Callable[[float], None] | None) -> np.ndarray:
    """Advance the traffic tick by tick, rendering the users in view; the traffic log of all ticks."""
    traffic, tick_us = scene.traffic, renderer.tick_us
    dt_s = tick_us * 1e-6
    log_rows: list[np.ndarray] = []
    b_raw, depth = traffic.geometry()
    for tick in range(-(-duration_us // tick_us)):
        t0 = tick * tick_us
        t1 = min(t0 + tick_us, duration_us)
        n_before = len(traffic.agents)
        traffic.spawn(dt_s, b_raw)
        if len(traffic.agents) != n_before:      # spawned users added (they start outside the view)
            b_raw, depth = traffic.geometry()
        sh0, sh1 = scene.shake(t0), scene.shake(t1)
        b0 = b_raw + sh0[[0, 1, 0, 1]]
        traffic.step((t1 - t0) * 1e-6)
        b1_raw, depth1 = traffic.geometry()
        b1 = b1_raw + sh1[[0, 1, 0, 1]]
        idx = np.flatnonzero(traffic.visible(b0) | traffic.visible(b1))
        idx = idx[np.argsort(-depth[idx], kind="stable")]
        if idx.size or scene.use_shake:
            log_rows.append(renderer.render(tick, t0, t1, idx, b0[idx], b1[idx], sh0, sh1))
        alive = traffic.remove_finished()
        b_raw, depth = b1_raw[alive], depth1[alive]
        if on_progress is not None:
            on_progress((t1 - t0) * 1e-6)
    return np.concatenate(log_rows) if log_rows else np.zeros(0, TRACK_LOG_DTYPE)


def _add_noise(scene: _Scene, signal: tuple[np.ndarray, ...], duration_us: int,
               rng: np.random.Generator) -> tuple[np.ndarray, int]:
    """Timestamp jitter on the signal events, then background activity and hot pixels.

    Returns:
        (sorted ``EVENT_DTYPE`` events, number of noise events).
    """
    cfg, (h, w) = scene.cfg, (scene.camera.height_px, scene.camera.width_px)
    t_sig, x_sig, y_sig, p_sig = signal
    if cfg.jitter_us > 0 and t_sig.size:
        t_sig = t_sig + np.round(rng.normal(0.0, cfg.jitter_us, t_sig.size)).astype(np.int64)
        t_sig = np.clip(t_sig, 0, duration_us - 1)
    noise = [background_activity(duration_us, h, w, cfg.ba_rate_hz, rng),
             hot_pixels(duration_us, h, w, cfg.hot_pixel_fraction, cfg.hot_pixel_rate_hz, rng)]
    cols = [np.concatenate([c] + [n[k] for n in noise])
            for k, c in enumerate((t_sig, x_sig, y_sig, p_sig))]
    return assemble_events(*cols), int(sum(n[0].size for n in noise))


def simulate_sequence(cfg: SceneConfig, duration_s: float, resolution: tuple[int, int],
                      rng: np.random.Generator, *,
                      on_progress: Callable[[float], None] | None = None) -> SyntheticSequence:
    """Generate one sequence of events and labels.

    Args:
        cfg: scene settings (see :func:`preset_config`).
        duration_s: length of the recording, seconds.
        resolution: (height, width) in pixels.
        rng: the sequence's random source (the result is a pure function of cfg, duration,
            resolution and the rng state).
        on_progress: called with the seconds of scene simulated since the last call.
    """
    height, width = (int(v) for v in resolution)
    if height < 16 or width < 16:
        raise ValueError(f"resolution must be at least 16x16, got {width}x{height}")
    if not math.isfinite(duration_s) or duration_s <= 0:
        raise ValueError(f"duration_s must be a finite number > 0, got {duration_s}")
    scene = _build_scene(cfg, height, width, rng)
    duration_us = int(round(duration_s * 1e6))
    tick_us = int(round(cfg.physics_dt_ms * 1000))
    renderer = _Renderer(scene, tick_us)
    track_log = _run_traffic(scene, renderer, duration_us, on_progress)
    return finish_sequence(cfg, scene, renderer, track_log, duration_us, rng)


def finish_sequence(cfg: SceneConfig, scene: "_Scene", renderer: "_Renderer", track_log: np.ndarray,
                    duration_us: int, rng: np.random.Generator) -> SyntheticSequence:
    """A simulated camera's sequence: its rendered signal plus DVS noise, its labels from the track log,
    and the summary counts (shared by the single-view and the multi-view generators)."""
    height, width = scene.background.shape
    signal = renderer.buffer.columns()
    events, n_noise = _add_noise(scene, signal, duration_us, rng)
    boxes = boxes_from_track_log(track_log, renderer.tick_us, duration_us, height, width,
                                 wall_row=scene.layout.wall_row, rate_hz=cfg.label_rate_hz,
                                 window_us=cfg.label_event_window_ms * 1000.0,
                                 min_events=cfg.label_min_events,
                                 min_box_side_px=cfg.min_box_side_px)
    stats = {"events": int(events.size), "signal_events": int(signal[0].size), "noise_events": n_noise,
             "boxes": int(boxes.size), "tracks": int(np.unique(boxes["track_id"]).size),
             "substeps": renderer.n_substeps, "wall_row": int(scene.layout.wall_row)}
    return SyntheticSequence(events, boxes, height, width, scene.layout, stats)
