"""One interface over all representations: ``build_representation`` with 2x downsampling modes.

Downsampling (for 1280x720 sources; output size ``(H // 2, W // 2)``):

    none         full resolution
    ds2_nearest  build at full resolution, keep pixel (2i+1, 2j+1) (RVT's ``nearest-exact``
                 compatible); 3 of 4 pixels' events are lost
    ds2_sum      build from events at (x // 2, y // 2): for counting representations that is the
                 sum of each 2x2 block, clipped at ``count_cutoff`` afterwards; keeps the events of
                 small objects. Voxel grid: block sum; time surface: latest event of the block;
                 VTEI: sign of the block's net polarity. Time bins still come from all the
                 window's events. (With an odd H or W the last row / column is cropped.)
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from evdet.events.histogram import stacked_histogram
from evdet.events.representations import event_frame, time_surface, voxel_grid, vtei

RepresentationName = Literal["stacked_histogram", "voxel_grid", "time_surface", "event_frame", "vtei"]
Downsample = Literal["none", "ds2_nearest", "ds2_sum"]

REPRESENTATIONS: tuple[str, ...] = ("stacked_histogram", "voxel_grid", "time_surface", "event_frame",
                                    "vtei")
DOWNSAMPLE_MODES: tuple[str, ...] = ("none", "ds2_nearest", "ds2_sum")
_BUILDERS = {
    "stacked_histogram": stacked_histogram,
    "voxel_grid": voxel_grid,
    "time_surface": time_surface,
    "event_frame": event_frame,
    "vtei": vtei,
}
_DTYPES = {"stacked_histogram": np.uint8, "voxel_grid": np.float32, "time_surface": np.float32,
           "event_frame": np.uint8, "vtei": np.int8}


def build_representation(name: RepresentationName, events: np.ndarray, height: int, width: int, *,
                         downsample: Downsample = "none", **params) -> np.ndarray:
    """Build one representation of a window of events.

    Args:
        name: "stacked_histogram", "voxel_grid", "time_surface", "event_frame" or "vtei".
        events: (N,) time-sorted event array inside the full-resolution ``height x width``.
        height, width: full (source) resolution in pixels.
        downsample: "none", "ds2_nearest" or "ds2_sum" (see module docstring).
        **params: the builder's own options (``nbins``, ``count_cutoff``, ``tau_us``, ``t_ref_us``).

    Returns:
        (C, H', W') array with H' = height (or height // 2 when downsampled); dtype and C per
        :func:`representation_spec`.

    Raises:
        ValueError: unknown name, downsampling mode or parameter.
    """
    builder = _builder(name)
    if downsample == "none":
        return builder(events, height, width, **params)
    if downsample == "ds2_nearest":
        if builder is stacked_histogram:         # fused: never builds the full-size histogram
            return stacked_histogram(events, height, width, **params, nearest_ds2=True)
        full = builder(events, height, width, **params)
        return np.ascontiguousarray(full[:, 1::2, 1::2][:, : height // 2, : width // 2])
    if downsample == "ds2_sum":
        if height < 2 or width < 2:
            raise ValueError(f"cannot downsample a {width}x{height} frame by 2")
        # Built on the ceil-sized grid and cropped, so that t_first / t_last (time bins) come
        # from all the window's events, as in the full-resolution representation.
        out = builder(downsample_events(events), (height + 1) // 2, (width + 1) // 2, **params)
        return np.ascontiguousarray(out[:, : height // 2, : width // 2])
    raise ValueError(f"unknown downsample mode {downsample!r}; expected one of {DOWNSAMPLE_MODES}")


def downsample_events(events: np.ndarray) -> np.ndarray:
    """Events moved to the half-resolution grid, (x // 2, y // 2), as a new array.

    Events of a ``H x W`` sensor land inside ``((H + 1) // 2, (W + 1) // 2)``.
    """
    out = events.copy()
    out["x"] = events["x"] // 2
    out["y"] = events["y"] // 2
    return out


def downsampled_size(height: int, width: int, downsample: Downsample) -> tuple[int, int]:
    """(height, width) of a representation built with ``downsample``."""
    if downsample == "none":
        return height, width
    if downsample in ("ds2_nearest", "ds2_sum"):
        return height // 2, width // 2
    raise ValueError(f"unknown downsample mode {downsample!r}; expected one of {DOWNSAMPLE_MODES}")


def representation_spec(name: RepresentationName, nbins: int = 10) -> tuple[int, np.dtype]:
    """(number of channels, dtype) of a representation."""
    _builder(name)
    channels = {"stacked_histogram": 2 * nbins, "voxel_grid": nbins, "time_surface": 2,
                "event_frame": 2, "vtei": nbins}[name]
    return channels, np.dtype(_DTYPES[name])


def representation_name(name: RepresentationName, window_ms: int = 50, nbins: int = 10, *,
                        tau_us: float | None = None) -> str:
    """Folder name of a representation in the preprocessed layout.

    ``representation_name("stacked_histogram", window_ms=50, nbins=10)`` gives
    ``"stacked_histogram_dt=50_nbins=10"`` (the RVT name); representations without temporal bins
    omit ``nbins`` and the time surface appends ``tau=<tau_us>us``.
    """
    _builder(name)
    if name in ("stacked_histogram", "voxel_grid", "vtei"):
        return f"{name}_dt={window_ms}_nbins={nbins}"
    if name == "time_surface":
        tau = 50_000 if tau_us is None else tau_us
        return f"{name}_dt={window_ms}_tau={tau:g}us"
    return f"{name}_dt={window_ms}"



def parse_representation_name(folder: str) -> tuple[str, dict]:
    """Inverse of :func:`representation_name`: ``(name, {"window_ms": .., "nbins": .., "tau_us": ..})``.

    Raises:
        ValueError: the folder name does not start with a known representation or has a bad field.
    """
    for name in sorted(_BUILDERS, key=len, reverse=True):
        if folder == name or folder.startswith(name + "_"):
            params: dict = {}
            for part in folder[len(name):].split("_")[1:]:
                key, sep, value = part.partition("=")
                if not sep:
                    raise ValueError(f"representation {folder!r}: field {part!r} is not key=value")
                if key == "dt":
                    params["window_ms"] = int(value)
                elif key == "nbins":
                    params["nbins"] = int(value)
                elif key == "tau" and value.endswith("us"):
                    params["tau_us"] = float(value[:-2])
                else:
                    raise ValueError(f"representation {folder!r}: unknown field {key!r}")
            return name, params
    raise ValueError(f"representation {folder!r}: expected one of {REPRESENTATIONS} followed by _dt=..")

def _builder(name: str):
    try:
        return _BUILDERS[name]
    except KeyError:
        raise ValueError(f"unknown representation {name!r}; expected one of {REPRESENTATIONS}") from None
