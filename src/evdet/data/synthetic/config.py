"""Scene settings of the synthetic traffic generator: classes, camera, traffic, DVS model, noise.

All lengths in the world are metres, all image quantities are pixels at the generated resolution,
all times are named with their unit. Presets are small overrides of :class:`SceneConfig`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

Kind = Literal["person", "vehicle", "twowheeler"]
Domain = Literal["road", "pavement", "tram"]
Preset = Literal["day", "night"]


@dataclass(frozen=True)
class ClassSpec:
    """One road-user class: real size, speed and where it moves.

    Args:
        name: class name (eTraM order is the order of ``SceneConfig.classes``).
        size_m: (length along heading, width, height) in metres.
        speed_mps: mean cruising speed, metres per second.
        speed_sigma_mps: standard deviation of the per-object speed.
        kind: silhouette family used by the renderer.
        domain: "road" (vehicle lanes), "pavement" (pavements and zebra crossings), "tram" (track).
    """

    name: str
    size_m: tuple[float, float, float]
    speed_mps: float
    speed_sigma_mps: float
    kind: Kind
    domain: Domain


ETRAM_CLASSES: tuple[ClassSpec, ...] = (
    ClassSpec("pedestrian", (0.45, 0.55, 1.72), 1.35, 0.25, "person", "pavement"),
    ClassSpec("car", (4.5, 1.8, 1.5), 9.0, 2.5, "vehicle", "road"),
    ClassSpec("bicycle", (1.75, 0.6, 1.75), 4.5, 1.0, "twowheeler", "road"),
    ClassSpec("bus", (12.0, 2.55, 3.2), 7.5, 1.5, "vehicle", "road"),
    ClassSpec("motorbike", (2.1, 0.8, 1.5), 10.0, 2.5, "twowheeler", "road"),
    ClassSpec("truck", (8.0, 2.5, 3.4), 7.5, 1.5, "vehicle", "road"),
    ClassSpec("tram", (30.0, 2.65, 3.5), 7.0, 1.0, "vehicle", "tram"),
    ClassSpec("wheelchair", (1.1, 0.7, 1.3), 1.0, 0.2, "person", "pavement"),
)

# Share of the road users in view per class. Labels keep only users that produced events, so
# classes that often wait (cars at red lights) lose more boxes: this mix gives label shares close
# to eTraM's (cars a little under half, pedestrians about 40 %, rare trams and wheelchairs).
ETRAM_CLASS_MIX: tuple[float, ...] = (0.36, 0.49, 0.04, 0.02, 0.03, 0.04, 0.01, 0.01)


@dataclass(frozen=True)
class SceneConfig:
    """Everything that shapes a synthetic sequence; see :func:`preset_config` for day / night."""

    # -- road users
    classes: tuple[ClassSpec, ...] = ETRAM_CLASSES
    class_mix: tuple[float, ...] = ETRAM_CLASS_MIX   # share of road users in view per class
    mean_objects: float = 12.0       # road users in view on average
    size_jitter: float = 0.08        # relative sigma of object sizes
    light_cycle_s: float = 16.0      # traffic-light period (main road green half of it)
    # -- camera (eTraM: static, elevated, looking down at the road)
    camera_height_m: float = 8.0
    pitch_deg: float = 35.0
    hfov_deg: float = 100.0          # horizontal field of view, wide traffic lens
    max_distance_m: float = 60.0     # ground distance of the far edge (buildings beyond)
    min_person_height_px: float = 10.0  # far edge comes closer at low resolution so people stay this tall
    # -- appearance
    illumination: float = 1.0        # scene brightness multiplier (night << 1)
    log_eps: float = 0.02            # dark offset in log(I + eps): low light gives small log contrast
    headlights: bool = False         # vehicles carry bright lamps (night)
    # -- DVS pixel model
    threshold_on: float = 0.2        # mean ON contrast threshold (log units)
    threshold_off: float = 0.2       # mean OFF contrast threshold
    threshold_sigma: float = 0.03    # per-pixel mismatch (sigma of the thresholds)
    threshold_min: float = 0.05
    refractory_us: int = 500
    jitter_us: float = 100.0         # sigma of Gaussian timestamp jitter
    max_events_per_step: int = 8     # per pixel and sub-step
    ba_rate_hz: float = 0.05         # background-activity noise, events per pixel per second
    hot_pixel_fraction: float = 1e-4
    hot_pixel_rate_hz: float = 40.0
    shake_px: float = 0.0            # camera-shake amplitude (0 = static mount)
    shake_hz: float = 3.0
    # -- time stepping
    physics_dt_ms: float = 20.0      # traffic update step; rendering sub-steps inside it
    max_px_per_substep: float = 1.5  # adaptive sub-steps: no edge moves more than this per render
    min_substep_us: int = 250
    # -- labels
    label_rate_hz: float = 30.0
    label_event_window_ms: float = 500.0  # a box is kept only if its object fired events recently
    label_min_events: int = 3
    min_box_side_px: float = 4.0

    def __post_init__(self) -> None:
        if len(self.class_mix) != len(self.classes):
            raise ValueError(f"SceneConfig.class_mix has {len(self.class_mix)} entries for "
                             f"{len(self.classes)} classes")
        if any(m < 0 for m in self.class_mix) or sum(self.class_mix) <= 0:
            raise ValueError(f"SceneConfig.class_mix must be non-negative with a positive sum: "
                             f"{self.class_mix}")
        for name in ("mean_objects", "physics_dt_ms", "label_rate_hz", "threshold_on",
                     "threshold_off", "max_px_per_substep", "camera_height_m", "illumination"):
            if getattr(self, name) <= 0:
                raise ValueError(f"SceneConfig.{name} must be > 0, got {getattr(self, name)}")
        if not 5.0 <= self.pitch_deg <= 85.0:
            raise ValueError(f"SceneConfig.pitch_deg must lie in [5, 85], got {self.pitch_deg}")
        if not 20.0 <= self.hfov_deg <= 150.0:
            raise ValueError(f"SceneConfig.hfov_deg must lie in [20, 150], got {self.hfov_deg}")
        if self.max_events_per_step < 1:
            raise ValueError("SceneConfig.max_events_per_step must be >= 1")

    @property
    def class_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.classes)

    @property
    def normalized_mix(self) -> tuple[float, ...]:
        total = float(sum(self.class_mix))
        return tuple(m / total for m in self.class_mix)


def preset_config(preset: Preset = "day", **overrides) -> SceneConfig:
    """The ``day`` or ``night`` scene, with any field overridden by keyword.

    Night: 5 % illumination (log contrast shrinks against the dark offset, so fewer signal
    events), three times the background activity, four times the hot pixels, larger jitter and
    refractory period, more threshold mismatch, vehicles with headlights.
    """
    if preset == "day":
        base = SceneConfig()
    elif preset == "night":
        base = SceneConfig(illumination=0.05, headlights=True, ba_rate_hz=0.15,
                           hot_pixel_fraction=4e-4, jitter_us=400.0, refractory_us=1000,
                           threshold_sigma=0.05)
    else:
        raise ValueError(f"unknown preset {preset!r}; known: 'day', 'night'")
    unknown = [k for k in overrides if k not in SceneConfig.__dataclass_fields__]
    if unknown:
        raise ValueError(f"unknown SceneConfig field(s) {unknown}")
    return replace(base, **overrides)


__all__ = ["ClassSpec", "SceneConfig", "ETRAM_CLASSES", "ETRAM_CLASS_MIX", "preset_config"]
