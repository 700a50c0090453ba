"""Rendering of road users over the static background, fused with the DVS pixel model.

Only pixels whose intensity can change are rendered: for each road user that moved at least
``min_move_px`` since it was last drawn, the union of its old and new box (plus one pixel). Road users are composited far to
near with anti-aliased silhouettes (person: head + body ellipse; vehicle: body with windows,
wheels and lamps; two-wheeler: rider over dark wheels) carrying an internal texture, so that
their edges and their insides both produce events. Rows above ``wall_row`` (buildings) hide them.
Events of a pixel are credited to the nearest moving road user whose region holds it.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from evdet.data.synthetic.dvs import pixel_events

_TWO_PI = 2.0 * math.pi


@njit(cache=True, fastmath=True, inline="always")
def shade(kind, look, headlights, illumination, x0, y0, x1, y1, px, py):
    """Coverage alpha in [0, 1] and linear intensity of a road user at pixel (px, py).

    Args:
        kind: 0 person, 1 vehicle, 2 two-wheeler.
        look: (6,) base reflectance, second tone, texture amplitude, texture u / v frequency, phase.
        x0, y0, x1, y1: the user's image box, pixels.
    """
    w = x1 - x0
    h = y1 - y0
    if w <= 1e-3 or h <= 1e-3:
        return 0.0, 0.0
    ax = min(px + 1.0, x1) - max(px, x0)
    ay = min(py + 1.0, y1) - max(py, y0)
    if ax <= 0.0 or ay <= 0.0:
        return 0.0, 0.0
    ax = min(ax, 1.0)
    ay = min(ay, 1.0)
    u = (px + 0.5 - x0) / w
    v = (py + 0.5 - y0) / h
    base = look[0]
    tex = 1.0 + look[2] * math.sin(_TWO_PI * (look[3] * u + look[4] * v) + look[5])
    lamp = False
    if kind == 0:
        if w < 3.0 or h < 5.0:
            alpha = 0.85 * ax * ay
        else:
            rh = min(0.11 * h, 0.5 * w)
            sd_head = math.sqrt(((u - 0.5) * w) ** 2 + ((v - 0.11) * h) ** 2) - rh
            r = math.sqrt(((u - 0.5) / 0.5) ** 2 + ((v - 0.6) / 0.4) ** 2)
            sd_body = (r - 1.0) * min(0.5 * w, 0.4 * h)
            alpha = min(max(0.5 - min(sd_head, sd_body), 0.0), 1.0) * ax * ay
        if v < 0.2:
            val = 0.5 + 0.2 * look[1]
        elif v > 0.66:
            val = look[1] * tex
        else:
            val = base * tex
    elif kind == 1:
        alpha = ax * ay
        val = base * tex
        if 0.12 < v < 0.42:
            val = 0.1 + 0.06 * tex
            if w > 3.0 * h and math.sin(_TWO_PI * 7.0 * u) > 0.6:
                val = base       # pillars between bus / tram windows
        if v > 0.86 and (abs(u - 0.18) < 0.09 or abs(u - 0.82) < 0.09):
            val = 0.04
        lamp = headlights and 0.62 < v < 0.76 and (u < 0.14 or u > 0.86)
    else:
        r = math.sqrt(((u - 0.5) / 0.3) ** 2 + ((v - 0.32) / 0.32) ** 2)
        a_rider = min(max(0.5 - (r - 1.0) * min(0.3 * w, 0.32 * h), 0.0), 1.0)
        a_low = min(py + 1.0, y1) - max(py, y0 + 0.55 * h)
        a_low = min(max(a_low, 0.0), 1.0)
        if w < 3.0 or h < 5.0:
            a_rider = 0.8
        alpha = max(a_rider * ay, a_low) * ax
        val = base * tex if v < 0.55 else 0.05 + 0.08 * tex
        lamp = headlights and 0.42 < v < 0.58 and abs(u - 0.5) < 0.15
    if lamp:
        return alpha, 0.9
    return alpha, val * illumination


@njit(cache=True, inline="always")
def sample_background(bg, fx, fy):
    """Bilinear sample of (H, W) ``bg`` at continuous pixel-centre coordinates (fx, fy)."""
    h, w = bg.shape
    fx = min(max(fx, 0.0), w - 1.0)
    fy = min(max(fy, 0.0), h - 1.0)
    x0 = min(int(fx), w - 2) if w > 1 else 0
    y0 = min(int(fy), h - 2) if h > 1 else 0
    ax = fx - x0
    ay = fy - y0
    x1 = min(x0 + 1, w - 1)
    y1 = min(y0 + 1, h - 1)
    return ((bg[y0, x0] * (1 - ax) + bg[y0, x1] * ax) * (1 - ay)
            + (bg[y1, x0] * (1 - ax) + bg[y1, x1] * ax) * ay)


@njit(cache=True, fastmath=True, inline="always")
def pixel_intensity(bg, px, py, shake_x, shake_y, use_shake, boxes, kinds, looks, cand, n_cand,
                    headlights, illumination, wall_row):
    """Linear intensity of pixel (px, py): background, then candidate users far to near."""
    if use_shake:
        val = sample_background(bg, px - shake_x, py - shake_y)
    else:
        val = bg[py, px]
    if py < wall_row:
        return val
    for c in range(n_cand):
        j = cand[c]
        a, s = shade(kinds[j], looks[j], headlights, illumination,
                     boxes[j, 0], boxes[j, 1], boxes[j, 2], boxes[j, 3], px, py)
        if a > 0.0:
            val = val * (1.0 - a) + s * a
    return val


@njit(cache=True)
def render_log_frame(bg, boxes, kinds, looks, headlights, illumination, log_eps, wall_row,
                     shake_x, shake_y, use_shake):
    """Full log-intensity frame (H, W) float64 with every user at ``boxes`` (sorted far to near)."""
    h, w = bg.shape
    n = boxes.shape[0]
    cand = np.arange(n)
    out = np.empty((h, w))
    for yy in range(h):
        for xx in range(w):
            nc = 0
            for j in range(n):
                if boxes[j, 0] < xx + 1 and boxes[j, 2] > xx and boxes[j, 1] < yy + 1 and boxes[j, 3] > yy:
                    cand[nc] = j
                    nc += 1
            out[yy, xx] = math.log(pixel_intensity(bg, xx, yy, shake_x, shake_y, use_shake, boxes,
                                                   kinds, looks, cand, nc, headlights,
                                                   illumination, wall_row) + log_eps)
    return out


@njit(cache=True)
def _plan_substep(boxes0, boxes1, prev_boxes, a1, use_shake, min_move_px, h, w, bc, redraw):
    """Boxes at fraction ``a1`` of the tick into ``bc`` and which users to redraw into ``redraw``.

    Returns:
        An upper bound of the pixels the sub-step renders (for the event-buffer check).
    """
    bound = 0
    for i in range(boxes0.shape[0]):
        move = 0.0
        for c in range(4):
            bc[i, c] = boxes0[i, c] + a1 * (boxes1[i, c] - boxes0[i, c])
            move = max(move, abs(bc[i, c] - prev_boxes[i, c]))
        redraw[i] = use_shake or move >= min_move_px
        if redraw[i]:
            bw = max(prev_boxes[i, 2], bc[i, 2]) - min(prev_boxes[i, 0], bc[i, 0]) + 3
            bh = max(prev_boxes[i, 3], bc[i, 3]) - min(prev_boxes[i, 1], bc[i, 1]) + 3
            bound += int(min(bw, w + 2.0) * min(bh, h + 2.0))
    if use_shake:
        bound += h * w
    return bound


@njit(cache=True, fastmath=True)
def _update_pixel(xx, yy, l_new, l_cur, ref, last_t, thr_on, thr_off, ts0, ts1, refractory_us, max_events,
                  out_t, out_x, out_y, out_p, n_out):
    """Move pixel (xx, yy) to log intensity ``l_new`` over [ts0, ts1), emitting its events; returns n_out."""
    r, lt, n_out = pixel_events(l_cur[yy, xx], l_new, ref[yy, xx], thr_on[yy, xx], thr_off[yy, xx],
                                last_t[yy, xx], ts0, ts1, refractory_us, max_events, xx, yy,
                                out_t, out_x, out_y, out_p, n_out)
    ref[yy, xx] = r
    last_t[yy, xx] = lt
    l_cur[yy, xx] = l_new
    return n_out


@njit(cache=True, fastmath=True)
def _render_user(i, bg, l_cur, ref, last_t, stamp, sid, thr_on, thr_off, bc, prev_boxes, prev_t,
                 cand, kinds, looks, headlights, illumination, log_eps, wall_row, sx, sy, use_shake,
                 ts1, refractory_us, max_events, out_t, out_x, out_y, out_p, n_out):
    """Redraw user ``i`` over the union of its last drawn box and ``bc[i]``, emitting the events of
    the pixels not yet touched in sub-step ``sid``; the user's last drawn box and time advance.

    Returns:
        The new event-buffer fill.
    """
    h, w = bg.shape
    rx0 = max(int(math.floor(min(prev_boxes[i, 0], bc[i, 0]))) - 1, 0)
    rx1 = min(int(math.ceil(max(prev_boxes[i, 2], bc[i, 2]))) + 1, w)
    ry0 = max(int(math.floor(min(prev_boxes[i, 1], bc[i, 1]))) - 1, 0, wall_row)
    ry1 = min(int(math.ceil(max(prev_boxes[i, 3], bc[i, 3]))) + 1, h)
    ts0 = prev_t[i]
    for c in range(4):
        prev_boxes[i, c] = bc[i, c]
    prev_t[i] = ts1
    if rx0 >= rx1 or ry0 >= ry1:
        return n_out
    nc = 0
    for j in range(bc.shape[0]):                 # users that can cover a pixel of the region
        if bc[j, 0] < rx1 and bc[j, 2] > rx0 and bc[j, 1] < ry1 and bc[j, 3] > ry0:
            cand[nc] = j
            nc += 1
    for yy in range(ry0, ry1):
        for xx in range(rx0, rx1):
            if stamp[yy, xx] == sid:
                continue
            stamp[yy, xx] = sid
            l_new = math.log(pixel_intensity(bg, xx, yy, sx, sy, use_shake, bc, kinds, looks,
                                             cand, nc, headlights, illumination, wall_row) + log_eps)
            n_out = _update_pixel(xx, yy, l_new, l_cur, ref, last_t, thr_on, thr_off, ts0, ts1, refractory_us,
                                  max_events, out_t, out_x, out_y, out_p, n_out)
    return n_out


@njit(cache=True, fastmath=True)
def _render_shaken_background(bg, l_cur, ref, last_t, stamp, sid, thr_on, thr_off, log_eps, sx, sy,
                              ts0, ts1, refractory_us, max_events, out_t, out_x, out_y, out_p, n_out):
    """Camera shake: every pixel not drawn in sub-step ``sid`` shows the shifted background."""
    h, w = bg.shape
    for yy in range(h):
        for xx in range(w):
            if stamp[yy, xx] == sid:
                continue
            stamp[yy, xx] = sid
            l_new = math.log(sample_background(bg, xx - sx, yy - sy) + log_eps)
            n_out = _update_pixel(xx, yy, l_new, l_cur, ref, last_t, thr_on, thr_off, ts0, ts1, refractory_us,
                                  max_events, out_t, out_x, out_y, out_p, n_out)
    return n_out


@njit(cache=True, fastmath=True)
def render_tick(bg, l_cur, ref, last_t, stamp, thr_on, thr_off, boxes0, boxes1, prev_boxes, prev_t,
                kinds, looks, headlights, illumination, log_eps, wall_row, shake0, shake1, use_shake,
                min_move_px, t0_us, t1_us, n_sub, start_sub, stamp_base, refractory_us, max_events,
                out_t, out_x, out_y, out_p, n_out, obj_events):
    """Render ``n_sub`` sub-steps between two traffic states and emit their events.

    A user is re-rendered in a sub-step once its box has moved at least ``min_move_px`` since the
    user was last rendered (at ``prev_boxes``, time ``prev_t``); the pixels of the union of both
    boxes then ramp linearly in log intensity over that interval.

    Args:
        bg: (H, W) static background intensity.
        l_cur, ref, last_t, stamp: (H, W) pixel state (log intensity now, DVS reference, last event
            time us, last sub-step id that touched the pixel); updated in place.
        boxes0, boxes1: (N, 4) user boxes at t0_us and t1_us (shake included), far to near.
        prev_boxes, prev_t: (N, 4) and (N,) last rendered box and time of each user; updated.
        shake0, shake1: (2,) camera offsets (x, y) in pixels at t0_us and t1_us.
        out_*: event buffers filled from index ``n_out``; obj_events: (N,) events per user.

    Returns:
        (buffer fill, next sub-step): next sub-step < n_sub means the buffers were too full to go on.
    """
    h, w = bg.shape
    n = boxes0.shape[0]
    cand = np.empty(max(n, 1), np.int64)
    bc = np.empty((n, 4))
    redraw = np.zeros(max(n, 1), np.bool_)
    for k in range(start_sub, n_sub):
        a1 = (k + 1) / n_sub
        ts1 = t0_us + a1 * (t1_us - t0_us)
        bound = _plan_substep(boxes0, boxes1, prev_boxes, a1, use_shake, min_move_px, h, w, bc, redraw)
        if n_out + bound * max_events > out_t.shape[0]:
            return n_out, k
        sx = shake0[0] + a1 * (shake1[0] - shake0[0])
        sy = shake0[1] + a1 * (shake1[1] - shake0[1])
        sid = stamp_base + k + 1
        for i in range(n - 1, -1, -1):           # near first: it gets the credit for shared pixels
            if redraw[i]:
                before = n_out
                n_out = _render_user(i, bg, l_cur, ref, last_t, stamp, sid, thr_on, thr_off, bc,
                                     prev_boxes, prev_t, cand, kinds, looks, headlights,
                                     illumination, log_eps, wall_row, sx, sy, use_shake, ts1,
                                     refractory_us, max_events, out_t, out_x, out_y, out_p, n_out)
                obj_events[i] += n_out - before
        if use_shake:
            ts0 = t0_us + (k / n_sub) * (t1_us - t0_us)
            n_out = _render_shaken_background(bg, l_cur, ref, last_t, stamp, sid, thr_on, thr_off,
                                              log_eps, sx, sy, ts0, ts1, refractory_us, max_events,
                                              out_t, out_x, out_y, out_p, n_out)
    return n_out, n_sub
