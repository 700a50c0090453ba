"""Multi-view scenes: N synchronised event cameras on one intersection, one shared traffic.

View 0 is the single-view generator's camera (the layout fills its view); the other views stand at
poles around the crossing (``multiview_camera``). The traffic is simulated once in the world; every
view renders it with its own camera, background, pixel thresholds (mismatch), timestamp jitter,
background activity and hot pixels, and labels it in its own pixels. A road user keeps its track id
in every view (the id of the 3-D track). Each view hides the ground beyond its own far edge behind
a row of buildings (``layout.visible_band`` of its local camera), as view 0 does.

Road users start and end their paths outside view 0; another view may see a path end and then a
user appears or vanishes there (its labels still follow its events, as in every view).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from evdet.data.synthetic.config import SceneConfig
from evdet.data.synthetic.dvs import contrast_thresholds
from evdet.data.synthetic.labelling import TRACK_LOG_DTYPE
from evdet.data.synthetic.layout import render_background, visible_band
from evdet.data.synthetic.multiview_camera import PoseCamera, ViewSpec, default_view_specs, place_view
from evdet.data.synthetic.simulate import SyntheticSequence, _build_scene, _Renderer, _Scene, finish_sequence
from evdet.data.synthetic.traffic import Traffic, project_boxes


@dataclass
class MultiViewSequence:
    """A generated multi-view recording.

    Attributes:
        views: one :class:`SyntheticSequence` per view (same duration, same clock, shared track ids).
        cameras: one :class:`PoseCamera` per view (world frame = view 0's).
        crossing_m: (X, Z) of the crossing the views overlap on.
    """

    views: list[SyntheticSequence]
    cameras: list[PoseCamera]
    crossing_m: tuple[float, float]


class _ViewTraffic:
    """The shared traffic as one view sees it (its camera's boxes and depths)."""

    def __init__(self, traffic: Traffic, camera: PoseCamera, wall_row: int):
        self.traffic, self.camera, self.wall_row = traffic, camera, wall_row

    @property
    def agents(self):
        return self.traffic.agents

    def geometry_from(self, pos: np.ndarray, head: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Image boxes (N, 4) and camera depths (N,) of the users at ``pos`` / ``head`` (N, 2)."""
        if not self.agents:
            return np.zeros((0, 4)), np.zeros(0)
        size = np.array([a.size_m for a in self.agents])
        depth = self.camera.camera_coords(pos[:, 0], 0.0, pos[:, 1])[2]
        return project_boxes(self.camera, pos, head, size), depth

    def geometry(self) -> tuple[np.ndarray, np.ndarray]:
        return self.geometry_from(*self.traffic.poses())

    def visible(self, boxes: np.ndarray) -> np.ndarray:
        c = self.camera
        return ((boxes[:, 2] > 0) & (boxes[:, 0] < c.width_px)
                & (boxes[:, 3] > self.wall_row) & (boxes[:, 1] < c.height_px))


def _view_scene(base: _Scene, camera: PoseCamera, rng: np.random.Generator) -> _Scene:
    """Scene of an extra view: the shared layout and traffic, its own background, wall and pixels."""
    cfg = base.cfg
    wall_row = visible_band(camera.local, cfg)[2]
    layout = replace(base.layout, wall_row=wall_row)
    bg = render_background(layout, camera, cfg, rng)
    hw = (camera.height_px, camera.width_px)
    thr_on = contrast_thresholds(hw, cfg.threshold_on, cfg.threshold_sigma, cfg.threshold_min, rng)
    thr_off = contrast_thresholds(hw, cfg.threshold_off, cfg.threshold_sigma, cfg.threshold_min, rng)
    phases = rng.uniform(0, 2 * np.pi, 4)
    return _Scene(cfg, camera, layout, bg.astype(np.float64), thr_on, thr_off, phases,
                  _ViewTraffic(base.traffic, camera, wall_row))


def _run_views(traffic: Traffic, scenes: list[_Scene], renderers: list[_Renderer], duration_us: int,
               on_progress: Callable[[float], None] | None) -> list[np.ndarray]:
    """Advance the shared traffic tick by tick; every view renders the users it sees.

    Returns:
        One ``TRACK_LOG_DTYPE`` log per view.
    """
    tick_us = renderers[0].tick_us
    logs: list[list[np.ndarray]] = [[] for _ in scenes]
    for tick in range(-(-duration_us // tick_us)):
        t0 = tick * tick_us
        t1 = min(t0 + tick_us, duration_us)
        traffic.spawn((t1 - t0) * 1e-6)      # (view 0's boxes decide the time in view)
        pose0 = traffic.poses()
        traffic.step((t1 - t0) * 1e-6)
        pose1 = traffic.poses()
        for v, (scene, rend) in enumerate(zip(scenes, renderers)):
            vt = scene.traffic
            (b0_raw, depth), (b1_raw, _) = vt.geometry_from(*pose0), vt.geometry_from(*pose1)
            sh0, sh1 = scene.shake(t0), scene.shake(t1)
            b0, b1 = b0_raw + sh0[[0, 1, 0, 1]], b1_raw + sh1[[0, 1, 0, 1]]
            idx = np.flatnonzero(vt.visible(b0) | vt.visible(b1))
            idx = idx[np.argsort(-depth[idx], kind="stable")]
            if idx.size or scene.use_shake:
                logs[v].append(rend.render(tick, t0, t1, idx, b0[idx], b1[idx], sh0, sh1))
        traffic.remove_finished()
        if on_progress is not None:
            on_progress((t1 - t0) * 1e-6)
    return [np.concatenate(rows) if rows else np.zeros(0, TRACK_LOG_DTYPE) for rows in logs]


def _crossing(scene: _Scene) -> tuple[float, float]:
    """Ground point (X, Z) where the main road meets the near cross street."""
    return float(scene.layout.main_x_m), float(scene.layout.streets_z_m[0])


def simulate_multiview(cfg: SceneConfig, duration_s: float, resolution: tuple[int, int],
                       rng: np.random.Generator, views: int | tuple[ViewSpec, ...] = 2, *,
                       on_progress: Callable[[float], None] | None = None) -> MultiViewSequence:
    """Generate one scene seen by several cameras.

    Args:
        cfg: scene settings (see ``preset_config``); every view uses its DVS and noise settings.
        duration_s: length, seconds.
        resolution: (height, width) of every view, pixels.
        rng: the scene's random source (the result is a pure function of the arguments).
        views: number of views (default poles, ``default_view_specs``) or the extra views' specs.
        on_progress: called with the seconds of scene simulated since the last call.
    """
    specs = default_view_specs(views) if isinstance(views, int) else tuple(views)
    height, width = (int(v) for v in resolution)
    if height < 16 or width < 16:
        raise ValueError(f"resolution must be at least 16x16, got {width}x{height}")
    if not math.isfinite(duration_s) or duration_s <= 0:
        raise ValueError(f"duration_s must be a finite number > 0, got {duration_s}")
    base = _build_scene(cfg, height, width, rng)
    view_rngs = [rng] + rng.spawn(len(specs))   # view 0 draws its noise as a single-view sequence
    crossing = _crossing(base)
    cam0 = PoseCamera(base.camera)
    cameras = [cam0] + [place_view(s, crossing, math.hypot(*crossing), height, width) for s in specs]
    scenes = [replace(base, camera=cam0, traffic=_ViewTraffic(base.traffic, cam0, base.layout.wall_row))]
    scenes += [_view_scene(base, cam, r) for cam, r in zip(cameras[1:], view_rngs[1:])]
    duration_us = int(round(duration_s * 1e6))
    tick_us = int(round(cfg.physics_dt_ms * 1000))
    renderers = [_Renderer(s, tick_us) for s in scenes]
    logs = _run_views(base.traffic, scenes, renderers, duration_us, on_progress)
    out = [finish_sequence(cfg, scene, rend, log, duration_us, vrng)
           for scene, rend, log, vrng in zip(scenes, renderers, logs, view_rngs)]
    return MultiViewSequence(out, cameras, crossing)


__all__ = ["MultiViewSequence", "simulate_multiview"]
