"""Benchmark: ByteTrack-style tracker on noisy ground truth of generated traffic, and evdet's tracking
metrics against py-motmetrics (MOTA, MOTP, IDF1) and TrackEval (HOTA, DetA, AssA) on the same tracks.

Ground truth: synthetic day scenes (evdet.data.synthetic, 30 Hz labels with track ids). Detections:
each GT box kept with probability 0.9, jittered by 5 % of its size, score U(0.3, 1); plus Poisson(0.5)
false positives per frame with score U(0.1, 0.6). Writes ``bench_tracking.json`` next to this file.

    python benchmarks/bench_tracking.py [--sequences 3] [--duration 10]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import platform
import time
from pathlib import Path

import numpy as np

from evdet.utils.provenance import provenance
from evdet.data.classes import ETRAM
from evdet.data.labels import empty_boxes
from evdet.data.synthetic import preset_config, simulate_sequence
from evdet.tracking import evaluate_tracking, track_sequence
from evdet.tracking.boxes import iou_xywh, xywh

HW = (360, 640)


def noisy_detections(gt: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    keep = gt[rng.random(gt.size) < 0.9].copy()
    for f, s in (("x", "w"), ("y", "h"), ("w", "w"), ("h", "h")):
        keep[f] = keep[f] + rng.normal(0, 0.05, keep.size) * keep[s]
    keep["w"], keep["h"] = np.maximum(keep["w"], 1), np.maximum(keep["h"], 1)
    keep["class_confidence"] = rng.uniform(0.3, 1.0, keep.size)
    keep["track_id"] = 0
    times = np.unique(gt["t"])
    n_fp = rng.poisson(0.5, times.size)
    fp = empty_boxes(int(n_fp.sum()))
    fp["t"] = np.repeat(times, n_fp)
    fp["x"], fp["y"] = rng.uniform(0, HW[1] - 60, fp.size), rng.uniform(0, HW[0] - 60, fp.size)
    fp["w"], fp["h"] = rng.uniform(10, 60, fp.size), rng.uniform(10, 60, fp.size)
    fp["class_id"] = rng.integers(0, len(ETRAM.names), fp.size)
    fp["class_confidence"] = rng.uniform(0.1, 0.6, fp.size)
    dets = np.concatenate([keep, fp])
    return dets[np.argsort(dets["t"], kind="stable")]


def frames(gt, tr, c):
    times = np.unique(gt["t"])
    gt, tr = gt[gt["class_id"] == c], tr[tr["class_id"] == c]
    for t in times:
        g, h = gt[gt["t"] == t], tr[tr["t"] == t]
        yield g["track_id"].astype(int), h["track_id"].astype(int), iou_xywh(xywh(g), xywh(h))


def oracles(gts, trs, classes):
    """motmetrics overall (MOTA, MOTP as IoU, IDF1) and TrackEval HOTA / DetA / AssA (det-averaged)."""
    import motmetrics as mm
    from trackeval.metrics import HOTA

    accs = []
    for gt, tr in zip(gts, trs):
        for c in classes:
            acc = mm.MOTAccumulator(auto_id=True)
            for g, h, iou in frames(gt, tr, c):
                d = 1 - iou
                acc.update(list(g), list(h), np.where(d > 0.5, np.nan, d))
            accs.append(acc)
    df = mm.metrics.create().compute_many(accs, metrics=["mota", "motp", "idf1", "num_detections"],
                                          generate_overall=True)
    parts = df.drop(index="OVERALL")
    parts = parts[parts["num_detections"] > 0]          # motmetrics' overall MOTP is NaN if any part is empty
    motp_dist = float((parts["motp"] * parts["num_detections"]).sum() / parts["num_detections"].sum())
    out = {"MOTA": float(df.loc["OVERALL", "mota"]), "MOTP": 1 - motp_dist, "IDF1": float(df.loc["OVERALL", "idf1"])}
    metric = HOTA()
    per_class = {}
    with contextlib.redirect_stdout(io.StringIO()):
        for c in classes:
            per_seq = {}
            for k, (gt, tr) in enumerate(zip(gts, trs)):
                fr = list(frames(gt, tr, c))
                gids = np.unique(np.concatenate([f[0] for f in fr])) if fr else np.zeros(0, int)
                tids = np.unique(np.concatenate([f[1] for f in fr])) if fr else np.zeros(0, int)
                per_seq[str(k)] = metric.eval_sequence({
                    "num_timesteps": len(fr), "num_gt_ids": gids.size, "num_tracker_ids": tids.size,
                    "num_gt_dets": sum(f[0].size for f in fr), "num_tracker_dets": sum(f[1].size for f in fr),
                    "gt_ids": [np.searchsorted(gids, f[0]) for f in fr],
                    "tracker_ids": [np.searchsorted(tids, f[1]) for f in fr],
                    "similarity_scores": [f[2] for f in fr]})
            per_class[c] = metric.combine_sequences(per_seq)
        res = metric.combine_classes_det_averaged(per_class)
    out.update({k: float(np.mean(res[k])) for k in ("HOTA", "DetA", "AssA")})
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sequences", type=int, default=3)
    parser.add_argument("--duration", type=float, default=10.0)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    gts = [simulate_sequence(preset_config("day"), args.duration, HW, np.random.default_rng(s)).boxes
           for s in range(args.sequences)]
    dets = [noisy_detections(g, rng) for g in gts]
    t0 = time.perf_counter()
    trs = [track_sequence(d) for d in dets]
    track_s = time.perf_counter() - t0
    n_frames = sum(np.unique(d["t"]).size for d in dets)
    t0 = time.perf_counter()
    res = evaluate_tracking(gts, trs, class_names=ETRAM.names)
    eval_s = time.perf_counter() - t0
    present = sorted({int(c) for g in gts for c in np.unique(g["class_id"])})
    t0 = time.perf_counter()
    ref = oracles(gts, trs, range(len(ETRAM.names)))
    oracle_s = time.perf_counter() - t0
    perfect = evaluate_tracking(gts, [track_sequence(g) for g in gts], class_names=ETRAM.names)["overall"]
    ours = res["overall"]
    diff = {k: abs(ours[k] - v) for k, v in ref.items()}
    out = {"machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cpus",
           "sequences": args.sequences, "duration_s": args.duration, "frames": n_frames,
           "gt_boxes": int(sum(g.size for g in gts)), "gt_tracks": int(sum(np.unique(g["track_id"]).size for g in gts)),
           "classes_present": [ETRAM.names[c] for c in present],
           "noisy": {k: ours[k] for k in ("HOTA", "DetA", "AssA", "MOTA", "MOTP", "IDF1", "IDSW")},
           "gt_as_detections": {k: perfect[k] for k in ("HOTA", "MOTA", "IDF1", "IDSW")},
           "oracle": ref, "max_abs_diff_vs_oracles": max(diff.values()), "diff": diff,
           "tracker_frames_per_s": n_frames / track_s, "evdet_metrics_s": eval_s, "oracles_s": oracle_s}
    print(f"{out['frames']} frames, {out['gt_boxes']} GT boxes, {out['gt_tracks']} tracks")
    print("noisy detections : " + "  ".join(f"{k} {v:.3f}" for k, v in out["noisy"].items()))
    print("GT as detections : " + "  ".join(f"{k} {v:.3f}" for k, v in out["gt_as_detections"].items()))
    print("oracles          : " + "  ".join(f"{k} {v:.6f}" for k, v in ref.items()))
    print(f"max |evdet - oracle| = {out['max_abs_diff_vs_oracles']:.2e}")
    print(f"tracker {out['tracker_frames_per_s']:.0f} frames/s; metrics {eval_s:.2f} s (evdet) vs {oracle_s:.2f} s "
          f"(motmetrics + TrackEval)")
    out["provenance"] = provenance()   # commit, machine, date (docs quote this file)
    (Path(__file__).with_suffix(".json")).write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
