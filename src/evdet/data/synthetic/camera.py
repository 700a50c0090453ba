"""Pinhole camera over a flat ground plane: world metres <-> image pixels.

World frame: X to the right, Y up, Z forward along the ground (metres); the camera stands at
(0, height_m, 0) and looks forward, pitched down by ``pitch_deg``. Image: u = column, v = row
(pixel centres at integer + 0.5 are not used; u, v are continuous pixel coordinates).
The focal length follows from the horizontal field of view, so a scene generated at another
resolution is the same scene, scaled.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Camera:
    """Elevated static camera.

    Args:
        height_px, width_px: image size.
        height_m: mounting height above the ground.
        pitch_deg: downward tilt of the optical axis.
        hfov_deg: horizontal field of view.
    """

    height_px: int
    width_px: int
    height_m: float = 8.0
    pitch_deg: float = 35.0
    hfov_deg: float = 100.0

    @property
    def focal_px(self) -> float:
        return (self.width_px / 2.0) / math.tan(math.radians(self.hfov_deg) / 2.0)

    @property
    def cx(self) -> float:
        return self.width_px / 2.0

    @property
    def cy(self) -> float:
        return self.height_px / 2.0

    def camera_coords(self, x_m, y_m, z_m):
        """World points -> (x right, y down, z depth) camera coordinates, metres (broadcasting)."""
        th = math.radians(self.pitch_deg)
        s, c = math.sin(th), math.cos(th)
        dy = np.asarray(y_m, dtype=np.float64) - self.height_m
        z = np.asarray(z_m, dtype=np.float64)
        depth = -dy * s + z * c
        down = -dy * c - z * s
        return np.asarray(x_m, dtype=np.float64), down, depth

    def project(self, x_m, y_m, z_m):
        """World points -> image (u, v) in pixels; points behind the camera give NaN."""
        xc, yc, zc = self.camera_coords(x_m, y_m, z_m)
        with np.errstate(divide="ignore", invalid="ignore"):
            zc = np.where(zc > 1e-6, zc, np.nan)
            return self.cx + self.focal_px * xc / zc, self.cy + self.focal_px * yc / zc

    def ground_from_pixel(self, u, v):
        """Image (u, v) -> ground point (X, Z) in metres; NaN where the ray misses the ground."""
        th = math.radians(self.pitch_deg)
        s, c = math.sin(th), math.cos(th)
        xn = (np.asarray(u, dtype=np.float64) - self.cx) / self.focal_px
        yn = (np.asarray(v, dtype=np.float64) - self.cy) / self.focal_px
        denom = yn * c + s
        with np.errstate(divide="ignore", invalid="ignore"):
            scale = np.where(denom > 1e-9, self.height_m / denom, np.nan)
        return scale * xn, scale * (c - yn * s)

    def row_of_ground(self, z_m: float) -> float:
        """Image row of the ground line at forward distance ``z_m``."""
        return float(self.project(0.0, 0.0, z_m)[1])

    def half_width_m(self, z_m) -> np.ndarray:
        """Half the visible ground width (metres) at forward distance ``z_m``."""
        _, _, zc = self.camera_coords(0.0, 0.0, z_m)
        return zc * self.cx / self.focal_px

    def near_distance_m(self) -> float:
        """Ground distance seen by the bottom image row."""
        return float(self.ground_from_pixel(self.cx, float(self.height_px))[1])

    def distance_for_height_px(self, object_height_m: float, height_px: float) -> float:
        """Forward distance at which an upright object of ``object_height_m`` spans ``height_px`` rows."""
        lo, hi = 0.5, 1e4
        for _ in range(60):  # bisection: apparent height falls monotonically with distance
            mid = 0.5 * (lo + hi)
            _, v_foot = self.project(0.0, 0.0, mid)
            _, v_head = self.project(0.0, object_height_m, mid)
            if v_foot - v_head > height_px:
                lo = mid
            else:
                hi = mid
        return 0.5 * (lo + hi)
