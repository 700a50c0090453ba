"""Scene layout: a main road along the view, a cross road, a tram track, pavements, zebra
crossings and traffic lights, plus the static background texture seen by the camera.

Every layout is drawn at random per sequence (road offsets, crossing positions) within the
visible ground band ``[z_near_m, z_far_m]``; beyond ``z_far_m`` a row of buildings hides the road,
so road users appear from and disappear behind it (their pixels above ``wall_row`` are hidden).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from evdet.data.synthetic.camera import Camera
from evdet.data.synthetic.config import SceneConfig

PHASE_MAIN, PHASE_CROSS = 0, 1


@dataclass
class Path:
    """A polyline that road users follow, with its traffic-light stop points.

    Args:
        points_m: (K, 2) ground points (X, Z) in metres, in travel order.
        domain: which classes may use it ("road", "pavement", "tram").
        stops: (s_m, phase) pairs: a user must not pass arc length s_m unless the light phase is `phase`.
    """

    points_m: np.ndarray
    domain: str
    stops: list[tuple[float, int]] = field(default_factory=list)

    def __post_init__(self) -> None:
        seg = np.diff(self.points_m, axis=0)
        self.seg_len_m = np.hypot(seg[:, 0], seg[:, 1])
        self.cum_m = np.concatenate([[0.0], np.cumsum(self.seg_len_m)])
        self.length_m = float(self.cum_m[-1])
        self.dirs = seg / self.seg_len_m[:, None]

    def arc_length_at(self, index: int) -> float:
        """Arc length of waypoint ``index``."""
        return float(self.cum_m[index])


@dataclass
class Layout:
    """Geometry of one synthetic scene (metres on the ground, rows in the image)."""

    z_near_m: float
    z_far_m: float
    wall_row: int
    main_x_m: float
    main_half_m: float
    cross_z_m: float
    cross_half_m: float
    pavement_m: float
    tram_z_m: float
    zebra_main_z_m: float
    zebra_cross_x_m: float
    paths: list[Path]

    def paths_for(self, domain: str) -> list[int]:
        return [i for i, p in enumerate(self.paths) if p.domain == domain]

    def __post_init__(self) -> None:
        k_max = max(len(p.seg_len_m) for p in self.paths)
        n = len(self.paths)
        self._cum = np.full((n, k_max + 1), np.inf)
        self._pts = np.zeros((n, k_max, 2))
        self._dirs = np.zeros((n, k_max, 2))
        self._nseg = np.array([len(p.seg_len_m) for p in self.paths])
        self._len = np.array([p.length_m for p in self.paths])
        for i, p in enumerate(self.paths):
            k = len(p.seg_len_m)
            self._cum[i, :k + 1] = p.cum_m
            self._pts[i, :k] = p.points_m[:-1]
            self._dirs[i, :k] = p.dirs

    def poses(self, path_ids: np.ndarray, s_m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Positions (N, 2) and unit headings (N, 2) at arc lengths ``s_m`` on paths ``path_ids``."""
        s = np.minimum(np.maximum(s_m, 0.0), self._len[path_ids])
        k = np.minimum((s[:, None] >= self._cum[path_ids, 1:]).sum(1), self._nseg[path_ids] - 1)
        start = self._pts[path_ids, k]
        heading = self._dirs[path_ids, k]
        return start + heading * (s - self._cum[path_ids, k])[:, None], heading


def build_layout(camera: Camera, cfg: SceneConfig, rng: np.random.Generator) -> Layout:
    """Draw a random intersection layout that fits the camera's visible ground band."""
    z_near = camera.near_distance_m()
    z_far = min(cfg.max_distance_m,
                camera.distance_for_height_px(1.72, cfg.min_person_height_px))
    z_far = max(z_far, z_near + 26.0)
    main_half = 3.5 * rng.uniform(0.9, 1.1)
    cross_half = 3.5 * rng.uniform(0.9, 1.1)
    pave = rng.uniform(2.5, 3.5)
    # the cross road lies at 10-28 % of the ground rows (from the far edge): small to mid-sized users
    z_far_row = camera.row_of_ground(z_far)
    row = z_far_row + (camera.height_px - z_far_row) * rng.uniform(0.10, 0.28)
    cross_z = float(camera.ground_from_pixel(camera.cx, row)[1])
    cross_z = max(min(cross_z, z_far - 8.0), z_near + 16.0)
    # the pole stands beside the main road, so the road is seen from a few metres on (eTraM-like
    # views over an intersection rather than straight down onto a lane)
    main_x = float(camera.half_width_m(cross_z)) * rng.uniform(0.3, 0.55) * rng.choice([-1.0, 1.0])
    tram_z = cross_z - cross_half - pave - 2.5          # tram track on the near side
    zebra_main_z = max(tram_z - 4.5, z_near + 3.0)
    zebra_cross_x = main_x + main_half + pave + 2.5 + rng.uniform(0.0, 3.0)
    wall_row = int(np.ceil(camera.row_of_ground(z_far)))
    wall_row = min(max(wall_row, 0), camera.height_px - 8)

    z0, z1 = z_near - 20.0, z_far + 15.0
    def across(z, margin_m):  # X extent just outside the view at depth z
        return float(camera.half_width_m(z)) + margin_m

    xc, xt = across(cross_z + cross_half, 15.0), across(tram_z, 25.0)
    xa = across(cross_z + cross_half + pave, 3.0)      # walkers start just outside the view
    kerb_l, kerb_r = main_x - main_half - pave / 2, main_x + main_half + pave / 2
    kerb_n, kerb_f = cross_z - cross_half - pave / 2, cross_z + cross_half + pave / 2
    paths: list[Path] = []

    def add(points, domain, stops=()):
        path = Path(np.asarray(points, dtype=np.float64), domain)
        path.stops = [(path.arc_length_at(i) + off, ph) for i, off, ph in stops]
        paths.append(path)

    # vehicle lanes (drive on the right); stops at the crossing / intersection
    lane_main = main_half / 2
    stop_near = max(zebra_main_z - 2.5, z_near + 0.5)
    add([(main_x + lane_main, z0), (main_x + lane_main, stop_near), (main_x + lane_main, z1)],
        "road", [(1, 0.0, PHASE_MAIN)])
    add([(main_x - lane_main, z1), (main_x - lane_main, cross_z + cross_half + 1.5),
         (main_x - lane_main, z0)], "road", [(1, 0.0, PHASE_MAIN)])
    lane_cross = cross_half / 2
    add([(-xc, cross_z - lane_cross), (main_x - main_half - 1.5, cross_z - lane_cross),
         (xc, cross_z - lane_cross)], "road", [(1, 0.0, PHASE_CROSS)])
    add([(xc, cross_z + lane_cross), (main_x + main_half + 1.5, cross_z + lane_cross),
         (-xc, cross_z + lane_cross)], "road", [(1, 0.0, PHASE_CROSS)])
    # tram: two tracks, one per direction, stopping before the main road
    add([(-xt, tram_z - 0.8), (main_x - main_half - pave - 1.0, tram_z - 0.8), (xt, tram_z - 0.8)],
        "tram", [(1, 0.0, PHASE_CROSS)])
    add([(xt, tram_z + 0.8), (main_x + main_half + pave + 1.0, tram_z + 0.8), (-xt, tram_z + 0.8)],
        "tram", [(1, 0.0, PHASE_CROSS)])
    # pavements, both directions
    for x in (kerb_l, kerb_r):
        add([(x, z_near - 5.0), (x, z_far + 5.0)], "pavement")
        add([(x, z_far + 5.0), (x, z_near - 5.0)], "pavement")
    for z in (kerb_n, kerb_f):
        add([(-xa, z), (xa, z)], "pavement")
        add([(xa, z), (-xa, z)], "pavement")
    # zebra crossings: walk to the kerb, wait for the light, cross, walk on
    add([(kerb_l, z_near - 5.0), (kerb_l, zebra_main_z), (kerb_r, zebra_main_z), (kerb_r, z_far + 5.0)],
        "pavement", [(1, 0.0, PHASE_CROSS)])
    add([(kerb_r, z_far + 5.0), (kerb_r, zebra_main_z), (kerb_l, zebra_main_z), (kerb_l, z_near - 5.0)],
        "pavement", [(1, 0.0, PHASE_CROSS)])
    add([(xa, kerb_n), (zebra_cross_x, kerb_n), (zebra_cross_x, kerb_f), (xa, kerb_f)],
        "pavement", [(1, 0.0, PHASE_MAIN)])
    add([(xa, kerb_f), (zebra_cross_x, kerb_f), (zebra_cross_x, kerb_n), (-xa, kerb_n)],
        "pavement", [(1, 0.0, PHASE_MAIN)])
    return Layout(z_near, z_far, wall_row, main_x, main_half, cross_z, cross_half, pave, tram_z,
                  zebra_main_z, zebra_cross_x, paths)


def _value_noise(shape: tuple[int, int], cell_px: int, rng: np.random.Generator) -> np.ndarray:
    """Smooth random field in [0, 1], (H, W), bilinear interpolation of a coarse grid."""
    h, w = shape
    gh, gw = h // cell_px + 2, w // cell_px + 2
    grid = rng.random((gh, gw))
    yy = np.arange(h) / cell_px
    xx = np.arange(w) / cell_px
    y0, x0 = yy.astype(int), xx.astype(int)
    fy, fx = (yy - y0)[:, None], (xx - x0)[None, :]
    g00 = grid[y0][:, x0]
    g01 = grid[y0][:, x0 + 1]
    g10 = grid[y0 + 1][:, x0]
    g11 = grid[y0 + 1][:, x0 + 1]
    return (g00 * (1 - fx) + g01 * fx) * (1 - fy) + (g10 * (1 - fx) + g11 * fx) * fy


def render_background(layout: Layout, camera: Camera, cfg: SceneConfig,
                      rng: np.random.Generator) -> np.ndarray:
    """Static scene intensity (linear, about [0, 1] times ``cfg.illumination``), float32 (H, W)."""
    h, w = camera.height_px, camera.width_px
    vv, uu = np.mgrid[0:h, 0:w].astype(np.float64) + 0.5
    X, Z = camera.ground_from_pixel(uu, vv)
    X = np.nan_to_num(X, nan=0.0)
    Z = np.nan_to_num(Z, nan=1e4)
    L = layout
    dx_main = np.abs(X - L.main_x_m)
    dz_cross = np.abs(Z - L.cross_z_m)
    on_main = dx_main < L.main_half_m
    on_cross = dz_cross < L.cross_half_m
    road = on_main | on_cross
    pave = ~road & ((dx_main < L.main_half_m + L.pavement_m) | (dz_cross < L.cross_half_m + L.pavement_m))
    img = 0.28 + 0.12 * _value_noise((h, w), max(4, w // 40), rng)            # grass, plots
    img = np.where(pave, 0.55 + 0.05 * ((np.floor(X / 0.6) + np.floor(Z / 0.6)) % 2), img)
    tiles = pave & ((np.mod(X, 0.6) < 0.04) | (np.mod(Z, 0.6) < 0.04))
    img = np.where(tiles, 0.42, img)
    img = np.where(road, 0.22 + 0.04 * _value_noise((h, w), max(3, w // 120), rng), img)
    # markings: dashed centre lines, stop lines, zebra stripes
    centre_main = on_main & ~on_cross & (dx_main < 0.08) & (np.mod(Z, 6.0) < 3.0)
    centre_cross = on_cross & ~on_main & (dz_cross < 0.08) & (np.mod(X, 6.0) < 3.0)
    zebra_main = on_main & (np.abs(Z - L.zebra_main_z_m) < 1.6) & (np.mod(X - L.main_x_m, 1.0) < 0.5)
    zebra_cross = on_cross & (np.abs(X - L.zebra_cross_x_m) < 1.6) & (np.mod(Z - L.cross_z_m, 1.0) < 0.5)
    marks = centre_main | centre_cross | zebra_main | zebra_cross
    img = np.where(marks, 0.85, img)
    # tram tracks: ballast band with four bright rails
    dz_tram = np.abs(Z - L.tram_z_m)
    band = ~road & (dz_tram < 2.0)
    img = np.where(band, 0.36, img)
    for centre in (-0.8, 0.8):
        for rail in (-0.72, 0.72):
            img = np.where(band & (np.abs(Z - L.tram_z_m - centre - rail * 0.5) < 0.05), 0.75, img)
    # buildings above the far edge: blocks of random tone with window grids
    rows = np.arange(h)[:, None] < L.wall_row
    n_blocks = int(rng.integers(4, 9))
    edges = np.sort(rng.uniform(0, w, n_blocks - 1))
    block = np.searchsorted(edges, uu[0])
    tone = rng.uniform(0.3, 0.7, n_blocks)[block]
    win_w = max(2.0, w / 160)
    windows = (np.mod(uu, 3 * win_w) < win_w) & (np.mod(vv, 3 * win_w) < 1.5 * win_w)
    facade = np.where(windows, tone[None, :] * 0.45, tone[None, :])
    img = np.where(rows, facade, img)
    img = img * (1.0 + 0.04 * (rng.random((h, w)) - 0.5))                 # fine grain
    return (img * cfg.illumination).astype(np.float32)
