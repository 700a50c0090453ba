"""Cameras of a multi-view scene: one intersection seen from several poles.

World frame (metres): the frame of view 0, the single-view generator's camera (see ``camera``):
X to the right, Y up, Z forward along the ground, view 0's pole at the origin. Every other view is
the same pinhole model standing at its own pole: a local :class:`Camera` (height, pitch, lens)
placed at ground point (x_m, z_m) and turned by ``yaw_deg`` about the vertical (0 = looking along
+Z, positive turns towards +X).

A :class:`ViewSpec` places a view relative to the crossing of the main road and the near cross
street (drawn at random per scene): at ``azimuth_deg`` around the crossing from view 0's pole, at
``distance_m`` from it (None: view 0's distance), aimed at it (``pitch_deg`` None: the optical axis
meets the ground at the crossing). The realised poses and intrinsics go to ``views.yaml``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from evdet.data.synthetic.camera import Camera


@dataclass(frozen=True)
class ViewSpec:
    """Placement and lens of one extra view (view 0 is always the single-view camera).

    Args:
        azimuth_deg: angle around the crossing, from view 0's pole, counter-clockwise seen from above.
        distance_m: ground distance from the crossing (None: the same as view 0's pole).
        height_m: mounting height.
        pitch_deg: downward tilt (None: aimed at the crossing).
        hfov_deg: horizontal field of view.
    """

    azimuth_deg: float
    distance_m: float | None = None
    height_m: float = 8.0
    pitch_deg: float | None = None
    hfov_deg: float = 100.0

    def __post_init__(self) -> None:
        if self.height_m <= 0:
            raise ValueError(f"ViewSpec.height_m must be > 0, got {self.height_m}")
        if not 20.0 <= self.hfov_deg <= 150.0:
            raise ValueError(f"ViewSpec.hfov_deg must lie in [20, 150], got {self.hfov_deg}")
        if self.distance_m is not None and self.distance_m <= 1.0:
            raise ValueError(f"ViewSpec.distance_m must be > 1 m, got {self.distance_m}")
        if self.pitch_deg is not None and not 5.0 <= self.pitch_deg <= 85.0:
            raise ValueError(f"ViewSpec.pitch_deg must lie in [5, 85], got {self.pitch_deg}")


def default_view_specs(n_views: int) -> tuple[ViewSpec, ...]:
    """The ``n_views - 1`` extra views: poles spread evenly around the crossing (two views: the
    opposite corner; three: every 120 degrees), each 8 m high with view 0's lens."""
    if n_views < 1:
        raise ValueError(f"views must be >= 1, got {n_views}")
    return tuple(ViewSpec(azimuth_deg=360.0 * k / n_views) for k in range(1, n_views))


@dataclass(frozen=True)
class PoseCamera:
    """A :class:`Camera` standing at ground point (x_m, z_m), turned by ``yaw_deg``.

    Duck-types the parts of :class:`Camera` the generator uses (``height_px``, ``width_px``,
    ``project``, ``camera_coords``, ``ground_from_pixel``), in world coordinates.
    """

    local: Camera
    x_m: float = 0.0
    z_m: float = 0.0
    yaw_deg: float = 0.0

    @property
    def height_px(self) -> int:
        return self.local.height_px

    @property
    def width_px(self) -> int:
        return self.local.width_px

    def to_local(self, x_m, z_m):
        """World ground coordinates -> the pole's own (X right, Z forward), broadcasting."""
        a = math.radians(self.yaw_deg)
        dx = np.asarray(x_m, dtype=np.float64) - self.x_m
        dz = np.asarray(z_m, dtype=np.float64) - self.z_m
        return dx * math.cos(a) - dz * math.sin(a), dx * math.sin(a) + dz * math.cos(a)

    def to_world(self, x_local, z_local):
        """The pole's own ground coordinates -> world (inverse of :meth:`to_local`)."""
        a = math.radians(self.yaw_deg)
        xl = np.asarray(x_local, dtype=np.float64)
        zl = np.asarray(z_local, dtype=np.float64)
        return self.x_m + xl * math.cos(a) + zl * math.sin(a), self.z_m - xl * math.sin(a) + zl * math.cos(a)

    def camera_coords(self, x_m, y_m, z_m):
        xl, zl = self.to_local(x_m, z_m)
        return self.local.camera_coords(xl, y_m, zl)

    def project(self, x_m, y_m, z_m):
        xl, zl = self.to_local(x_m, z_m)
        return self.local.project(xl, y_m, zl)

    def ground_from_pixel(self, u, v):
        return self.to_world(*self.local.ground_from_pixel(u, v))

    def rotation_world_to_camera(self) -> np.ndarray:
        """R (3, 3) with camera = R @ (world - centre); camera axes x right, y down, z optical axis."""
        cols = [np.asarray(self.camera_coords(*(np.eye(3)[i] + self.centre())), dtype=np.float64)
                for i in range(3)]
        return np.stack(cols, axis=1)

    def centre(self) -> np.ndarray:
        """Optical centre (X, Y, Z) in world metres."""
        return np.array([self.x_m, self.local.height_m, self.z_m])

    def intrinsics(self) -> np.ndarray:
        """K (3, 3) in pixels: [[f, 0, cx], [0, f, cy], [0, 0, 1]]."""
        c = self.local
        return np.array([[c.focal_px, 0.0, c.cx], [0.0, c.focal_px, c.cy], [0.0, 0.0, 1.0]])

    def to_dict(self) -> dict:
        """The pose and intrinsics as plain lists (the ``views.yaml`` entry)."""
        r = self.rotation_world_to_camera()
        return {"resolution": [self.height_px, self.width_px],
                "intrinsics": {"K": self.intrinsics().round(6).tolist(), "hfov_deg": self.local.hfov_deg},
                "pose": {"centre_m": self.centre().round(6).tolist(), "yaw_deg": round(self.yaw_deg, 6),
                         "pitch_deg": round(self.local.pitch_deg, 6), "height_m": self.local.height_m,
                         "R_world_to_camera": r.round(9).tolist(),
                         "t": (-r @ self.centre()).round(6).tolist()}}


def place_view(spec: ViewSpec, crossing_m: tuple[float, float], pole0_distance_m: float,
               height_px: int, width_px: int) -> PoseCamera:
    """The camera of ``spec`` for a scene whose crossing lies at ground point ``crossing_m``.

    The pole stands at ``distance_m`` from the crossing, at ``azimuth_deg`` from the direction of
    view 0's pole (the origin), and faces the crossing.
    """
    cx, cz = crossing_m
    dist = pole0_distance_m if spec.distance_m is None else spec.distance_m
    base = math.atan2(-cz, -cx)                               # direction crossing -> pole 0
    ang = base + math.radians(spec.azimuth_deg)
    px, pz = cx + dist * math.cos(ang), cz + dist * math.sin(ang)
    yaw = math.degrees(math.atan2(cx - px, cz - pz))          # 0 along +Z, positive towards +X
    pitch = spec.pitch_deg if spec.pitch_deg is not None else math.degrees(math.atan2(spec.height_m, dist))
    pitch = min(max(pitch, 5.0), 85.0)
    return PoseCamera(Camera(height_px, width_px, spec.height_m, pitch, spec.hfov_deg), px, pz, yaw)


__all__ = ["PoseCamera", "ViewSpec", "default_view_specs", "place_view"]
