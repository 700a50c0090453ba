"""Event data: read and write recordings, validate event arrays, time windows, representations.

NumPy / numba only (no torch). The one event array type is ``EVENT_DTYPE``
(t int64 us, x/y uint16, p uint8 0/1).
"""

from evdet.events.h5 import H5EventReader, write_events_h5
from evdet.events.histogram import stacked_histogram
from evdet.events.recording import read_events, recording_format, sensor_size
from evdet.events.types import EVENT_DTYPE, EventFormatError, OutOfRangeEventsWarning, as_events, make_events

__all__ = [
    "EVENT_DTYPE",
    "EventFormatError",
    "OutOfRangeEventsWarning",
    "H5EventReader",
    "as_events",
    "make_events",
    "read_events",
    "recording_format",
    "sensor_size",
    "stacked_histogram",
    "write_events_h5",
]
