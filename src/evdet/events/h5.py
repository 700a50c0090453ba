"""eTraM / Gen4 HDF5 event files: windowed reader (binary search on t) and atomic writer.

On-disk layout::

    <file>.h5
      events/
        t       (N,) int64   microseconds, non-decreasing
        x       (N,) uint16
        y       (N,) uint16
        p       (N,) uint8   0 / 1
        height  ()   int     optional scalar (sensor rows)
        width   ()   int     optional scalar (sensor columns)

Datasets are usually Blosc-compressed (HDF5 filter 32001), so ``hdf5plugin`` is imported before
h5py opens a file. Older files may keep ``height``/``width`` as attributes of ``events`` or of the
file: both are accepted.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from evdet.events.types import EventFormatError, as_events, check_time_order, make_events
from evdet.utils.atomic import atomic_path

_FIELDS = ("t", "x", "y", "p")
_WRITE_CHUNK = 1 << 17          # events per HDF5 chunk (1 MiB of int64 t)
_SEARCH_BLOCK = 1 << 14         # below this span, read the block and np.searchsorted it
_SCAN_BLOCK = 1 << 22           # events per block when checking a whole file's time order (32 MiB)


def _h5py():
    """h5py with the Blosc filter registered (hdf5plugin must be imported first)."""
    import hdf5plugin  # noqa: F401  registers filter 32001 with HDF5
    import h5py

    return h5py


def write_events_h5(path: str | Path, events: np.ndarray, height: int, width: int) -> None:
    """Write events as an eTraM/Gen4-style HDF5 file, Blosc zstd level 1 with byte shuffle.

    The file is written to a temp file in the same folder and renamed over ``path``.

    Args:
        path: output ``.h5`` file.
        events: (N,) event array (``EVENT_DTYPE`` or legacy names), t non-decreasing.
        height, width: sensor size in pixels; every event must lie inside it.

    Raises:
        EventFormatError: events out of order, of the wrong types, or outside the sensor.
    """
    import hdf5plugin

    h5py = _h5py()
    path = Path(path)
    if int(height) <= 0 or int(width) <= 0:
        raise ValueError(f"{path}: sensor size must be positive, got height={height} width={width}")
    ev = as_events(np.asarray(events), source=str(path))
    if ev.size and (int(ev["x"].max()) >= width or int(ev["y"].max()) >= height):
        raise EventFormatError(
            f"{path}: events lie outside the {width}x{height} sensor "
            f"(max x {int(ev['x'].max())}, max y {int(ev['y'].max())})")
    compression = hdf5plugin.Blosc(cname="zstd", clevel=1, shuffle=hdf5plugin.Blosc.SHUFFLE)
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as fh:
            grp = fh.create_group("events")
            chunk = (max(1, min(_WRITE_CHUNK, ev.size)),)
            for name in _FIELDS:
                grp.create_dataset(name, data=np.ascontiguousarray(ev[name]), chunks=chunk,
                                   maxshape=(None,), **compression)
            grp.create_dataset("height", data=np.int64(height))
            grp.create_dataset("width", data=np.int64(width))


class H5EventReader:
    """Reads time windows of an HDF5 event file without loading the whole recording.

    Use as a context manager::

        with H5EventReader(path) as reader:
            ev = reader.read(t_start_us, t_end_us)   # half-open [t_start_us, t_end_us)

    Attributes:
        height, width: sensor size from the file (None when the file does not store it and no
            override was given).
        num_events: number of events stored.
        t_first_us, t_last_us: first and last timestamps (None for an empty file).
    """

    def __init__(self, path: str | Path, *, height: int | None = None, width: int | None = None):
        h5py = _h5py()
        self.path = Path(path)
        try:
            self._file = h5py.File(self.path, "r")
        except (OSError, ValueError) as err:
            raise EventFormatError(f"{self.path}: cannot open as HDF5 ({err})") from err
        try:
            self._datasets = self._open_datasets()
            stored_h, stored_w = self._stored_size()
        except BaseException:
            self._file.close()
            raise
        self.height = int(height) if height is not None else stored_h
        self.width = int(width) if width is not None else stored_w
        self.num_events = int(self._datasets["t"].shape[0])
        self.t_first_us = int(self._datasets["t"][0]) if self.num_events else None
        self.t_last_us = int(self._datasets["t"][-1]) if self.num_events else None
        self._last_end: tuple[int, int] | None = None   # (t_end_us, index) of the previous read

    def __enter__(self) -> "H5EventReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Close the underlying HDF5 file."""
        self._file.close()

    def read(self, t_start_us: int | None = None, t_end_us: int | None = None) -> np.ndarray:
        """Events with ``t_start_us <= t < t_end_us`` (None = open end) as an ``EVENT_DTYPE`` array.

        Out-of-range coordinates are dropped with a warning that counts them (when the sensor
        size is known).
        """
        lo = 0 if t_start_us is None else self.index_of(t_start_us)
        hi = self.num_events if t_end_us is None else self.index_of(t_end_us)
        if t_end_us is not None:
            self._last_end = (int(t_end_us), hi)
        return self.read_slice(lo, max(lo, hi))

    def read_slice(self, start: int, stop: int) -> np.ndarray:
        """Events ``start:stop`` (by index) as a validated ``EVENT_DTYPE`` array."""
        cols = {name: self._datasets[name][start:stop] for name in _FIELDS}
        check_time_order(cols["t"], str(self.path), offset=start)    # index in the whole file
        return make_events(cols["t"], cols["x"], cols["y"], cols["p"], source=str(self.path),
                           height=self.height, width=self.width)

    def check_time_order(self) -> None:
        """Check that the whole ``events/t`` is non-decreasing, block by block (bounded memory),
        with the check every read applies.

        Raises:
            EventFormatError: naming the file and the first index where t decreases.
        """
        t_ds = self._datasets["t"]
        prev = None
        for start in range(0, self.num_events, _SCAN_BLOCK):
            block = t_ds[start:start + _SCAN_BLOCK]
            if prev is not None:          # include the last value of the previous block
                block = np.concatenate([prev, block])
            check_time_order(block, str(self.path), offset=start - (prev is not None))
            prev = block[-1:]

    def index_of(self, t_us: int) -> int:
        """First index whose timestamp is >= ``t_us`` (binary search on the t dataset)."""
        t_us = int(t_us)
        if self._last_end is not None and self._last_end[0] == t_us:
            return self._last_end[1]
        t_ds = self._datasets["t"]
        lo, hi = 0, self.num_events
        # Bisect on single elements (each touches one chunk) until the span is small ...
        while hi - lo > _SEARCH_BLOCK:
            mid = (lo + hi) // 2
            if int(t_ds[mid]) < t_us:
                lo = mid + 1
            else:
                hi = mid
        # ... then finish in memory.
        block = t_ds[lo:hi]
        check_time_order(block, str(self.path), offset=lo)
        return lo + int(np.searchsorted(block, t_us, side="left"))

    def _open_datasets(self) -> dict:
        if "events" not in self._file:
            raise EventFormatError(f"{self.path}: no 'events' group (found {list(self._file.keys())})")
        grp = self._file["events"]
        out = {}
        for name in _FIELDS:
            if name not in grp:
                raise EventFormatError(f"{self.path}: missing dataset events/{name}")
            ds = grp[name]
            if ds.ndim != 1:
                raise EventFormatError(f"{self.path}: events/{name} must be 1-D, got shape {ds.shape}")
            if not (ds.dtype.kind in "iu" or (name == "p" and ds.dtype.kind == "b")):
                raise EventFormatError(
                    f"{self.path}: events/{name} has dtype {ds.dtype}, expected an integer type")
            out[name] = ds
        n = out["t"].shape[0]
        for name in ("x", "y", "p"):
            if out[name].shape[0] != n:
                raise EventFormatError(
                    f"{self.path}: events/{name} has {out[name].shape[0]} entries but events/t has {n}")
        return out

    def _stored_size(self) -> tuple[int | None, int | None]:
        grp = self._file["events"]
        size = []
        for key in ("height", "width"):
            value = None
            if key in grp:
                value = grp[key][()]
            elif key in grp.attrs:
                value = grp.attrs[key]
            elif key in self._file.attrs:
                value = self._file.attrs[key]
            elif key in self._file:
                value = self._file[key][()]
            size.append(None if value is None else int(np.asarray(value).reshape(-1)[0]))
        return size[0], size[1]


def read_h5(path: str | Path, t_start_us: int | None = None, t_end_us: int | None = None, *,
            height: int | None = None, width: int | None = None) -> np.ndarray:
    """Events of ``path`` in ``[t_start_us, t_end_us)`` (see :class:`H5EventReader`)."""
    with H5EventReader(path, height=height, width=width) as reader:
        return reader.read(t_start_us, t_end_us)


def h5_sensor_size(path: str | Path) -> tuple[int | None, int | None]:
    """(height, width) stored in an HDF5 event file, or (None, None)."""
    with H5EventReader(path) as reader:
        return reader.height, reader.width


__all__ = ["H5EventReader", "read_h5", "write_events_h5", "h5_sensor_size"]
