"""One entry point for every recording format: ``read_events`` and ``sensor_size``.

Formats, chosen by file suffix:

    .h5 / .hdf5   eTraM / Gen4 HDF5 (evdet.events.h5)
    .dat          Prophesee DAT, Gen1 / N-CARS (evdet.events.dat)
    .raw          Prophesee RAW, EVT 2.0 or EVT 3.0 (evdet.events.raw)
    .npy          structured event array (evdet.events.npy)
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np

from evdet.events.types import EventFormatError

RecordingFormat = Literal["h5", "dat", "raw", "npy"]
_SUFFIXES: dict[str, RecordingFormat] = {".h5": "h5", ".hdf5": "h5", ".dat": "dat", ".raw": "raw",
                                         ".npy": "npy"}


def recording_format(path: str | Path) -> RecordingFormat:
    """The format of a recording, from its suffix.

    Raises:
        EventFormatError: unknown suffix, or the file does not exist.
    """
    path = Path(path)
    fmt = _SUFFIXES.get(path.suffix.lower())
    if fmt is None:
        raise EventFormatError(f"{path}: unknown event file type {path.suffix!r}; "
                               f"expected one of {sorted(_SUFFIXES)}")
    if not path.is_file():
        raise EventFormatError(f"{path}: no such file")
    return fmt


def read_events(path: str | Path, t_start_us: int | None = None, t_end_us: int | None = None, *,
                height: int | None = None, width: int | None = None) -> np.ndarray:
    """Read the events of a recording in the half-open window ``[t_start_us, t_end_us)``.

    Args:
        path: ``.h5``/``.hdf5``, ``.dat``, ``.raw`` (EVT 2.0 / 3.0) or ``.npy`` file.
        t_start_us, t_end_us: window bounds in microseconds (None = open end).
        height, width: sensor size, overriding what the file says (needed for EVT 3.0 files
            without geometry whose plugin name is unknown). When the size is known, events outside
            it are dropped and counted in a warning.

    Returns:
        (N,) ``EVENT_DTYPE`` array (t int64 us non-decreasing, x/y uint16, p uint8 0/1).

    Raises:
        EventFormatError: unknown, truncated or malformed file, naming the file and the problem.
    """
    if (height is None) != (width is None):
        raise ValueError("give both height and width, or neither")
    fmt = recording_format(path)
    if fmt == "h5":
        from evdet.events.h5 import read_h5 as reader
    elif fmt == "dat":
        from evdet.events.dat import read_dat as reader
    elif fmt == "raw":
        from evdet.events.raw import read_raw as reader
    else:
        from evdet.events.npy import read_npy as reader
    return reader(path, t_start_us, t_end_us, height=height, width=width)


def sensor_size(path: str | Path, default: tuple[int, int] | None = None) -> tuple[int, int]:
    """(height, width) of a recording's sensor.

    Taken from the file's metadata (``stated_sensor_size``), else ``default``.

    Raises:
        EventFormatError: the file states no size and no ``default`` was given.
    """
    stated = stated_sensor_size(path)
    if stated is not None:
        return stated
    if default is not None:
        return int(default[0]), int(default[1])
    raise EventFormatError(f"{path}: the file does not state its sensor size; pass it explicitly "
                           f"(e.g. default=(240, 304) for Gen1, (720, 1280) for Gen4/eTraM)")


def stated_sensor_size(path: str | Path) -> tuple[int, int] | None:
    """(height, width) stated by the file (HDF5 scalars, DAT ``% Height``/``% Width``, RAW ``% geometry`` /
    ``% format`` lines, else the RAW plugin name), or None (e.g. a ``.npy`` event array)."""
    path = Path(path)
    fmt = recording_format(path)
    height = width = None
    if fmt == "h5":
        from evdet.events.h5 import h5_sensor_size

        height, width = h5_sensor_size(path)
    elif fmt == "dat":
        from evdet.events.dat import read_dat_header

        header = read_dat_header(path)
        height, width = header.height, header.width
    elif fmt == "raw":
        from evdet.events.raw import read_raw_header

        header = read_raw_header(path)
        height, width = header.height, header.width
    if height is not None and width is not None:
        return int(height), int(width)
    return None


def describe_recording(path: str | Path, *, height: int | None = None,
                       width: int | None = None) -> dict:
    """Summary of a recording: format, sensor size, event count, time span and rate.

    HDF5 files are summarised from their metadata and first/last timestamps after a block-wise
    check of time order (the events are never loaded whole); other formats are decoded. Every
    format is validated as ``read_events`` validates it.

    Returns:
        dict with keys ``format`` ("h5", "dat", "npy", "raw evt2", "raw evt3"), ``height``,
        ``width`` (None when unknown), ``num_events``,
        ``t_first_us``, ``t_last_us``, ``duration_s`` and ``rate_mev_per_s`` (the last four None for
        an empty recording, rate None for a zero duration).

    Raises:
        EventFormatError: as ``read_events`` (unreadable file, decreasing time, ...).
    """
    path = Path(path)
    fmt = recording_format(path)
    label: str = fmt
    if fmt == "raw":
        from evdet.events.raw import read_raw_header

        label = f"raw {read_raw_header(path).evt_format or 'unknown'}"
    if fmt == "h5":
        from evdet.events.h5 import H5EventReader

        with H5EventReader(path, height=height, width=width) as reader:
            reader.check_time_order()
            n, t_first, t_last = reader.num_events, reader.t_first_us, reader.t_last_us
            height, width = reader.height, reader.width
    else:
        if height is None or width is None:
            try:
                height, width = sensor_size(path)
            except EventFormatError:
                height = width = None
        events = read_events(path, height=height, width=width)
        n = int(events.size)
        t_first = int(events["t"][0]) if n else None
        t_last = int(events["t"][-1]) if n else None
    duration_s = None if t_first is None else (t_last - t_first) / 1e6
    rate = n / duration_s / 1e6 if duration_s else None
    return {"format": label, "height": height, "width": width, "num_events": n,
            "t_first_us": t_first, "t_last_us": t_last, "duration_s": duration_s,
            "rate_mev_per_s": rate}
