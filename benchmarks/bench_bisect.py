"""Designed experiments at scale: runs a config bisection needs, and a sweep on 1 vs 2 worker processes.

1. ``evdet exp bisect`` with an oracle objective (no training: a fake trainer fills each record with
   train/loss = 6 when the culprit key is applied, else 1), for K = 5 and K = 20 changed keys and the
   culprit at every position. Counted: probes of the search (configurations other than GOOD and BAD),
   and all trainings of a fresh bisection (GOOD, BAD, probes, and the BAD-minus-culprit confirmation).
   Beside it, the one-key-at-a-time alternative (K runs + GOOD + BAD).
2. ``evdet exp sweep`` with real tiny training (nano, 128x72 generated data, 4 steps, metric train/loss,
   4 trials, SQLite): wall time of 1 worker process (2 torch threads) against 2 worker processes started
   with the same command (1 thread each), sharing the 4 trials; best of 2 alternating runs each.

Writes ``bench_bisect.json`` next to this file.

    python benchmarks/bench_bisect.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests" / "experiments"))

from design_fixtures import OracleExecutor, make_record  # noqa: E402

from evdet.experiments.designs.bisect import bisect_experiments  # noqa: E402

NOISE_KEYS = ["data.augment.flip_prob", "data.augment.noise_density", "data.augment.zoom_in_max",
              "data.augment.zoom_out_max", "eval.confusion_iou", "eval.pr_confidence", "loss.focal.alpha",
              "loss.iou_weight", "loss.obj_weight", "loss.cls_weight", "loss.size_aware.tau_px2",
              "model.head.conf_threshold", "model.head.nms_iou", "model.head.max_detections",
              "training.grad_clip_value", "training.warmup_frac", "training.weight_decay",
              "training.loss_cv_window", "training.divergence_factor", "data.augment.noise_prob"]
NEW_VALUES = {"data.augment.flip_prob": 0.4, "data.augment.noise_density": 0.002, "data.augment.zoom_in_max": 1.6,
              "data.augment.zoom_out_max": 1.6, "eval.confusion_iou": 0.6, "eval.pr_confidence": 0.4,
              "loss.focal.alpha": 0.3, "loss.iou_weight": 50.0, "loss.obj_weight": 1.1, "loss.cls_weight": 1.1,
              "loss.size_aware.tau_px2": 900.0, "model.head.conf_threshold": 0.02, "model.head.nms_iou": 0.5,
              "model.head.max_detections": 200, "training.grad_clip_value": 2.0, "training.warmup_frac": 0.01,
              "training.weight_decay": 0.01, "training.loss_cv_window": 40, "training.divergence_factor": 30.0,
              "data.augment.noise_prob": 0.1}


def bisect_counts(n_keys: int, workdir: Path) -> dict:
    """Runs of a fresh bisection with one culprit at each of the ``n_keys`` positions."""
    keys = sorted(NOISE_KEYS[:n_keys])
    probes, totals, top = [], [], None
    for pos, culprit in enumerate(keys):
        root = workdir / f"k{n_keys}_{pos}" / "experiments"
        make_record(root, "good")
        make_record(root, "bad", [f"{k}={NEW_VALUES[k]}" for k in keys])
        ex = OracleExecutor(root, lambda flat, c=culprit: 6.0 if flat[c] == NEW_VALUES[c] else 1.0)
        res = bisect_experiments(root, "good", "bad", "train/loss", "min", executor=ex, echo=lambda m: None)
        assert res.culprit == [culprit], (res.culprit, culprit)
        probes.append(sum(p.role == "probe" for p in res.probes))
        totals.append(len(ex.trained))
        if res.keys[0] == culprit:     # the culprit is the top suspect of exp diff's ranking
            top = probes[-1]
    return {"changed_keys": n_keys, "probes_min": min(probes), "probes_mean": round(statistics.mean(probes), 2),
            "probes_max": max(probes), "trainings_min": min(totals),
            "trainings_mean": round(statistics.mean(totals), 2), "trainings_max": max(totals),
            "probes_when_top_suspect": top, "one_key_at_a_time_trainings": n_keys + 2}


def sweep_wall_time(workers: int, trials: int, workdir: Path, pre: Path) -> float:
    """Seconds from starting ``workers`` identical ``evdet exp sweep`` processes until all have exited."""
    workdir.mkdir(parents=True, exist_ok=True)
    root = workdir / f"w{workers}" / "experiments"
    make_record(root, "base", ["training.max_steps=4", "training.log_every_n_steps=1",
                               "training.val_every_n_steps=100"], data_root=str(pre))
    space = workdir / "space.yaml"
    space.write_text("params:\n  training.lr: {low: 1.0e-3, high: 4.0e-3, log: true}\npruner: none\n")
    cmd = [str(Path(sys.executable).with_name("evdet")), "exp", "sweep", f"bench{workers}", "--base", "base",
           "--space", str(space), "--trials", str(trials), "--metric", "train/loss",
           "--storage", f"sqlite:///{workdir / f'w{workers}.db'}", "--root", str(root)]
    env = {**os.environ, "OMP_NUM_THREADS": str(max(1, 2 // workers)), "OMP_WAIT_POLICY": "PASSIVE"}
    t0 = time.perf_counter()
    procs = [subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
             for _ in range(workers)]
    for p in procs:
        _, err = p.communicate()
        if p.returncode != 0:
            raise RuntimeError(err[-2000:])
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="bisect counts only (keeps the last sweep timing)")
    args = ap.parse_args()
    out: dict = {"machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores (shared)",
                 "date": time.strftime("%Y-%m-%d"), "bisect": [], "sweep": None}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        print(f"{'keys':>5} {'probes min/mean/max':>20} {'trainings min/mean/max':>24} {'one-at-a-time':>14} "
              f"{'probes, culprit = top suspect':>30}")
        for k in (5, 20):
            row = bisect_counts(k, tmp)
            out["bisect"].append(row)
            print(f"{k:>5} {row['probes_min']:>6}/{row['probes_mean']:>5}/{row['probes_max']:<6}"
                  f"{row['trainings_min']:>10}/{row['trainings_mean']:>5}/{row['trainings_max']:<6}"
                  f"{row['one_key_at_a_time_trainings']:>12}{row['probes_when_top_suspect']:>20}")
        if not args.quick:
            from evdet.data.preprocess.dataset import preprocess_dataset
            from evdet.data.synthetic import generate_dataset

            generate_dataset(tmp / "raw", sequences=3, duration_s=1.6, resolution=(72, 128), seed=0, progress=False)
            preprocess_dataset(tmp / "raw", tmp / "pre", downsample="none", workers=1, progress=False)
            trials, times, loads = 4, {1: [], 2: []}, []
            for rep in range(2):          # alternate 1 and 2 workers; keep the best of each (shared cores)
                for workers in (1, 2):
                    loads.append(os.getloadavg()[0])
                    times[workers].append(sweep_wall_time(workers, trials, tmp / f"r{rep}", tmp / "pre"))
            one, two = min(times[1]), min(times[2])
            load_one, load_two = min(loads), max(loads)
            # other work shares the cores: the 1-minute load averages before the measurements say how much
            out["sweep"] = {"trials": trials, "trial": "nano, 128x72, 4 steps, no validation",
                            "one_worker_s": round(one, 1), "two_workers_s": round(two, 1),
                            "speedup": round(one / two, 2), "runs_s": {str(k): [round(t, 1) for t in v]
                                                                       for k, v in times.items()},
                            "load_avg_range": [round(load_one, 1), round(load_two, 1)]}
            print(f"sweep of {trials} tiny trials: 1 worker {one:.1f} s, 2 workers {two:.1f} s "
                  f"({one / two:.2f}x, best of 2; load average {load_one:.1f}-{load_two:.1f})")
    if args.quick and (HERE / "bench_bisect.json").exists():
        out["sweep"] = json.loads((HERE / "bench_bisect.json").read_text()).get("sweep")
    (HERE / "bench_bisect.json").write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
