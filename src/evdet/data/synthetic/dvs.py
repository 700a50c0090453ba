"""DVS pixel model: events from log-intensity changes.

Each pixel keeps a reference log intensity ``ref``. Between two renders the log intensity is taken
to change linearly from ``L_prev`` to ``L_new``; every time it moves one contrast threshold away
from ``ref`` (ON: ``thr_on`` up, OFF: ``thr_off`` down) the pixel emits an event, at the time the
linear ramp crosses that level, and ``ref`` moves by one threshold. Up to ``max_events`` events per
pixel and step. An event within ``refractory_us`` of the pixel's previous event is not emitted and
``ref`` stays, so the pending change fires once the pixel has recovered (as a real pixel does).
Thresholds differ per pixel (mismatch); jitter and noise are added by the caller.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from evdet.events.types import EVENT_DTYPE, empty_events


@njit(cache=True, inline="always")
def pixel_events(l_prev, l_new, ref, thr_on, thr_off, last_t, t0_us, t1_us, refractory_us,
                 max_events, x, y, out_t, out_x, out_y, out_p, n):
    """Emit the events of one pixel for one step into the ``out_*`` buffers from index ``n``.

    Returns:
        (new ref, new last event time in us, new buffer fill n).
    """
    span = l_new - l_prev
    dt = t1_us - t0_us
    k = 0
    while k < max_events:
        d = l_new - ref
        if d >= thr_on:
            level = ref + thr_on
            pol = 1
        elif d <= -thr_off:
            level = ref - thr_off
            pol = 0
        else:
            break
        frac = 1.0
        if abs(span) > 1e-12:
            frac = (level - l_prev) / span
            if frac < 0.0:
                frac = 0.0
            elif frac > 1.0:
                frac = 1.0
        t = t0_us + frac * dt
        if t - last_t < refractory_us:
            break
        out_t[n] = np.int64(np.floor(t))
        out_x[n] = x
        out_y[n] = y
        out_p[n] = pol
        n += 1
        last_t = t
        ref = level
        k += 1
    return ref, last_t, n


@njit(cache=True)
def _frames_kernel(log_frames, t_us, thr_on, thr_off, refractory_us, max_events,
                   out_t, out_x, out_y, out_p):
    n_frames, h, w = log_frames.shape
    ref = log_frames[0].astype(np.float64)
    last_t = np.full((h, w), -1e18)
    n = 0
    for k in range(1, n_frames):
        for yy in range(h):
            for xx in range(w):
                r, lt, n = pixel_events(np.float64(log_frames[k - 1, yy, xx]),
                                        np.float64(log_frames[k, yy, xx]), ref[yy, xx],
                                        thr_on[yy, xx], thr_off[yy, xx], last_t[yy, xx],
                                        np.float64(t_us[k - 1]), np.float64(t_us[k]),
                                        refractory_us, max_events, xx, yy, out_t, out_x, out_y,
                                        out_p, n)
                ref[yy, xx] = r
                last_t[yy, xx] = lt
    return n


def events_from_log_frames(log_frames: np.ndarray, t_us: np.ndarray, thr_on, thr_off, *,
                           refractory_us: float = 0.0, max_events: int = 8) -> np.ndarray:
    """Events of a DVS watching a stack of log-intensity frames (no noise, no jitter).

    Args:
        log_frames: (T, H, W) log intensity at times ``t_us``; frame 0 sets the references.
        t_us: (T,) increasing frame times in microseconds.
        thr_on, thr_off: scalars or (H, W) contrast thresholds (log units, > 0).
        refractory_us: minimum time between two events of one pixel.
        max_events: cap per pixel and frame interval.

    Returns:
        ``EVENT_DTYPE`` array sorted by t (ties keep frame, row, column order).
    """
    log_frames = np.asarray(log_frames, dtype=np.float64)
    if log_frames.ndim != 3:
        raise ValueError(f"log_frames must be (T, H, W), got shape {log_frames.shape}")
    t_us = np.asarray(t_us, dtype=np.int64)
    if t_us.shape != (log_frames.shape[0],) or np.any(np.diff(t_us) <= 0):
        raise ValueError("t_us must be (T,) and strictly increasing")
    _, h, w = log_frames.shape
    thr_on = np.broadcast_to(np.asarray(thr_on, dtype=np.float64), (h, w)).copy()
    thr_off = np.broadcast_to(np.asarray(thr_off, dtype=np.float64), (h, w)).copy()
    if np.any(thr_on <= 0) or np.any(thr_off <= 0):
        raise ValueError("contrast thresholds must be > 0")
    cap = max(1, (log_frames.shape[0] - 1) * h * w * max_events)
    out_t = np.empty(cap, np.int64)
    out_x = np.empty(cap, np.uint16)
    out_y = np.empty(cap, np.uint16)
    out_p = np.empty(cap, np.uint8)
    n = _frames_kernel(log_frames, t_us, thr_on, thr_off, float(refractory_us), int(max_events),
                       out_t, out_x, out_y, out_p)
    return assemble_events(out_t[:n], out_x[:n], out_y[:n], out_p[:n])


def assemble_events(t_us, x, y, p) -> np.ndarray:
    """Columns -> ``EVENT_DTYPE`` array, stably sorted by t."""
    order = np.argsort(t_us, kind="stable")
    ev = empty_events(len(order))
    ev["t"], ev["x"], ev["y"], ev["p"] = t_us[order], x[order], y[order], p[order]
    return ev


def contrast_thresholds(shape: tuple[int, int], mean: float, sigma: float, minimum: float,
                        rng: np.random.Generator) -> np.ndarray:
    """Per-pixel thresholds N(mean, sigma) clipped below at ``minimum``, float64 (H, W)."""
    return np.maximum(minimum, mean + sigma * rng.standard_normal(shape))


__all__ = ["EVENT_DTYPE", "pixel_events", "events_from_log_frames", "assemble_events",
           "contrast_thresholds"]
