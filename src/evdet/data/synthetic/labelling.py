"""Label boxes from the traffic log: 30 Hz Prophesee boxes of the road users that produced events.

Rule (so that events and labels agree): at label time t a road user gets a box when
1. its box, with rows above the buildings' row removed and clipped to the frame, has both sides
   >= ``min_box_side_px``, and
2. its pixels emitted at least ``min_events`` signal events in the window (t - window_us, t]
   (at the resolution of the traffic step). A user that has stood still for longer than the window,
   or that is fully hidden behind nearer users, emitted nothing and is not labelled.
Boxes are the full (unoccluded) extent of the user, as in eTraM.
"""

from __future__ import annotations

import numpy as np

from evdet.data.labels import clip_boxes, empty_boxes

TRACK_LOG_DTYPE = np.dtype([("tick", "<i8"), ("track_id", "<u4"), ("class_id", "<u4"),
                            ("box0", "<f4", (4,)), ("box1", "<f4", (4,)), ("events", "<i8")])


def label_times_us(duration_us: int, rate_hz: float) -> np.ndarray:
    """Label frame times k / rate_hz (k >= 1, rounded to us) below ``duration_us``."""
    n = int(np.floor(duration_us * 1e-6 * rate_hz)) + 1
    t = np.round(np.arange(1, n + 1) * 1e6 / rate_hz).astype(np.int64)
    return t[t < duration_us]


def boxes_from_track_log(log: np.ndarray, tick_us: int, duration_us: int, height: int, width: int,
                         *, wall_row: int, rate_hz: float, window_us: float, min_events: int,
                         min_box_side_px: float) -> np.ndarray:
    """Prophesee box array (``BBOX_DTYPE``) at ``rate_hz`` from a traffic log.

    Args:
        log: ``TRACK_LOG_DTYPE`` rows, one per (traffic tick, visible user): the box at the start
            and end of the tick (x0, y0, x1, y1 px) and the signal events credited to the user.
        tick_us: traffic step; tick i spans [i * tick_us, (i + 1) * tick_us).
    """
    times = label_times_us(duration_us, rate_hz)
    if log.size == 0 or times.size == 0:
        return empty_boxes(0)
    n_ticks = int(log["tick"].max()) + 1
    tracks, track_idx = np.unique(log["track_id"], return_inverse=True)
    ev = np.zeros((tracks.size, n_ticks + 1), np.int64)
    np.add.at(ev, (track_idx, log["tick"] + 1), log["events"])
    cum = np.cumsum(ev, axis=1)                   # cum[:, i] = events in ticks < i
    order = np.argsort(log["tick"], kind="stable")
    log, track_idx = log[order], track_idx[order]
    starts = np.searchsorted(log["tick"], np.arange(n_ticks + 1))
    out = []
    for t in times:
        i = int(t // tick_us)
        if i >= n_ticks:
            continue
        rows = slice(starts[i], starts[i + 1])
        cur = log[rows]
        if cur.size == 0:
            continue
        alpha = (t - i * tick_us) / tick_us
        b = cur["box0"] + alpha * (cur["box1"] - cur["box0"])
        first = max(int(np.floor((t - window_us) / tick_us)), 0)
        recent = cum[track_idx[rows], i + 1] - cum[track_idx[rows], first]
        boxes = empty_boxes(cur.size)
        boxes["t"] = t
        y0 = np.maximum(b[:, 1], wall_row)
        boxes["x"], boxes["y"] = b[:, 0], y0
        boxes["w"], boxes["h"] = b[:, 2] - b[:, 0], np.maximum(b[:, 3] - y0, 0)
        boxes["class_id"], boxes["track_id"] = cur["class_id"], cur["track_id"]
        boxes["class_confidence"] = 1.0
        boxes = clip_boxes(boxes, height, width)
        keep = ((boxes["w"] >= min_box_side_px) & (boxes["h"] >= min_box_side_px)
                & (recent >= min_events))
        kept = boxes[keep]
        out.append(kept[np.argsort(kept["track_id"], kind="stable")])
    return np.concatenate(out) if out else empty_boxes(0)
