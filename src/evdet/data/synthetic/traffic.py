"""Road users: spawning to a target class mix, motion along layout paths with traffic lights and
queueing, and their image boxes (projected 3-D boxes, so far users are smaller).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from evdet.data.synthetic.camera import Camera
from evdet.data.synthetic.config import SceneConfig
from evdet.data.synthetic.layout import PHASE_CROSS, PHASE_MAIN, Layout

KIND_IDS = {"person": 0, "vehicle": 1, "twowheeler": 2}
N_APPEARANCE = 6   # base reflectance, second tone, texture amplitude, texture u/v frequency, phase
_GAP_M = {"person": 0.6, "vehicle": 2.0, "twowheeler": 1.5}
_MAX_PENDING = 4
_BRAKE_S = 0.8     # time constant of the approach to a stop point


@dataclass
class Agent:
    """One road user (its state is advanced in place by :class:`Traffic`)."""

    track_id: int
    class_id: int
    path: int
    s_m: float
    speed_mps: float
    size_m: tuple[float, float, float]
    appearance: np.ndarray
    kind: int
    visible_s: float = 0.0      # time spent in view so far


class Traffic:
    """All road users of a scene, advanced in steps of ``dt_s``.

    Args:
        layout: the scene geometry.
        camera: projects users to image boxes.
        cfg: class specs, class mix, density and light cycle.
        rng: random source (spawns, sizes, speeds, looks).
    """

    def __init__(self, layout: Layout, camera: Camera, cfg: SceneConfig, rng: np.random.Generator):
        self.layout, self.camera, self.cfg, self.rng = layout, camera, cfg, rng
        self.agents: list[Agent] = []
        self.next_track_id = 1
        self.t_s = 0.0
        self.light_offset_s = rng.uniform(0, cfg.light_cycle_s)
        mix = np.asarray(cfg.normalized_mix)
        self.target_count = mix * cfg.mean_objects
        self.domain_paths = {d: layout.paths_for(d) for d in ("road", "pavement", "tram")}
        self.domain_probs = {d: _normalised([layout.paths[i].weight for i in ids])
                             for d, ids in self.domain_paths.items()}
        # expected time in view per class (seconds), refined from the users that left
        view_m = 0.5 * ((layout.z_far_m - layout.z_near_m)
                        + 2.0 * float(camera.half_width_m(layout.streets_z_m[0])))
        self.dwell_s = np.array([max(view_m / c.speed_mps, 1.0) for c in cfg.classes])
        self.pending = np.zeros(len(cfg.classes), np.int64)   # arrivals waiting for a free start

    # -- lights ---------------------------------------------------------------------------
    def phase(self, t_s: float) -> int:
        """Which approach has green at time ``t_s``: PHASE_MAIN or PHASE_CROSS."""
        k = int(((t_s + self.light_offset_s) // (self.cfg.light_cycle_s / 2)) % 2)
        return PHASE_MAIN if k == 0 else PHASE_CROSS

    # -- spawning -------------------------------------------------------------------------
    def spawn(self, dt_s: float, boxes: np.ndarray | None = None) -> None:
        """Start new users as Poisson arrivals: class c arrives at target_c / dwell_c per second,
        so that (Little's law) on average target_c = mix_c * mean_objects users of it are in view.

        Args:
            dt_s: time step, seconds.
            boxes: (N, 4) current image boxes of ``self.agents`` if already computed (used to
                account the time each user spends in view).
        """
        boxes = self.boxes() if boxes is None else boxes
        if self.agents:
            for a, v in zip(self.agents, self.visible(boxes)):
                a.visible_s += dt_s * bool(v)
        rate = self.target_count / self.dwell_s
        # arrivals queue up while their path start is occupied, so busy lanes keep their share
        self.pending += self.rng.random(len(rate)) < rate * dt_s
        np.minimum(self.pending, _MAX_PENDING, out=self.pending)
        for cid in np.flatnonzero(self.pending):
            spec = self.cfg.classes[cid]
            paths = self.domain_paths[spec.domain]
            if not paths:
                self.pending[cid] = 0
                continue
            path = int(paths[self.rng.choice(len(paths), p=self.domain_probs[spec.domain])])
            size = np.asarray(spec.size_m) * np.clip(
                1.0 + self.cfg.size_jitter * self.rng.standard_normal(3), 0.7, 1.3)
            if not self._start_is_free(path, float(size[0])):
                continue
            speed = max(0.3 * spec.speed_mps, spec.speed_mps + spec.speed_sigma_mps * self.rng.standard_normal())
            look = np.array([self.rng.uniform(0.08, 0.9), self.rng.uniform(0.05, 0.6),
                             self.rng.uniform(0.05, 0.25), self.rng.uniform(1.0, 4.0),
                             self.rng.uniform(1.0, 4.0), self.rng.uniform(0, 2 * np.pi)], np.float32)
            self.agents.append(Agent(self.next_track_id, int(cid), path, 0.0, float(speed),
                                     tuple(float(x) for x in size), look, KIND_IDS[spec.kind]))
            self.next_track_id += 1
            self.pending[cid] -= 1

    def _start_is_free(self, path: int, length_m: float) -> bool:
        for a in self.agents:
            if a.path == path and a.s_m - a.size_m[0] / 2 < length_m / 2 + 3.0:
                return False
        return True

    # -- motion ---------------------------------------------------------------------------
    def step(self, dt_s: float) -> None:
        """Advance every user by ``dt_s``: follow the leader, obey the lights.

        Users at the end of their path stay until :meth:`remove_finished`.
        """
        phase = self.phase(self.t_s)
        by_path: dict[int, list[Agent]] = {}
        for a in self.agents:
            by_path.setdefault(a.path, []).append(a)
        for pid, group in by_path.items():
            path = self.layout.paths[pid]
            group.sort(key=lambda a: -a.s_m)
            leader = None
            for a in group:
                half = a.size_m[0] / 2
                kind = self.cfg.classes[a.class_id].kind
                s_max = np.inf
                for s_stop, need in path.stops:
                    if phase != need and a.s_m + half < s_stop - 0.3:
                        s_max = min(s_max, s_stop - half - 0.3)
                if leader is not None:
                    s_max = min(s_max, leader.s_m - leader.size_m[0] / 2 - half - _GAP_M[kind])
                v = a.speed_mps
                if s_max < np.inf:
                    v = min(v, max(0.0, s_max - a.s_m) / _BRAKE_S)
                    if v * dt_s < 1e-3:        # come to a real stop (a still user emits nothing)
                        v = 0.0
                a.s_m += v * dt_s
                leader = a
        self.t_s += dt_s

    def remove_finished(self) -> np.ndarray:
        """Drop the users that reached the end of their path (all ends lie outside the view).

        Returns:
            (N_before,) bool mask of the users kept.
        """
        keep = np.array([a.s_m < self.layout.paths[a.path].length_m for a in self.agents], bool)
        for a, k in zip(self.agents, keep):
            if not k and a.visible_s > 0:
                self.dwell_s[a.class_id] = 0.8 * self.dwell_s[a.class_id] + 0.2 * a.visible_s
        self.agents = [a for a, k in zip(self.agents, keep) if k]
        return keep

    # -- geometry -------------------------------------------------------------------------
    def boxes(self) -> np.ndarray:
        """Image boxes (N, 4) = x0, y0, x1, y1 in pixels of the current users, unclipped."""
        n = len(self.agents)
        out = np.zeros((n, 4))
        if n == 0:
            return out
        pos, head = self.poses()
        size = np.array([a.size_m for a in self.agents])
        return project_boxes(self.camera, pos, head, size)

    def poses(self) -> tuple[np.ndarray, np.ndarray]:
        """Ground positions (N, 2) and unit headings (N, 2) of the current users."""
        if not self.agents:
            return np.zeros((0, 2)), np.zeros((0, 2))
        path_ids = np.array([a.path for a in self.agents])
        s_m = np.array([a.s_m for a in self.agents])
        return self.layout.poses(path_ids, s_m)

    def geometry(self) -> tuple[np.ndarray, np.ndarray]:
        """Image boxes (N, 4) and camera depths (N,) of the current users (one pose lookup)."""
        if not self.agents:
            return np.zeros((0, 4)), np.zeros(0)
        pos, head = self.poses()
        size = np.array([a.size_m for a in self.agents])
        depth = self.camera.camera_coords(pos[:, 0], 0.0, pos[:, 1])[2]
        return project_boxes(self.camera, pos, head, size), depth

    def visible(self, boxes: np.ndarray) -> np.ndarray:
        """(N,) bool: the box overlaps the image below the buildings' row."""
        return ((boxes[:, 2] > 0) & (boxes[:, 0] < self.camera.width_px)
                & (boxes[:, 3] > self.layout.wall_row) & (boxes[:, 1] < self.camera.height_px))


def _normalised(weights: list[float]) -> np.ndarray:
    w = np.asarray(weights, dtype=np.float64)
    return w / w.sum() if w.size else w


def project_boxes(camera: Camera, pos_m: np.ndarray, heading: np.ndarray,
                  size_m: np.ndarray) -> np.ndarray:
    """Image bounding boxes of upright 3-D boxes standing on the ground.

    Vertical edges are kept vertical in the image: each top corner is drawn in the column of the
    ground corner below it. The camera is pitched down, so with a plain pinhole projection vertical
    edges would converge towards the nadir and lean by up to ~30 degrees at the sides of the wide
    lens; the box of a leaning 1.7 m person is then about as wide as tall, while the renderer fills
    the box with an upright silhouette (a squat blob instead of a person). Rows are exact.

    Args:
        pos_m: (N, 2) footprint centres (X, Z).
        heading: (N, 2) unit travel directions on the ground.
        size_m: (N, 3) length along heading, width, height.

    Returns:
        (N, 4) x0, y0, x1, y1 in pixels.
    """
    side = np.stack([-heading[:, 1], heading[:, 0]], axis=1)
    corners = []
    for a in (-0.5, 0.5):
        for b in (-0.5, 0.5):
            corners.append(pos_m + heading * (a * size_m[:, :1]) + side * (b * size_m[:, 1:2]))
    c = np.stack(corners, axis=1)                                        # (N, 4, 2)
    xs = np.concatenate([c[..., 0], c[..., 0]], axis=1)
    zs = np.concatenate([c[..., 1], c[..., 1]], axis=1)
    ys = np.concatenate([np.zeros_like(c[..., 0]), np.repeat(size_m[:, 2:3], 4, axis=1)], axis=1)
    # keep corners in front of the camera (a user passing below the lens is clipped at the image)
    u, v = camera.project(xs, ys, zs)
    u = np.concatenate([u[:, :4], u[:, :4]], axis=1)   # top corners above their ground corners
    ok = np.isfinite(u) & np.isfinite(v)
    out = np.stack([np.where(ok, u, np.inf).min(1), np.where(ok, v, np.inf).min(1),
                    np.where(ok, u, -np.inf).max(1), np.where(ok, v, -np.inf).max(1)], axis=1)
    out[~ok.any(1)] = -1e4            # wholly behind the camera: far outside the image
    return out
