"""Benchmark: training batches per second of evdet's loaders at RVT's recipes, per worker process.

Recipes (RVT ``config/experiment/*``; augmentation as RVT's ``config/dataset/base.yaml``: flip 0.5,
random samples zoom in 0.64 / out 0.16, streams zoom out 0.5):

    gen1   batch 8,  sequence 21, 240x304 (20 channels)
    1mpx   batch 12, sequence 5,  360x640 (ds2 of 1280x720, padded to 384x640 by the model)

A synthetic preprocessed dataset in the RVT layout (Blosc zstd histograms, about 5 % of the cells
non-zero, a label frame every second representation) is written to a temp folder, then the
``EventDataModule`` train loader (``stream`` and ``random`` sampling) is iterated with 0..N worker
processes. Reported per setting: batches/s (after the first batch, which includes worker start-up, and a warm-up one),
batches/s per worker, and the proportional set size (PSS, shared pages split) of each worker.

Goal: with 8 workers, 4x RVT's reported step rate (about 2.1 it/s on one A800, Gen1 recipe), i.e.
8.4 batches/s. On this 2-core machine only 2 workers run at once; the per-worker rate measured with
one worker times 8 is the estimate for an 8-core loader (the scaling column shows what 2 cores give).

RVT's streaming loader needs batch x workers <= sequences (each worker streams whole batches of
its own sequences; RVT issue #8). evdet's ``StreamDataset`` gives each worker a group of the
batch's slots and rebuilds the batch in slot order, so it needs only batch <= sequences: the
datasets here hold exactly ``batch`` sequences (fewer than RVT needs with 2+ workers). The cost:
stream loading runs ``gcd(batch, workers)`` processes when that is > 1, else none (batch 12 with 8
workers: 4 processes); ``worker_processes`` says how many ran, and rates per worker divide by it.

    python benchmarks/bench_loader.py [--recipes gen1 1mpx] [--workers 0 1 2] [--batches 6]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

HERE = Path(__file__).resolve().parent
REPR = "stacked_histogram_dt=50_nbins=10"
RVT_IT_PER_S = 2.1            # RVT's reported training rate, Gen1 recipe, one A800
GOAL_WORKERS, GOAL_FACTOR = 8, 4


@dataclass(frozen=True)
class Recipe:
    batch: int
    seq_len: int
    height: int
    width: int


RECIPES = {"gen1": Recipe(8, 21, 240, 304), "1mpx": Recipe(12, 5, 360, 640)}


def write_dataset(root: Path, sequences: int, reprs: int, height: int, width: int, *, channels: int = 20,
                  density: float = 0.05, seed: int = 0) -> Path:
    """A preprocessed dataset ``root/train/seq_i`` (RVT layout) with sparse random histograms."""
    import h5py
    import hdf5plugin

    from evdet.data.labels import BBOX_DTYPE

    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    (root / "dataset.yaml").write_text(yaml.safe_dump({"classes": {"names": ["car", "pedestrian"], "groups": {}}}))
    compression = hdf5plugin.Blosc(cname="zstd", clevel=1, shuffle=hdf5plugin.Blosc.SHUFFLE)
    for i in range(sequences):
        seq = root / "train" / f"seq_{i}"
        rdir, ldir = seq / "event_representations_v2" / REPR, seq / "labels_v2"
        rdir.mkdir(parents=True)
        ldir.mkdir(parents=True)
        repr_t = (np.arange(reprs, dtype=np.int64) + 1) * 50_000
        with h5py.File(rdir / "event_representations.h5", "w") as fh:
            ds = fh.create_dataset("data", shape=(reprs, channels, height, width), dtype=np.uint8,
                                   chunks=(1, channels, height, width), **compression)
            for r in range(reprs):
                cells = rng.random((channels, height, width)) < density
                ds[r] = cells * rng.integers(1, 11, (channels, height, width), dtype=np.uint8)
        frames = np.arange(1, reprs, 2, dtype=np.int64)
        boxes = np.zeros(frames.size * 3, BBOX_DTYPE)
        boxes["t"] = np.repeat(repr_t[frames], 3)
        boxes["x"] = rng.uniform(0, width - 60, boxes.size)
        boxes["y"] = rng.uniform(0, height - 40, boxes.size)
        boxes["w"], boxes["h"] = rng.uniform(8, 60, boxes.size), rng.uniform(8, 40, boxes.size)
        boxes["class_id"] = rng.integers(0, 2, boxes.size)
        boxes["track_id"] = np.arange(boxes.size)
        boxes["class_confidence"] = 1.0
        np.save(rdir / "objframe_idx_2_repr_idx.npy", frames)
        np.save(rdir / "timestamps_us.npy", repr_t)
        np.savez(ldir / "labels.npz", labels=boxes, objframe_idx_2_label_idx=np.arange(0, boxes.size, 3))
        np.save(ldir / "timestamps_us.npy", repr_t[frames])
    return root


def train_loader(root: Path, recipe: Recipe, sampling: str, workers: int):
    from evdet.data.config import AugmentConfig, DataConfig
    from evdet.data.datamodule import EventDataModule

    augment = AugmentConfig(zoom_in_prob=0.64, zoom_out_prob=0.16, stream_zoom_out_prob=0.5)
    cfg = DataConfig(root=str(root), representation=REPR, sampling=sampling, seq_len=recipe.seq_len,
                     batch_size=recipe.batch, num_workers=workers, augment=augment)
    return EventDataModule(cfg, seed=0).train_dataloader()


def pss_mb(pid: int) -> float | None:
    """Proportional set size of a process (MiB), from /proc/<pid>/smaps_rollup."""
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def child_pids() -> list[int]:
    me = os.getpid()
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == me:
            out.append(int(stat.parent.name))
    return out


def measure(root: Path, recipe: Recipe, sampling: str, workers: int, batches: int, warmup: int = 0) -> dict:
    """Batches/s after the first batch and ``warmup`` more (steady state: workers started, files open),
    and the workers' memory while they run."""
    loader = train_loader(root, recipe, sampling, workers)
    it = iter(loader)
    t0 = time.perf_counter()
    first = next(it)
    first_s = time.perf_counter() - t0
    assert first["frames"].shape[:2] == (recipe.batch, recipe.seq_len)
    for _ in range(warmup):
        next(it)
    pss: dict[int, float] = {}
    t0 = time.perf_counter()
    n = 0
    for _ in range(batches):
        for pid in child_pids():              # sampled while the workers run (peak per worker)
            pss[pid] = max(pss.get(pid, 0.0), pss_mb(pid) or 0.0)
        try:
            next(it)
        except StopIteration:
            break
        n += 1
    seconds = time.perf_counter() - t0
    del it
    rate = n / seconds if n else 0.0
    # Stream loading uses gcd(batch, workers) processes when that is > 1, else none (evdet's StreamLoader).
    processes = len(pss)
    return {"sampling": sampling, "workers": workers, "worker_processes": processes, "batches": n,
            "first_batch_s": first_s, "batches_per_s": rate, "batches_per_s_per_worker": rate / max(processes, 1),
            "worker_pss_MiB": float(np.mean(list(pss.values()))) if pss else None,
            "main_pss_MiB": pss_mb(os.getpid()),
            "batch_MiB": first["frames"].element_size() * first["frames"].nelement() / 2**20}


def summarize(rows: list[dict]) -> dict:
    """Per recipe and sampling: the 8-worker estimate from the one-worker rate, against the goal."""
    goal = GOAL_FACTOR * RVT_IT_PER_S
    out = {}
    for r in rows:
        if r["worker_processes"] == 1 or (r["workers"] == 1 and r["worker_processes"] == 0):
            est = r["batches_per_s"] * GOAL_WORKERS
            out[f"{r['recipe']} {r['sampling']}"] = {"per_worker_batches_per_s": r["batches_per_s"],
                                                     "estimate_8_workers_batches_per_s": est,
                                                     "goal_batches_per_s": goal, "meets_goal": est >= goal}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipes", nargs="+", choices=sorted(RECIPES), default=["gen1", "1mpx"])
    parser.add_argument("--samplings", nargs="+", choices=["stream", "random"], default=["stream", "random"])
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--batches", type=int, default=8, help="timed batches per setting (after the warm-up)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed batches after the first")
    parser.add_argument("--reprs", type=int, default=200, help="representations per sequence (10 s at 50 ms)")
    parser.add_argument("--out", type=Path, default=HERE / "bench_loader.json")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(1)
    from evdet.utils.provenance import provenance

    rows = []
    with tempfile.TemporaryDirectory(prefix="bench_loader_") as tmp:
        for name in args.recipes:
            recipe = RECIPES[name]
            root = write_dataset(Path(tmp) / name, recipe.batch, args.reprs, recipe.height, recipe.width)
            for sampling in args.samplings:
                for workers in args.workers:
                    row = {"recipe": name, **measure(root, recipe, sampling, workers, args.batches, args.warmup)}
                    rows.append(row)
                    print(f"{name:5s} {sampling:6s} workers {workers} ({row['worker_processes']} processes): "
                          f"{row['batches_per_s']:.2f} batches/s "
                          f"({row['batches_per_s_per_worker']:.2f} per worker), first {row['first_batch_s']:.1f} s, "
                          f"worker PSS {row['worker_pss_MiB'] or 0:.0f} MiB, batch {row['batch_MiB']:.0f} MiB",
                          flush=True)
    record = {"benchmark": "loader", "recipes": {k: vars(v) for k, v in RECIPES.items() if k in args.recipes},
              "sequences_per_recipe": "batch (stream slots)", "reprs_per_sequence": args.reprs,
              "warmup_batches": 1 + args.warmup, "rvt_it_per_s": RVT_IT_PER_S, "rows": rows, "summary": summarize(rows),
              "provenance": provenance()}
    args.out.write_text(json.dumps(record, indent=1))
    print(json.dumps(record["summary"], indent=1))


if __name__ == "__main__":
    main()
