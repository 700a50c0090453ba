"""Write events as Prophesee RAW EVT 2.0 / EVT 3.0 (encoders in numba).

Written files carry the header ``evdet.events.raw`` reads::

    % evt 2.0 | % evt 3.0
    % format EVT2;height=H;width=W | EVT3;height=H;width=W
    % geometry WxH
    % integrator_name evdet
    % end
    <words>

The stream starts with TIME_HIGH 0 and steps up to the first event, so absolute times survive
decoding. EVT 3.0 encoding: each timestamp change emits EVT_TIME_HIGH (when bits 23-12 change) and
EVT_TIME_LOW; each row change emits EVT_ADDR_Y. A run of consecutive events with the same
(t, y, p) and strictly increasing x becomes VECT_BASE_X followed by VECT_12 / VECT_8 masks; a
lone event is EVT_ADDR_X. Gaps in time longer than a quarter of the 24-bit period get
intermediate TIME_HIGH words so that a decoder can follow the wraps. Decoding the output
gives back the input events exactly, in the same order.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numba
import numpy as np

from evdet.events.types import as_events
from evdet.utils.atomic import atomic_path

_MAX_COORD = 2047            # 11-bit x / y in both formats
_EVT3_HIGH_STEP_US = 1 << 22
_EVT2_HIGH_STEP_US = 1 << 32


def encode_evt2(events: np.ndarray) -> np.ndarray:
    """Encode time-sorted events as EVT 2.0 words.

    Args:
        events: (N,) event array, t non-decreasing and >= 0, x/y < 2048.

    Returns:
        (W,) little-endian uint32 words.
    """
    ev = _checked(events)
    if ev.size == 0:
        return np.zeros(0, dtype="<u4")
    out = np.empty(2 * ev.size + int(ev["t"][-1] // _EVT2_HIGH_STEP_US) + 2, dtype=np.uint32)
    k = _encode_evt2_kernel(*_columns(ev), out)
    return out[:k].astype("<u4", copy=False)


def encode_evt3(events: np.ndarray) -> np.ndarray:
    """Encode time-sorted events as EVT 3.0 words (vectorising runs along x).

    Args:
        events: (N,) event array, t non-decreasing and >= 0, x/y < 2048.

    Returns:
        (W,) little-endian uint16 words.
    """
    ev = _checked(events)
    if ev.size == 0:
        return np.zeros(0, dtype="<u2")
    out = np.empty(5 * ev.size + int(ev["t"][-1] // _EVT3_HIGH_STEP_US) + 4, dtype=np.uint16)
    k = _encode_evt3_kernel(*_columns(ev), out)
    return out[:k].astype("<u2", copy=False)


def write_raw(path: str | Path, events: np.ndarray, height: int, width: int, *,
              evt_format: Literal["evt2", "evt3"] = "evt3") -> None:
    """Write events as a Prophesee RAW file (atomic: temp file + rename).

    Args:
        path: output ``.raw`` file.
        events: (N,) time-sorted event array inside ``height x width``.
        height, width: sensor size written to the header (at most 2048 each).
        evt_format: "evt2" or "evt3".
    """
    path = Path(path)
    if not (0 < height <= _MAX_COORD + 1 and 0 < width <= _MAX_COORD + 1):
        raise ValueError(f"{path}: sensor size {width}x{height} does not fit 11-bit coordinates")
    ev = _checked(events)
    if ev.size and (int(ev["x"].max()) >= width or int(ev["y"].max()) >= height):
        raise ValueError(f"{path}: events lie outside the {width}x{height} sensor")
    if evt_format == "evt2":
        version, words = "2.0", encode_evt2(ev)
    elif evt_format == "evt3":
        version, words = "3.0", encode_evt3(ev)
    else:
        raise ValueError(f"evt_format must be 'evt2' or 'evt3', got {evt_format!r}")
    header = (f"% evt {version}\n% format EVT{version[0]};height={height};width={width}\n"
              f"% geometry {width}x{height}\n% integrator_name evdet\n% end\n")
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        fh.write(header.encode("ascii"))
        fh.write(words.tobytes())


def _checked(events: np.ndarray) -> np.ndarray:
    ev = as_events(np.asarray(events))
    if ev.size:
        if int(ev["t"][0]) < 0:
            raise ValueError("RAW formats cannot store negative timestamps")
        if int(ev["x"].max()) > _MAX_COORD or int(ev["y"].max()) > _MAX_COORD:
            raise ValueError("RAW formats store x and y in 11 bits (< 2048)")
    return ev


def _columns(ev: np.ndarray):
    return (np.ascontiguousarray(ev["t"]), np.ascontiguousarray(ev["x"]).astype(np.int64),
            np.ascontiguousarray(ev["y"]).astype(np.int64), np.ascontiguousarray(ev["p"]))


@numba.njit(cache=True, nogil=True)
def _encode_evt2_kernel(t, x, y, p, out):
    # Time starts at TIME_HIGH 0 and steps up, so that decoders recover absolute times > 2**34 us.
    out[0] = np.uint32(0x8 << 28)
    k = 1
    high = np.int64(0)              # absolute t >> 6 of the last TIME_HIGH
    step = np.int64(1) << 26        # in units of 64 us: 2**32 us
    for i in range(t.shape[0]):
        target = t[i] >> 6
        if target != high:
            while target - high > step:
                high += step
                out[k] = np.uint32((0x8 << 28) | (high & 0xFFFFFFF))
                k += 1
            high = target
            out[k] = np.uint32((0x8 << 28) | (high & 0xFFFFFFF))
            k += 1
        out[k] = np.uint32((np.int64(p[i]) << 28) | ((t[i] & 0x3F) << 22) | (x[i] << 11) | y[i])
        k += 1
    return k


@numba.njit(cache=True, nogil=True)
def _encode_evt3_kernel(t, x, y, p, out):
    n = t.shape[0]
    # Time starts at TIME_HIGH 0 and steps up, so that decoders recover absolute times > 2**24 us.
    out[0] = np.uint16(0x8000)
    k = 1
    high = np.int64(0)              # absolute time of the last TIME_HIGH (multiple of 4096 us)
    low = np.int64(-1)
    cur_y = np.int64(-1)
    step = np.int64(1) << 22
    i = 0
    while i < n:
        ti = t[i]
        target = ti - (ti & 0xFFF)
        if target != high:
            while target - high > step:
                high += step
                out[k] = np.uint16(0x8000 | ((high >> 12) & 0xFFF))
                k += 1
            high = target
            out[k] = np.uint16(0x8000 | ((high >> 12) & 0xFFF))
            k += 1
            low = -1
        if (ti & 0xFFF) != low:
            low = ti & 0xFFF
            out[k] = np.uint16(0x6000 | low)
            k += 1
        if y[i] != cur_y:
            cur_y = y[i]
            out[k] = np.uint16(cur_y)
            k += 1
        pol = np.int64(p[i])
        j = i + 1
        while j < n and t[j] == ti and y[j] == cur_y and p[j] == p[i] and x[j] > x[j - 1]:
            j += 1
        if j - i == 1:
            out[k] = np.uint16(0x2000 | (pol << 11) | x[i])
            k += 1
            i += 1
            continue
        base = x[i]
        out[k] = np.uint16(0x3000 | (pol << 11) | base)
        k += 1
        m = i
        while m < j:
            if x[m] >= base + 12:
                base = x[m]
                out[k] = np.uint16(0x3000 | (pol << 11) | base)
                k += 1
            mask = 0
            last = m
            while last < j and x[last] < base + 12:
                mask |= 1 << (x[last] - base)
                last += 1
            if mask < (1 << 8):
                out[k] = np.uint16(0x5000 | mask)
                base += 8
            else:
                out[k] = np.uint16(0x4000 | mask)
                base += 12
            k += 1
            m = last
        i = j
    return k
