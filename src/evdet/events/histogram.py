"""Stacked histogram (RVT ``stacked_histogram_dt=50_nbins=10``), numba fast path.

For a window of time-sorted events, the histogram has shape ``(2*nbins, H, W)``, uint8,
polarity-major: channel ``p * nbins + bin``. The temporal bin of an event is, in float32 as the
reference implementation computes it::

    bin = floor(float32(t - t_first) / float32(max(t_last - t_first, 1)) * float32(nbins))
    bin = min(bin, nbins - 1)

with ``t_first`` / ``t_last`` the first and last timestamps of the window. Counts are clipped at
``count_cutoff``.

Overflow (``overflow``): RVT (``data/utils/representations.py``, ``StackedHistogram``) accumulates
the counts in a uint8 tensor and clips at the cutoff afterwards, so a cell with 256 or more events
wraps modulo 256 before the cutoff (260 events store 4, not 10). ``"rvt"`` (default) reproduces
that, bit for bit with RVT-preprocessed data; ``"saturate"`` clips the true count (260 -> 10), as
evlib does and as the count means. They differ only in cells with >= 256 events in one bin.
"""

from __future__ import annotations

import numba
import numpy as np

_UINT8_MAX = 255
OVERFLOW_MODES = ("rvt", "saturate")


def stacked_histogram(events: np.ndarray, height: int, width: int, nbins: int = 10,
                      count_cutoff: int | None = 10, *, nearest_ds2: bool = False,
                      overflow: str = "rvt") -> np.ndarray:
    """Stacked per-polarity temporal histogram of one window.

    Args:
        events: (N,) event array (fields t, x, y, p), sorted by t.
        height, width: frame size in pixels; every event must lie inside it.
        nbins: temporal bins per polarity.
        count_cutoff: counts are clipped at this value (None = 255, the uint8 maximum).
        nearest_ds2: return the full-resolution histogram downsampled 2x by RVT's
            ``nearest-exact`` (pixel (2i+1, 2j+1) -> (i, j)), built directly at half size: the
            time bins still come from all the window's events, the other 3 of 4 pixels' events
            are skipped (same output as ``full[:, 1::2, 1::2][:, :height // 2, :width // 2]``).
        overflow: "rvt" (counts wrap modulo 256 before the cutoff, as RVT's uint8 accumulation) or
            "saturate" (the true count is clipped); see the module docstring.

    Returns:
        uint8 array (2*nbins, height, width), or (2*nbins, height // 2, width // 2) with
        ``nearest_ds2``; channels 0..nbins-1 hold polarity 0.

    Raises:
        ValueError: events out of time order or outside ``height x width``.
    """
    cutoff = _check_args(height, width, nbins, count_cutoff)
    if overflow not in OVERFLOW_MODES:
        raise ValueError(f"overflow must be one of {OVERFLOW_MODES}, got {overflow!r}")
    shift = 1 if nearest_ds2 else 0
    out = np.zeros((2 * nbins, height >> shift, width >> shift), dtype=np.uint8)
    if events.size == 0:
        return out
    t, x, y, p = _columns(events)
    wrap = overflow == "rvt"
    err = _histogram_kernel(t, x, y, p, nbins, 255 if wrap else cutoff, height, width, shift, out, wrap)
    _raise_kernel_error(err, events, height, width)
    if wrap:
        np.minimum(out, np.uint8(cutoff), out=out)
    return out


def temporal_bins(t_us: np.ndarray, nbins: int) -> np.ndarray:
    """(N,) int64 temporal bin of each event, exactly as :func:`stacked_histogram` computes it."""
    t_us = np.asarray(t_us, dtype=np.int64)
    if t_us.size == 0:
        return np.zeros(0, dtype=np.int64)
    return _bins_kernel(t_us, nbins)


def _check_args(height: int, width: int, nbins: int, count_cutoff: int | None) -> int:
    if height <= 0 or width <= 0:
        raise ValueError(f"height and width must be positive, got {height}x{width}")
    if nbins <= 0:
        raise ValueError(f"nbins must be positive, got {nbins}")
    cutoff = _UINT8_MAX if count_cutoff is None else int(count_cutoff)
    if not 0 <= cutoff <= _UINT8_MAX:
        raise ValueError(f"count_cutoff must lie in 0..255 (uint8 output), got {count_cutoff}")
    return cutoff


def _columns(events: np.ndarray):
    """t (int64), x, y (integer), p (uint8) columns of an event array.

    Strided views into the structured array, not copies: the kernels read each event once, so a
    contiguous copy would cost more than it saves.
    """
    t = events["t"] if events["t"].dtype == np.int64 else events["t"].astype(np.int64)
    p = events["p"] if events["p"].dtype == np.uint8 else events["p"].astype(np.uint8)
    return t, events["x"], events["y"], p


def _raise_kernel_error(err: int, events: np.ndarray, height: int, width: int) -> None:
    """Turn a kernel error code (-1 ok, else 2*index + kind) into a ValueError."""
    if err < 0:
        return
    idx, kind = divmod(err, 2)
    if kind == 0:
        raise ValueError(f"events/t decreases at index {idx}; sort the window by time first")
    ev = events[idx]
    raise ValueError(f"event {idx} at (x={ev['x']}, y={ev['y']}) lies outside the "
                     f"{width}x{height} frame")


@numba.njit(cache=True, nogil=True)
def _bin_of(dt: np.int64, denom: np.float32, nbins: int) -> int:
    """float32 bin index, as the reference torch code computes it, clamped to nbins-1."""
    b = int(np.floor(np.float32(dt) / denom * np.float32(nbins)))
    return nbins - 1 if b > nbins - 1 else b


@numba.njit(cache=True, nogil=True)
def _bins_kernel(t, nbins):
    n = t.shape[0]
    out = np.empty(n, dtype=np.int64)
    t0 = t[0]
    denom = np.float32(max(t[n - 1] - t0, 1))
    for i in range(n):
        out[i] = _bin_of(t[i] - t0, denom, nbins)
    return out


@numba.njit(cache=True, nogil=True)
def _bin_thresholds(dt_max, nbins):
    """(nbins + 2,) int64: entry b is the smallest dt in [0, dt_max] whose bin is >= b.

    The float32 bin formula is non-decreasing in dt (each rounding step is monotonic), so the bin
    of a time-sorted event only moves forward and crosses these thresholds in order; entries
    that no dt reaches, and the two sentinels, are larger than any dt.
    """
    denom = np.float32(max(dt_max, 1))
    never = np.int64(1) << 62
    thr = np.full(nbins + 2, never, dtype=np.int64)
    thr[0] = 0
    for b in range(1, nbins):
        lo = np.int64(0)
        hi = np.int64(dt_max) + 1
        while lo < hi:
            mid = (lo + hi) // 2
            if _bin_of(mid, denom, nbins) >= b:
                hi = mid
            else:
                lo = mid + 1
        if lo <= dt_max:
            thr[b] = lo
    return thr


@numba.njit(cache=True, nogil=True)
def _histogram_kernel(t, x, y, p, nbins, cutoff, height, width, shift, out, wrap):
    """Fill out (2*nbins, H >> shift, W >> shift) uint8 in place; returns -1, or 2*i (time
    order) / 2*i+1 (outside height x width). ``wrap``: count modulo 256 (RVT's uint8
    accumulation; the caller clips afterwards), else saturate at ``cutoff``.

    ``shift`` 1 keeps only odd (x, y), stored at (x >> 1, y >> 1) (nearest-exact 2x). The bin is
    tracked with integer thresholds (see ``_bin_thresholds``) instead of a float32 division per
    event: same result, about 25 % faster.
    """
    n = t.shape[0]
    out_h = out.shape[1]
    out_w = out.shape[2]
    odd = (1 << shift) - 1                 # 0: every pixel; 1: odd x and y only
    t0 = t[0]
    thr = _bin_thresholds(t[n - 1] - t0, nbins)
    flat = out.reshape(-1)
    plane = out_h * out_w
    cut = np.uint8(cutoff)
    prev = t0
    b = 0
    next_thr = thr[1]
    for i in range(n):
        ti = t[i]
        if ti < prev:
            return 2 * i
        prev = ti
        while ti - t0 >= next_thr:
            b += 1
            next_thr = thr[b + 1]
        xi = np.int64(x[i])
        yi = np.int64(y[i])
        if xi < 0 or xi >= width or yi < 0 or yi >= height:
            return 2 * i + 1
        if (xi & yi & odd) != odd:
            continue
        xi >>= shift
        yi >>= shift
        if xi >= out_w or yi >= out_h:
            continue
        k = (nbins * (1 if p[i] > 0 else 0) + b) * plane + yi * out_w + xi
        v = flat[k]
        if wrap:
            flat[k] = np.uint8((np.int64(v) + 1) & 255)
        elif v < cut:
            flat[k] = v + np.uint8(1)
    return -1
