"""The event array: one dtype for every reader and representation, plus its validation.

An event array is a 1-D structured NumPy array of ``EVENT_DTYPE``::

    t  <i8   timestamp in microseconds, non-decreasing
    x  <u2   column, 0 <= x < width
    y  <u2   row,    0 <= y < height
    p  u1    polarity, 0 (OFF) or 1 (ON)
"""

from __future__ import annotations

import warnings

import numba
import numpy as np

EVENT_DTYPE = np.dtype([("t", "<i8"), ("x", "<u2"), ("y", "<u2"), ("p", "u1")])

# Legacy field names found in older files, mapped to ours.
_FIELD_ALIASES = {
    "t": ("t", "ts", "timestamp"),
    "x": ("x",),
    "y": ("y",),
    "p": ("p", "pol", "polarity", "on"),
}


class EventFormatError(ValueError):
    """A recording or event array is truncated, malformed or of an unknown format.

    The message names the file (or ``<array>``), the field and the problem.
    """


class OutOfRangeEventsWarning(UserWarning):
    """Events with coordinates outside the sensor were dropped (the message gives the count)."""


def empty_events(n: int = 0) -> np.ndarray:
    """A zero-filled event array of length ``n``."""
    return np.zeros(n, dtype=EVENT_DTYPE)


def make_events(t_us, x, y, p, *, source: str = "<array>", height: int | None = None,
                width: int | None = None) -> np.ndarray:
    """Assemble an ``EVENT_DTYPE`` array from columns, checking their types and values.

    Args:
        t_us: (N,) integer timestamps in microseconds, non-decreasing.
        x, y: (N,) integer pixel coordinates (any signed/unsigned integer type).
        p: (N,) polarity as bool, {0, 1} or {-1, 1} (-1 and 0 both mean OFF).
        source: file name used in error messages.
        height, width: sensor size; when both are given, events outside it are dropped with an
            ``OutOfRangeEventsWarning`` that counts them.

    Raises:
        EventFormatError: non-integer columns, mismatched lengths, bad polarity values or
            decreasing time, naming ``source`` and the field.
    """
    cols = {"t": np.asarray(t_us), "x": np.asarray(x), "y": np.asarray(y), "p": np.asarray(p)}
    n = cols["t"].shape[0] if cols["t"].ndim == 1 else -1
    for name, col in cols.items():
        if col.ndim != 1:
            raise EventFormatError(f"{source}: events/{name} must be 1-D, got shape {col.shape}")
        if col.shape[0] != n:
            raise EventFormatError(
                f"{source}: events/{name} has {col.shape[0]} entries but events/t has {n}")
        kind_ok = col.dtype.kind in "iu" or (name == "p" and col.dtype.kind == "b") or col.size == 0
        if not kind_ok:
            raise EventFormatError(f"{source}: events/{name} has dtype {col.dtype}, expected an integer type")
    check_time_order(cols["t"], source)
    p_col = cols["p"]
    p_is_01 = p_col.dtype.kind == "b" or n == 0
    if not p_is_01:
        p_min, p_max = int(p_col.min()), int(p_col.max())
        p_is_01 = p_min >= 0 and p_max <= 1
        if p_min < -1 or p_max > 1:
            bad = int(np.flatnonzero((p_col < -1) | (p_col > 1))[0])
            raise EventFormatError(
                f"{source}: events/p holds {p_col[bad]} at index {bad}; expected 0/1 (or -1/1)")
    keep = None
    if height is not None and width is not None:
        if not _all_in_range(cols["x"], width) or not _all_in_range(cols["y"], height):
            keep = _in_range_mask(cols["x"], cols["y"], height, width)
            warn_dropped(source, int(keep.size - np.count_nonzero(keep)), n, height, width)
    else:
        for name in ("x", "y"):
            if not _all_in_range(cols[name], np.iinfo(np.uint16).max + 1):
                raise EventFormatError(f"{source}: events/{name} holds values outside 0..65535")
    if not p_is_01:
        cols["p"] = p_col > 0
    if cols["p"].dtype.kind == "b":
        cols["p"] = cols["p"].view(np.uint8)
    if keep is not None:
        cols = {name: col[keep] for name, col in cols.items()}
    out = np.empty(cols["t"].shape[0], dtype=EVENT_DTYPE)
    if out.size:
        _pack_kernel(cols["t"], cols["x"], cols["y"], cols["p"], out["t"], out["x"], out["y"], out["p"])
    return out


@numba.njit(cache=True, nogil=True)
def _pack_kernel(t, x, y, p, out_t, out_x, out_y, out_p):
    """Copy columns into the fields of a structured array (2-3x faster than NumPy's field
    assignment, which copies packed 13-byte records one field at a time)."""
    for i in range(t.shape[0]):
        out_t[i] = t[i]
        out_x[i] = x[i]
        out_y[i] = y[i]
        out_p[i] = p[i]


def _all_in_range(col: np.ndarray, stop: int) -> bool:
    """Whether every value of an integer column lies in ``[0, stop)`` (min/max, no copies)."""
    if col.size == 0:
        return True
    return int(col.max()) < stop and (col.dtype.kind == "u" or int(col.min()) >= 0)


def as_events(arr: np.ndarray, *, source: str = "<array>", height: int | None = None,
              width: int | None = None) -> np.ndarray:
    """Convert a structured array with fields t/x/y/p (legacy ``ts``, ``pol``, ``polarity``,
    ``on`` accepted) to ``EVENT_DTYPE``, validated as in :func:`make_events`.

    Returns the input itself when it already is a valid ``EVENT_DTYPE`` array in range (no copy).
    """
    arr = np.asarray(arr)
    if arr.dtype.names is None:
        raise EventFormatError(f"{source}: not a structured event array (dtype {arr.dtype})")
    if arr.dtype == EVENT_DTYPE and arr.ndim == 1 and _all_in_range(arr["p"], 2):
        check_time_order(arr["t"], source)
        if height is None or width is None or (
                _all_in_range(arr["x"], width) and _all_in_range(arr["y"], height)):
            return arr
        keep = _in_range_mask(arr["x"], arr["y"], height, width)
        warn_dropped(source, int(keep.size - np.count_nonzero(keep)), arr.size, height, width)
        return arr[keep]
    cols = {}
    for field, aliases in _FIELD_ALIASES.items():
        found = [a for a in aliases if a in arr.dtype.names]
        if not found:
            raise EventFormatError(
                f"{source}: missing field {field!r} (accepted names {list(aliases)}); "
                f"found {list(arr.dtype.names)}")
        cols[field] = arr[found[0]]
    return make_events(cols["t"], cols["x"], cols["y"], cols["p"], source=source,
                       height=height, width=width)


def check_time_order(t_us: np.ndarray, source: str, field: str = "events/t", offset: int = 0) -> None:
    """Raise ``EventFormatError`` naming the first index where ``t_us`` decreases.

    ``offset`` is added to the index, for slices of a longer recording.
    """
    if t_us.size < 2:
        return
    decreases = t_us[1:] < t_us[:-1]
    if decreases.any():
        raise EventFormatError(
            f"{source}: {field} decreases at index {offset + int(np.argmax(decreases)) + 1}")


def warn_dropped(source: str, n_dropped: int, n_total: int, height: int, width: int) -> None:
    """Warn that ``n_dropped`` of ``n_total`` events fell outside a ``height x width`` sensor."""
    warnings.warn(
        f"{source}: dropped {n_dropped} of {n_total} events with coordinates outside "
        f"the {width}x{height} sensor", OutOfRangeEventsWarning, stacklevel=3)


def _in_range_mask(x: np.ndarray, y: np.ndarray, height: int, width: int) -> np.ndarray:
    """(N,) bool: 0 <= x < width and 0 <= y < height (works for signed and unsigned columns)."""
    x = x.astype(np.int64, copy=False)
    y = y.astype(np.int64, copy=False)
    return (x >= 0) & (x < width) & (y >= 0) & (y < height)
