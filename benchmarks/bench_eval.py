"""Benchmark: evdet.evaluation.evaluate with faster-coco-eval vs the same call on pycocotools.

2,000 evaluation images x (30 GT, 100 detections), prophesee protocol at 640x360, 8 classes.
Both backends run in this process on the same data; the table gives seconds and the ratio, and
checks that the COCO statistics are identical. Writes ``bench_eval.json`` next to this file.

    python benchmarks/bench_eval.py [--images 2000] [--repeats 1]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

from evdet.utils.provenance import provenance
from evdet.data.labels import BBOX_DTYPE
from evdet.evaluation import evaluate
from evdet.evaluation.coco import coco_precision
from evdet.evaluation.matching import build_frames

HEIGHT, WIDTH, CLASSES = 360, 640, 8
FRAMES_PER_SEQ = 100
FRAME_US = 100_000       # 10 Hz labels: no detection falls within 50 ms of two frames


def make_data(n_images: int, n_gt: int, n_dt: int, seed: int = 0):
    """Sequences of frames with n_gt GT boxes and n_dt detections each (about 1/4 near a GT box)."""
    rng = np.random.default_rng(seed)
    gts, dts = [], []
    for s in range(0, n_images, FRAMES_PER_SEQ):
        n_frames = min(FRAMES_PER_SEQ, n_images - s)
        t = 1_000_000 + np.arange(n_frames, dtype=np.int64) * FRAME_US
        gt = np.zeros(n_frames * n_gt, dtype=BBOX_DTYPE)
        gt["t"] = np.repeat(t, n_gt)
        gt["w"], gt["h"] = rng.uniform(12, 150, len(gt)), rng.uniform(12, 120, len(gt))
        gt["x"], gt["y"] = rng.uniform(0, WIDTH - gt["w"]), rng.uniform(0, HEIGHT - gt["h"])
        gt["class_id"] = rng.integers(0, CLASSES, len(gt))
        gt["class_confidence"] = 1
        dt = np.zeros(n_frames * n_dt, dtype=BBOX_DTYPE)
        dt["t"] = np.repeat(t, n_dt)
        dt["w"], dt["h"] = rng.uniform(12, 150, len(dt)), rng.uniform(12, 120, len(dt))
        dt["x"], dt["y"] = rng.uniform(0, WIDTH - dt["w"]), rng.uniform(0, HEIGHT - dt["h"])
        dt["class_id"] = rng.integers(0, CLASSES, len(dt))
        near = np.flatnonzero(rng.uniform(size=len(dt)) < 0.25)
        src = (np.arange(len(dt)) // n_dt * n_gt + rng.integers(0, n_gt, len(dt)))[near]
        for f, size in (("x", "w"), ("y", "h"), ("w", "w"), ("h", "h")):
            dt[f][near] = gt[f][src] + gt[size][src] * rng.normal(0, 0.08, len(near))
        keep_cls = rng.uniform(size=len(near)) < 0.85
        dt["class_id"][near[keep_cls]] = gt["class_id"][src[keep_cls]]
        dt["class_confidence"] = rng.uniform(0.05, 0.6, len(dt))
        dt["class_confidence"][near] = rng.uniform(0.3, 1.0, len(near))
        gts.append(gt)
        dts.append(dt)
    return gts, dts


def timed(fn, repeats: int):
    """(best wall seconds, best CPU seconds of this process, last output)."""
    best, best_cpu, out = float("inf"), float("inf"), None
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        out = fn()
        best, best_cpu = min(best, time.perf_counter() - t0), min(best_cpu, time.process_time() - c0)
    return best, best_cpu, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=2000)
    ap.add_argument("--gt", type=int, default=30)
    ap.add_argument("--dt", type=int, default=100)
    ap.add_argument("--repeats", type=int, default=1)
    args = ap.parse_args()
    gts, dts = make_data(args.images, args.gt, args.dt)
    kw = dict(height=HEIGHT, width=WIDTH, class_names=[f"c{i}" for i in range(CLASSES)], protocol="prophesee")
    evaluate(gts[:1], dts[:1], **kw)          # warm-up: numba kernel compile / cache load

    frames = build_frames(gts, dts, 50_000)
    ranges = {"all": (0.0, 1e10), "S": (0.0, 1024.0), "M": (1024.0, 9216.0), "L": (9216.0, 1e10)}
    rows = {}
    for backend in ("faster", "pycocotools"):
        rows[f"COCO step only ({backend})"] = timed(
            lambda: coco_precision(frames, CLASSES, HEIGHT, WIDTH, ranges, backend=backend), args.repeats)
        rows[f"evaluate() ({backend})"] = timed(lambda: evaluate(gts, dts, backend=backend, **kw), args.repeats)
    res_fast = rows["evaluate() (faster)"][2]
    res_ref = rows["evaluate() (pycocotools)"][2]
    identical = res_fast.metrics == res_ref.metrics and res_fast.per_class == res_ref.per_class
    save_s, _, _ = timed(lambda: __import__("evdet.evaluation", fromlist=["save_evaluation"]).save_evaluation(
        res_fast, tempfile.mkdtemp()), 1)

    print(f"images {frames.num_images}, GT {len(frames.gt)}, detections {len(frames.dt)}  (best of {args.repeats})")
    print("wall = elapsed seconds; cpu = CPU seconds of this process (less sensitive to other load)")
    print(f"{'step':16s} {'faster wall':>12s} {'pycoco wall':>12s} {'ratio':>6s} "
          f"{'faster cpu':>11s} {'pycoco cpu':>11s} {'ratio':>6s}")
    table = {}
    for step in ("COCO step only", "evaluate()"):
        fw, fc, _ = rows[f"{step} (faster)"]
        pw, pc, _ = rows[f"{step} (pycocotools)"]
        table[step] = {"faster_coco_eval_wall_s": round(fw, 3), "pycocotools_wall_s": round(pw, 3),
                       "faster_coco_eval_cpu_s": round(fc, 3), "pycocotools_cpu_s": round(pc, 3),
                       "speedup_wall": round(pw / fw, 2), "speedup_cpu": round(pc / fc, 2)}
        print(f"{step:16s} {fw:12.2f} {pw:12.2f} {pw / fw:5.1f}x {fc:11.2f} {pc:11.2f} {pc / fc:5.1f}x")
    print(f"save_evaluation (JSON, CSV, 3 PNG): {save_s:.2f} s")
    print(f"identical metrics and per-class results: {identical}  (AP {res_fast.metrics['AP']:.4f})")
    out = {
        "benchmark": "evaluate, prophesee protocol, 640x360, 8 classes",
        "images": int(frames.num_images), "gt": int(len(frames.gt)), "detections": int(len(frames.dt)),
        "repeats": args.repeats, "results": table, "save_evaluation_s": round(save_s, 3),
        "identical": bool(identical), "AP": res_fast.metrics["AP"],
        "machine": {"cpu_count": os.cpu_count(), "python": platform.python_version(),
                    "load_average_1min": os.getloadavg()[0]},
    }
    path = Path(__file__).with_name("bench_eval.json")
    tmp = path.with_suffix(".json.tmp")
    out["provenance"] = provenance()   # commit, machine, date (docs quote this file)
    tmp.write_text(json.dumps(out, indent=2))
    os.replace(tmp, path)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
