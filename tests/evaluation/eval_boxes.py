"""Tiny box builders for the evaluation tests."""

import numpy as np

from evdet.data.labels import BBOX_DTYPE


def boxes(*rows) -> np.ndarray:
    """rows of (t_us, x, y, w, h, class_id[, score]) -> BBOX array sorted by t (stable)."""
    out = np.zeros(len(rows), dtype=BBOX_DTYPE)
    for i, r in enumerate(rows):
        t, x, y, w, h, c = r[:6]
        out[i] = (t, x, y, w, h, c, 0, r[6] if len(r) > 6 else 1.0)
    return out[np.argsort(out["t"], kind="stable")]


def random_scene(rng, n_seq=3, n_frames=15, n_classes=3, height=360, width=640, period_us=50_000):
    """Random GT per sequence and noisy detections (some matching, some false, some missing)."""
    gts, dts = [], []
    for _ in range(n_seq):
        g_rows, d_rows = [], []
        for f in range(1, n_frames + 1):
            t = f * period_us * 4
            for _ in range(rng.integers(0, 6)):
                w, h = rng.uniform(4, 160), rng.uniform(4, 120)
                x, y = rng.uniform(0, width - w), rng.uniform(0, height - h)
                c = int(rng.integers(0, n_classes))
                g_rows.append((t, x, y, w, h, c))
                if rng.uniform() < 0.7:
                    dc = c if rng.uniform() < 0.8 else int(rng.integers(0, n_classes))
                    j = rng.normal(0, 0.15, 4) * [w, h, w, h]
                    dt_t = t + int(rng.integers(-60_000, 60_000))
                    d_rows.append((dt_t, x + j[0], y + j[1], max(w + j[2], 1), max(h + j[3], 1), dc,
                                   float(rng.uniform(0.05, 1))))
            for _ in range(rng.integers(0, 4)):
                w, h = rng.uniform(4, 100), rng.uniform(4, 100)
                d_rows.append((t + int(rng.integers(-40_000, 40_000)), rng.uniform(0, width - w),
                               rng.uniform(0, height - h), w, h, int(rng.integers(0, n_classes)),
                               float(rng.uniform(0.05, 1))))
        gts.append(boxes(*g_rows))
        dts.append(boxes(*d_rows))
    return gts, dts
