"""Event data: read and write recordings, validate event arrays, time windows, representations.

NumPy / numba only (no torch). The one event array type is ``EVENT_DTYPE``
(t int64 us, x/y uint16, p uint8 0/1).

    read_events / sensor_size      every recording format (.h5, .dat, .raw EVT 2.0/3.0, .npy)
    H5EventReader / write_events_h5  windowed HDF5 reading (binary search on t), atomic writing
    RawEventReader / write_raw     RAW EVT 2.0 / 3.0 windowed reading (resumable decoder), writing
    stacked_histogram, build_representation, downsample_events, representation_name
    window_bounds, grid_window_ends, iter_windows, window_slices
"""

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from evdet.events.build import (
        DOWNSAMPLE_MODES,
        REPRESENTATIONS,
        build_representation,
        downsample_events,
        downsampled_size,
        parse_representation_name,
        representation_name,
        representation_spec,
    )
    from evdet.events.h5 import H5EventReader, write_events_h5
    from evdet.events.histogram import stacked_histogram, temporal_bins
    from evdet.events.raw import RawEventReader
    from evdet.events.raw_encode import write_raw
    from evdet.events.recording import read_events, recording_format, sensor_size
    from evdet.events.representations import event_frame, time_surface, voxel_grid, vtei
    from evdet.events.types import (
        EVENT_DTYPE,
        EventFormatError,
        OutOfRangeEventsWarning,
        as_events,
        empty_events,
        make_events,
    )
    from evdet.events.windows import grid_window_ends, iter_windows, window_bounds, window_slices

_EXPORTS = {  # public name -> submodule that defines it
    "DOWNSAMPLE_MODES": "evdet.events.build",
    "EVENT_DTYPE": "evdet.events.types",
    "EventFormatError": "evdet.events.types",
    "H5EventReader": "evdet.events.h5",
    "OutOfRangeEventsWarning": "evdet.events.types",
    "REPRESENTATIONS": "evdet.events.build",
    "RawEventReader": "evdet.events.raw",
    "as_events": "evdet.events.types",
    "build_representation": "evdet.events.build",
    "downsample_events": "evdet.events.build",
    "downsampled_size": "evdet.events.build",
    "empty_events": "evdet.events.types",
    "event_frame": "evdet.events.representations",
    "grid_window_ends": "evdet.events.windows",
    "iter_windows": "evdet.events.windows",
    "make_events": "evdet.events.types",
    "parse_representation_name": "evdet.events.build",
    "read_events": "evdet.events.recording",
    "recording_format": "evdet.events.recording",
    "representation_name": "evdet.events.build",
    "representation_spec": "evdet.events.build",
    "sensor_size": "evdet.events.recording",
    "stacked_histogram": "evdet.events.histogram",
    "temporal_bins": "evdet.events.histogram",
    "time_surface": "evdet.events.representations",
    "voxel_grid": "evdet.events.representations",
    "vtei": "evdet.events.representations",
    "window_bounds": "evdet.events.windows",
    "window_slices": "evdet.events.windows",
    "write_events_h5": "evdet.events.h5",
    "write_raw": "evdet.events.raw_encode",
}

__all__ = [
    "DOWNSAMPLE_MODES",
    "EVENT_DTYPE",
    "REPRESENTATIONS",
    "EventFormatError",
    "H5EventReader",
    "OutOfRangeEventsWarning",
    "RawEventReader",
    "as_events",
    "build_representation",
    "downsample_events",
    "downsampled_size",
    "empty_events",
    "event_frame",
    "grid_window_ends",
    "iter_windows",
    "make_events",
    "parse_representation_name",
    "read_events",
    "recording_format",
    "representation_name",
    "representation_spec",
    "sensor_size",
    "stacked_histogram",
    "temporal_bins",
    "time_surface",
    "voxel_grid",
    "vtei",
    "window_bounds",
    "window_slices",
    "write_events_h5",
    "write_raw",
]


def __getattr__(name: str):
    """Import a public name's submodule on first use (PEP 562): ``evdet.events.types`` and other
    light submodules do not pay for numba / h5py."""
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
