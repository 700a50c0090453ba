"""Scene layout: the intersection in front of a pole camera, filling its view as in eTraM.

A main road runs along the view from below the camera to the far edge; a near cross street passes
in front of the pole (lower half of the image: large road users), a tram track lies beyond it, and a
far cross street (when the visible ground is deep enough) crosses the upper part of the image (small
road users). Pavements line every road; zebra crossings cross the main road at each cross street and
each cross street beside the main road; traffic lights alternate between the main road and the
cross streets. Positions are drawn at random per sequence as fractions of the visible ground rows,
so every resolution gets a scene that spans its image. Beyond ``z_far_m`` a row of buildings hides
the road: road users appear from and disappear behind it (their pixels above ``wall_row`` are hidden).

Ground frame (metres): X to the right, Z forward from the foot of the pole (see ``camera``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from evdet.data.synthetic.camera import Camera
from evdet.data.synthetic.config import SceneConfig

PHASE_MAIN, PHASE_CROSS = 0, 1

# The pole watches its own corner, the busiest part of the scene: paths along the near cross street
# get NEAR_PATH_WEIGHT times the arrivals of the main road, those along the far street
# FAR_PATH_WEIGHT times. A metre of ground near the camera spans many image rows and a far metre
# few (and a far street is long in view), so with equal arrivals the far rows would hold most users.
NEAR_PATH_WEIGHT = 4.0
FAR_PATH_WEIGHT = 0.5
# image rows (as a fraction of the visible ground rows, 0 = buildings, 1 = bottom) of the streets
NEAR_STREET_ROWS = (0.60, 0.75)
FAR_STREET_ROWS = (0.10, 0.25)
_WALKER_ZEBRA_SHARE = 0.5          # walkers that take a zebra crossing (the others keep to a pavement)


@dataclass
class Path:
    """A polyline that road users follow, with its traffic-light stop points.

    Args:
        points_m: (K, 2) ground points (X, Z) in metres, in travel order.
        domain: which classes may use it ("road", "pavement", "tram").
        stops: (s_m, phase) pairs: a user must not pass arc length s_m unless the light phase is `phase`.
        weight: relative arrival rate among the paths of its domain.
    """

    points_m: np.ndarray
    domain: str
    stops: list[tuple[float, int]] = field(default_factory=list)
    weight: float = 1.0

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
    """Geometry of one synthetic scene (metres on the ground, rows in the image).

    ``streets_z_m`` holds the centre lines of the cross streets (near first); ``zebra_main_z_m``
    the zebra crossing over the main road at each of them.
    """

    z_near_m: float
    z_far_m: float
    wall_row: int
    main_x_m: float
    main_half_m: float
    streets_z_m: tuple[float, ...]
    cross_half_m: float
    pavement_m: float
    tram_z_m: float
    zebra_main_z_m: tuple[float, ...]
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


def visible_band(camera: Camera, cfg: SceneConfig) -> tuple[float, float, int]:
    """(z_near_m, z_far_m, wall_row): the ground seen by the bottom row, the buildings' distance
    (far enough for people to stay ``cfg.min_person_height_px`` tall) and their image row."""
    z_near = camera.near_distance_m()
    z_far = min(cfg.max_distance_m, camera.distance_for_height_px(1.72, cfg.min_person_height_px))
    z_far = max(z_far, z_near + 26.0)
    wall_row = int(np.ceil(camera.row_of_ground(z_far)))
    return z_near, z_far, min(max(wall_row, 0), camera.height_px - 8)


def _ground_z_at_rows(camera: Camera, wall_row: int, frac: float) -> float:
    """Ground distance of the image row at ``frac`` of the way from ``wall_row`` to the bottom."""
    row = wall_row + (camera.height_px - wall_row) * frac
    return float(camera.ground_from_pixel(camera.cx, row)[1])


def build_layout(camera: Camera, cfg: SceneConfig, rng: np.random.Generator) -> Layout:
    """Draw a random intersection layout that fills the camera's view (see the module docstring)."""
    z_near, z_far, wall_row = visible_band(camera, cfg)
    main_half = 3.5 * rng.uniform(0.9, 1.1)
    cross_half = 3.5 * rng.uniform(0.9, 1.1)
    pave = rng.uniform(2.5, 3.5)
    near_z = _ground_z_at_rows(camera, wall_row, rng.uniform(*NEAR_STREET_ROWS))
    near_z = max(near_z, z_near + cross_half + pave / 2 + 0.5)     # its near pavement in view
    tram_z = near_z + cross_half + pave + 2.5           # tram track just beyond the near street
    far_z = _ground_z_at_rows(camera, wall_row, rng.uniform(*FAR_STREET_ROWS))
    far_z = max(far_z, tram_z + 2.0 + pave + cross_half + 4.0)
    streets = (near_z,) if far_z > z_far - cross_half - pave else (near_z, far_z)
    # the pole stands at a corner: the main road passes beside it and runs off to the far edge
    main_x = float(camera.half_width_m(near_z)) * rng.uniform(0.15, 0.45) * rng.choice([-1.0, 1.0])
    zebra_main = tuple(z - cross_half - 2.0 for z in streets)
    zebra_cross_x = main_x + main_half + pave + 2.5 + rng.uniform(0.0, 3.0)
    geo = _Geometry(camera, z_near, z_far, main_x, main_half, streets, cross_half, pave)
    paths = (_vehicle_paths(geo, zebra_main) + _tram_paths(geo, tram_z)
             + _pavement_paths(geo, zebra_main, zebra_cross_x))
    return Layout(z_near, z_far, wall_row, main_x, main_half, streets, cross_half, pave, tram_z,
                  zebra_main, zebra_cross_x, paths)


@dataclass(frozen=True)
class _Geometry:
    """The road axes that every group of paths is built from."""

    camera: Camera
    z_near: float
    z_far: float
    main_x: float
    main_half: float
    streets: tuple[float, ...]
    cross_half: float
    pave: float

    @property
    def z0(self) -> float:                    # path ends along Z, outside the view
        return self.z_near - 20.0

    @property
    def z1(self) -> float:
        return self.z_far + 15.0

    def across(self, z_m: float, margin_m: float) -> float:
        """X just outside the view at depth ``z_m``."""
        return float(self.camera.half_width_m(z_m)) + margin_m

    def weight(self, street: int) -> float:
        return NEAR_PATH_WEIGHT if street == 0 else FAR_PATH_WEIGHT


def _path(points, domain: str, stops=(), weight: float = 1.0) -> Path:
    """A path whose stops are given as (waypoint index, offset m, phase)."""
    path = Path(np.asarray(points, dtype=np.float64), domain, weight=weight)
    path.stops = [(path.arc_length_at(i) + off, ph) for i, off, ph in stops]
    return path


def _vehicle_paths(g: _Geometry, zebra_main: tuple[float, ...]) -> list[Path]:
    """Two main-road lanes (drive on the right) stopping at every cross street, and two lanes per
    cross street stopping at the main road."""
    lane = g.main_half / 2
    x_up, x_down = g.main_x + lane, g.main_x - lane
    up = [(x_up, g.z0)] + [(x_up, max(z - 2.5, g.z_near + 0.5)) for z in zebra_main] + [(x_up, g.z1)]
    down = ([(x_down, g.z1)] + [(x_down, z + g.cross_half + 1.5) for z in reversed(g.streets)]
            + [(x_down, g.z0)])
    n = len(g.streets)
    paths = [_path(up, "road", [(i + 1, 0.0, PHASE_MAIN) for i in range(n)]),
             _path(down, "road", [(i + 1, 0.0, PHASE_MAIN) for i in range(n)])]
    lane_c = g.cross_half / 2
    for k, z in enumerate(g.streets):
        xc = g.across(z + g.cross_half, 15.0)
        w = g.weight(k)
        paths.append(_path([(-xc, z - lane_c), (g.main_x - g.main_half - 1.5, z - lane_c),
                            (xc, z - lane_c)], "road", [(1, 0.0, PHASE_CROSS)], w))
        paths.append(_path([(xc, z + lane_c), (g.main_x + g.main_half + 1.5, z + lane_c),
                            (-xc, z + lane_c)], "road", [(1, 0.0, PHASE_CROSS)], w))
    return paths


def _tram_paths(g: _Geometry, tram_z: float) -> list[Path]:
    """Two tracks, one per direction, stopping before the main road."""
    xt = g.across(tram_z, 25.0)
    edge = g.main_half + g.pave + 1.0
    return [_path([(-xt, tram_z - 0.8), (g.main_x - edge, tram_z - 0.8), (xt, tram_z - 0.8)],
                  "tram", [(1, 0.0, PHASE_CROSS)]),
            _path([(xt, tram_z + 0.8), (g.main_x + edge, tram_z + 0.8), (-xt, tram_z + 0.8)],
                  "tram", [(1, 0.0, PHASE_CROSS)])]


def _pavement_paths(g: _Geometry, zebra_main: tuple[float, ...], zebra_cross_x: float) -> list[Path]:
    """Walks along every pavement (both directions) and over the zebra crossings; the zebra walks
    together get ``_WALKER_ZEBRA_SHARE`` of the arrivals."""
    kerb_l = g.main_x - g.main_half - g.pave / 2
    kerb_r = g.main_x + g.main_half + g.pave / 2
    a, b = g.z_near - 5.0, g.z_far + 5.0
    walks = [_path([(x, a), (x, b)], "pavement") for x in (kerb_l, kerb_r)]
    walks += [_path([(x, b), (x, a)], "pavement") for x in (kerb_l, kerb_r)]
    zebras: list[Path] = []
    for k, (z, zm) in enumerate(zip(g.streets, zebra_main)):
        w = g.weight(k)
        kerb_n, kerb_f = z - g.cross_half - g.pave / 2, z + g.cross_half + g.pave / 2
        xa = g.across(kerb_f, 3.0)                   # walkers start just outside the view
        for zk in (kerb_n, kerb_f):
            walks.append(_path([(-xa, zk), (xa, zk)], "pavement", weight=w))
            walks.append(_path([(xa, zk), (-xa, zk)], "pavement", weight=w))
        # walk to the kerb, wait for the light, cross, walk on
        zebras.append(_path([(kerb_l, a), (kerb_l, zm), (kerb_r, zm), (kerb_r, b)], "pavement",
                            [(1, 0.0, PHASE_CROSS)], w))
        zebras.append(_path([(kerb_r, b), (kerb_r, zm), (kerb_l, zm), (kerb_l, a)], "pavement",
                            [(1, 0.0, PHASE_CROSS)], w))
        zebras.append(_path([(xa, kerb_n), (zebra_cross_x, kerb_n), (zebra_cross_x, kerb_f),
                             (xa, kerb_f)], "pavement", [(1, 0.0, PHASE_MAIN)], w))
        zebras.append(_path([(xa, kerb_f), (zebra_cross_x, kerb_f), (zebra_cross_x, kerb_n),
                             (-xa, kerb_n)], "pavement", [(1, 0.0, PHASE_MAIN)], w))
    scale = (_WALKER_ZEBRA_SHARE / (1 - _WALKER_ZEBRA_SHARE)
             * sum(p.weight for p in walks) / sum(p.weight for p in zebras))
    for p in zebras:
        p.weight *= scale
    return walks + zebras


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
    dz_cross = np.min(np.abs(Z[..., None] - np.asarray(L.streets_z_m)), axis=-1)   # nearest street
    on_main = dx_main < L.main_half_m
    on_cross = dz_cross < L.cross_half_m
    road = on_main | on_cross
    pave = ~road & ((dx_main < L.main_half_m + L.pavement_m) | (dz_cross < L.cross_half_m + L.pavement_m))
    img = 0.28 + 0.12 * _value_noise((h, w), max(4, w // 40), rng)            # grass, plots
    img = np.where(pave, 0.55 + 0.05 * ((np.floor(X / 0.6) + np.floor(Z / 0.6)) % 2), img)
    tiles = pave & ((np.mod(X, 0.6) < 0.04) | (np.mod(Z, 0.6) < 0.04))
    img = np.where(tiles, 0.42, img)
    img = np.where(road, 0.22 + 0.04 * _value_noise((h, w), max(3, w // 120), rng), img)
    # markings: dashed centre lines, zebra stripes
    centre_main = on_main & ~on_cross & (dx_main < 0.08) & (np.mod(Z, 6.0) < 3.0)
    centre_cross = on_cross & ~on_main & (dz_cross < 0.08) & (np.mod(X, 6.0) < 3.0)
    dz_zebra = np.min(np.abs(Z[..., None] - np.asarray(L.zebra_main_z_m)), axis=-1)
    zebra_main = on_main & (dz_zebra < 1.6) & (np.mod(X - L.main_x_m, 1.0) < 0.5)
    zebra_cross = on_cross & (np.abs(X - L.zebra_cross_x_m) < 1.6) & (np.mod(Z, 1.0) < 0.5)
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
