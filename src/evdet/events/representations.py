"""Dense representations of one window of events besides the stacked histogram (numba kernels).

All take a time-sorted event array whose coordinates lie inside ``height x width``:

    voxel_grid    float32 (nbins, H, W)  polarity (+1 / -1) spread bilinearly over time bins
    time_surface  float32 (2, H, W)      exp(-(t_ref - t_last) / tau) per polarity, 0 where no event
    event_frame   uint8   (2, H, W)      event counts per polarity (channel 0 = OFF), clipped
    vtei          int8    (nbins, H, W)  sign of the net polarity per pixel and temporal bin

Temporal bins of ``vtei`` follow the stacked histogram's float32 formula (see
``evdet.events.histogram``). The voxel grid uses ``tn = (nbins - 1) * (t - t_first) /
max(t_last - t_first, 1)`` and gives weight ``1 - (tn - floor(tn))`` to bin ``floor(tn)`` and the
rest to the next bin (as in RVT's ``VoxelGrid``).
"""

from __future__ import annotations

import numba
import numpy as np

from evdet.events.histogram import _bin_of, _check_args, _columns, _raise_kernel_error, stacked_histogram


def voxel_grid(events: np.ndarray, height: int, width: int, nbins: int = 10) -> np.ndarray:
    """Voxel grid with bilinear interpolation in time.

    Args:
        events: (N,) time-sorted event array inside ``height x width``.
        nbins: number of temporal bins.

    Returns:
        float32 (nbins, height, width); each event adds +1 (ON) or -1 (OFF) split between its two
        nearest bins.
    """
    _check_args(height, width, nbins, None)
    out = np.zeros((nbins, height, width), dtype=np.float32)
    if events.size:
        t, x, y, p = _columns(events)
        _raise_kernel_error(_voxel_kernel(t, x, y, p, out), events, height, width)
    return out


def time_surface(events: np.ndarray, height: int, width: int, tau_us: float = 50_000.0,
                 t_ref_us: int | None = None) -> np.ndarray:
    """Exponentially decaying time surface per polarity.

    Args:
        events: (N,) time-sorted event array inside ``height x width``.
        tau_us: decay constant in microseconds.
        t_ref_us: time at which the surface is read (default: the last event's timestamp).

    Returns:
        float32 (2, height, width): ``exp(-(t_ref_us - t_last) / tau_us)`` where ``t_last`` is
        the latest event of that polarity at the pixel; 0 where there is none.
    """
    if not tau_us > 0:
        raise ValueError(f"tau_us must be positive, got {tau_us}")
    _check_args(height, width, 1, None)
    out = np.zeros((2, height, width), dtype=np.float32)
    if events.size == 0:
        return out
    t, x, y, p = _columns(events)
    t_ref = int(t[-1]) if t_ref_us is None else int(t_ref_us)
    if t_ref < int(t[-1]):
        raise ValueError(f"t_ref_us={t_ref} precedes the last event (t={int(t[-1])})")
    never = np.iinfo(np.int64).min
    last = np.full((2, height, width), never, dtype=np.int64)
    _raise_kernel_error(_last_time_kernel(t, x, y, p, last), events, height, width)
    seen = last != never
    out[seen] = np.exp(-(t_ref - last[seen]).astype(np.float64) / float(tau_us))
    return out


def event_frame(events: np.ndarray, height: int, width: int,
                count_cutoff: int | None = None) -> np.ndarray:
    """Two-channel event count frame (channel 0 = OFF, 1 = ON), uint8 clipped at ``count_cutoff``
    (None = 255). Equal to ``stacked_histogram`` with one temporal bin."""
    return stacked_histogram(events, height, width, nbins=1, count_cutoff=count_cutoff, overflow="saturate")


def vtei(events: np.ndarray, height: int, width: int, nbins: int = 10) -> np.ndarray:
    """Ternary event images: sign of (ON count - OFF count) per pixel and temporal bin.

    Returns:
        int8 (nbins, height, width) with values -1, 0, 1.
    """
    _check_args(height, width, nbins, None)
    net = np.zeros((nbins, height, width), dtype=np.int32)
    if events.size:
        t, x, y, p = _columns(events)
        _raise_kernel_error(_net_polarity_kernel(t, x, y, p, nbins, net), events, height, width)
    return np.sign(net).astype(np.int8)


@numba.njit(cache=True, nogil=True)
def _check_event(i, t, x, y, prev, height, width):
    """-1 if event i is fine, else the kernel error code (see histogram._raise_kernel_error)."""
    if t[i] < prev:
        return 2 * i
    if x[i] >= width or y[i] >= height or x[i] < 0 or y[i] < 0:
        return 2 * i + 1
    return -1


@numba.njit(cache=True, nogil=True)
def _voxel_kernel(t, x, y, p, out):
    n = t.shape[0]
    nbins, height, width = out.shape
    t0 = t[0]
    denom = float(max(t[n - 1] - t0, 1))
    prev = t0
    for i in range(n):
        err = _check_event(i, t, x, y, prev, height, width)
        if err >= 0:
            return err
        prev = t[i]
        tn = (nbins - 1) * (t[i] - t0) / denom
        b = int(np.floor(tn))
        frac = tn - b
        value = 1.0 if p[i] > 0 else -1.0
        out[b, y[i], x[i]] += np.float32(value * (1.0 - frac))
        if b + 1 < nbins:
            out[b + 1, y[i], x[i]] += np.float32(value * frac)
    return -1


@numba.njit(cache=True, nogil=True)
def _last_time_kernel(t, x, y, p, last):
    """last[p, y, x] = timestamp of the latest event of polarity p at (x, y)."""
    height, width = last.shape[1], last.shape[2]
    prev = t[0]
    for i in range(t.shape[0]):
        err = _check_event(i, t, x, y, prev, height, width)
        if err >= 0:
            return err
        prev = t[i]
        last[1 if p[i] > 0 else 0, y[i], x[i]] = t[i]
    return -1


@numba.njit(cache=True, nogil=True)
def _net_polarity_kernel(t, x, y, p, nbins, net):
    n = t.shape[0]
    height, width = net.shape[1], net.shape[2]
    t0 = t[0]
    denom = np.float32(max(t[n - 1] - t0, 1))
    prev = t0
    for i in range(n):
        err = _check_event(i, t, x, y, prev, height, width)
        if err >= 0:
            return err
        prev = t[i]
        b = _bin_of(t[i] - t0, denom, nbins)
        net[b, y[i], x[i]] += 1 if p[i] > 0 else -1
    return -1
