"""Events stored as a structured ``.npy`` array (fields t/x/y/p; legacy ts, pol/polarity/on)."""

from __future__ import annotations

import bisect
from pathlib import Path

import numpy as np

from evdet.events.types import EventFormatError, as_events, check_time_order

_T_NAMES = ("t", "ts", "timestamp")


def read_npy(path: str | Path, t_start_us: int | None = None, t_end_us: int | None = None, *,
             height: int | None = None, width: int | None = None) -> np.ndarray:
    """Events of a structured ``.npy`` file in ``[t_start_us, t_end_us)`` as ``EVENT_DTYPE``.

    The file is memory-mapped; the window is found by binary search on t and only the events
    read are checked for time order.
    """
    path = Path(path)
    if path.is_file() and path.stat().st_size == 0:
        raise EventFormatError(f"{path}: empty file (0 bytes), not a .npy array")
    try:
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError, EOFError) as err:          # EOFError: truncated header
        raise EventFormatError(f"{path}: cannot read as .npy ({err or type(err).__name__})") from err
    if arr.dtype.names is None or arr.ndim != 1:
        raise EventFormatError(f"{path}: not a 1-D structured event array (dtype {arr.dtype}, "
                               f"shape {arr.shape})")
    t_name = next((n for n in _T_NAMES if n in arr.dtype.names), None)
    if t_name is None:
        raise EventFormatError(f"{path}: missing field 't' (accepted {list(_T_NAMES)}); "
                               f"found {list(arr.dtype.names)}")
    t = arr[t_name]
    if t.dtype.kind not in "iu":
        raise EventFormatError(f"{path}: field {t_name!r} has dtype {t.dtype}, expected an integer type")
    # Bisect on single elements of the memory map (np.searchsorted would copy the strided t
    # column); time order is checked on the events that are read.
    lo = 0 if t_start_us is None else bisect.bisect_left(t, int(t_start_us))
    hi = len(t) if t_end_us is None else bisect.bisect_left(t, int(t_end_us))
    window = np.array(arr[lo:max(lo, hi)])
    check_time_order(window[t_name], str(path), t_name, offset=lo)
    return as_events(window, source=str(path), height=height, width=width)
