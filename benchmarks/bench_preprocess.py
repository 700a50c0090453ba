"""Benchmark: preprocessing throughput of one 1280x720 recording, evdet vs the reference algorithm.

A recording of ``--duration-s`` seconds at ``--rate-mev`` M events/s (70 % from moving blobs,
30 % uniform noise) with 30 Hz labels is written to a temp folder, then converted to the
``stacked_histogram_dt=50_nbins=10`` layout:

* evdet: ``preprocess_dataset`` (ds2_nearest, the default for 1280x720, and ds2_sum), one worker.
* reference: the reference RVT algorithm re-implemented here for timing (load every timestamp,
  ``searchsorted`` the windows, read each window's slice from the HDF5 file, torch ``put_``
  histogram, ``interpolate(nearest-exact)`` to 360x640, one resizable HDF5 write per window),
  on the same window end times, one torch thread. Its output is compared with evdet's
  ds2_nearest output (they must be identical).

Prints a table (wall seconds, M events/s, recording seconds per second, speed-up vs the
reference) and writes ``bench_preprocess.json`` next to this file.

    python benchmarks/bench_preprocess.py [--duration-s 10] [--rate-mev 5]
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

from evdet.data.labels import BBOX_DTYPE, save_labels
from evdet.data.preprocess.dataset import preprocess_dataset
from evdet.data.preprocessed import PreprocessedSequence
from evdet.events import EVENT_DTYPE, write_events_h5

HEIGHT, WIDTH = 720, 1280
REPR = "stacked_histogram_dt=50_nbins=10"


def make_recording(duration_s: float, rate_mev: float, seed: int = 0) -> np.ndarray:
    """Events with 70 % in 12 moving Gaussian blobs (objects) and 30 % uniform noise, sorted by t."""
    rng = np.random.default_rng(seed)
    n = int(duration_s * rate_mev * 1e6)
    t = np.sort(rng.integers(0, int(duration_s * 1e6), n))
    blob = rng.integers(0, 12, n)
    start = rng.uniform([0, 0], [WIDTH, HEIGHT], size=(12, 2))
    speed = rng.uniform(-150, 150, size=(12, 2))                       # px / s
    centre = start[blob] + speed[blob] * (t[:, None] / 1e6)
    xy = centre + rng.normal(0, 12, size=(n, 2))
    noise = rng.uniform(size=n) < 0.3
    xy[noise] = rng.uniform([0, 0], [WIDTH, HEIGHT], size=(int(noise.sum()), 2))
    ev = np.zeros(n, EVENT_DTYPE)
    ev["t"] = t
    ev["x"] = np.mod(xy[:, 0], WIDTH).astype(np.uint16)
    ev["y"] = np.mod(xy[:, 1], HEIGHT).astype(np.uint16)
    ev["p"] = rng.integers(0, 2, n)
    return ev


def make_labels(duration_s: float) -> np.ndarray:
    t = (np.arange(int(duration_s * 30)) * 1e6 / 30).astype(np.int64)
    boxes = np.zeros(t.size, BBOX_DTYPE)
    boxes["t"], boxes["x"], boxes["y"], boxes["w"], boxes["h"] = t, 100, 100, 60, 40
    return boxes


def write_raw(root: Path, events: np.ndarray, duration_s: float) -> None:
    """A one-sequence raw dataset: train/rec_td.h5 + train/rec_bbox.npy."""
    (root / "train").mkdir(parents=True)
    write_events_h5(root / "train" / "rec_td.h5", events, HEIGHT, WIDTH)
    save_labels(root / "train" / "rec_bbox.npy", make_labels(duration_s))


def reference_preprocess(events_h5: Path, out_h5: Path, repr_t_us: np.ndarray) -> None:
    """The reference algorithm (scripts/genx/preprocess_dataset.py + StackedHistogram, fastmode)."""
    import hdf5plugin
    import h5py
    import torch

    bins, cutoff = 10, 10
    shape = (2 * bins, HEIGHT // 2, WIDTH // 2)
    with h5py.File(events_h5, "r") as src, h5py.File(out_h5, "w") as dst:
        ev = src["events"]
        t_all = np.asarray(ev["t"])                                    # the reference loads all t
        end = np.searchsorted(t_all, repr_t_us, side="right")
        start = np.searchsorted(t_all, repr_t_us - 50_000, side="left")
        ds = dst.create_dataset("data", dtype="uint8", shape=(1, *shape), chunks=(1, *shape),
                                maxshape=(None, *shape),
                                **hdf5plugin.Blosc(cname="zstd", clevel=1, shuffle=hdf5plugin.Blosc.SHUFFLE))
        for i, (a, b) in enumerate(zip(start, end)):
            x = torch.from_numpy(np.asarray(ev["x"][a:b], dtype="int64"))
            y = torch.from_numpy(np.asarray(ev["y"][a:b], dtype="int64"))
            p = torch.from_numpy(np.asarray(ev["p"][a:b], dtype="int64"))
            t = torch.from_numpy(np.asarray(t_all[a:b], dtype="int64"))
            rep = torch.zeros((2, bins, HEIGHT, WIDTH), dtype=torch.uint8)
            if x.numel():
                t_idx = ((t - t[0]) / max(int(t[-1] - t[0]), 1) * bins).floor().clamp(max=bins - 1)
                idx = x + WIDTH * y + HEIGHT * WIDTH * t_idx.long() + bins * HEIGHT * WIDTH * p
                rep.put_(idx, torch.ones_like(idx, dtype=torch.uint8), accumulate=True)
                rep = rep.clamp(0, cutoff)
            rep = rep.reshape(1, 2 * bins, HEIGHT, WIDTH)
            rep = torch.nn.functional.interpolate(rep, scale_factor=0.5, mode="nearest-exact")
            ds.resize(i + 1, axis=0)
            ds[i:i + 1] = rep.numpy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration-s", type=float, default=10.0)
    parser.add_argument("--rate-mev", type=float, default=5.0, help="M events per second")
    parser.add_argument("--skip-reference", action="store_true")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory(prefix="bench_preprocess_") as tmp:
        tmp = Path(tmp)
        # Warm-up on a short recording: imports, numba cache loading and torch start-up are not timed.
        write_raw(tmp / "warm", make_recording(0.3, 1.0), 0.3)
        for mode in ("nearest", "sum"):
            preprocess_dataset(tmp / "warm", tmp / f"warm_{mode}", downsample=mode, workers=1, progress=False)
        if not args.skip_reference:
            warm_seq = PreprocessedSequence(tmp / "warm_nearest" / "train" / "rec", REPR)
            reference_preprocess(tmp / "warm" / "train" / "rec_td.h5", tmp / "warm_ref.h5",
                                 warm_seq.repr_timestamps_us)

        t0 = time.perf_counter()
        ev = make_recording(args.duration_s, args.rate_mev)
        write_raw(tmp / "raw", ev, args.duration_s)
        n_events = int(ev.size)
        del ev
        print(f"generated {n_events / 1e6:.1f} M events ({args.duration_s:g} s at {args.rate_mev:g} M ev/s) "
              f"in {time.perf_counter() - t0:.1f} s")

        rows = {}
        for mode in ("nearest", "sum"):
            t0 = time.perf_counter()
            summary = preprocess_dataset(tmp / "raw", tmp / f"pre_{mode}", downsample=mode, workers=1,
                                         progress=False)
            rows[f"evdet ds2_{mode}"] = {"seconds": time.perf_counter() - t0,
                                         "recording_s": summary["reprs"] * 0.05,
                                         "events": summary["events"]}
        seq = PreprocessedSequence(tmp / "pre_nearest" / "train" / "rec", REPR)
        if not args.skip_reference:
            t0 = time.perf_counter()
            reference_preprocess(tmp / "raw" / "train" / "rec_td.h5", tmp / "ref.h5", seq.repr_timestamps_us)
            rows["reference ds2_nearest (torch)"] = {"seconds": time.perf_counter() - t0,
                                                     "recording_s": rows["evdet ds2_nearest"]["recording_s"],
                                                     "events": rows["evdet ds2_nearest"]["events"]}
            import hdf5plugin  # noqa: F401
            import h5py

            with h5py.File(tmp / "ref.h5", "r") as fh:
                identical = all(np.array_equal(fh["data"][i], seq.reprs(i, i + 1)[0])
                                for i in range(seq.num_reprs))
        else:
            identical = None

    ref = rows.get("reference ds2_nearest (torch)")
    print(f"\n{'pipeline':34s} {'wall s':>8s} {'M ev/s':>8s} {'rec s/s':>8s} {'vs ref':>7s}")
    for name, r in rows.items():
        r["mev_per_s"] = r["events"] / r["seconds"] / 1e6
        r["recording_s_per_s"] = r["recording_s"] / r["seconds"]
        r["speedup_vs_reference"] = ref["seconds"] / r["seconds"] if ref else None
        ratio = f"{r['speedup_vs_reference']:.2f}x" if ref else "-"
        print(f"{name:34s} {r['seconds']:8.2f} {r['mev_per_s']:8.2f} {r['recording_s_per_s']:8.2f} {ratio:>7s}")
    if identical is not None:
        print(f"reference and evdet ds2_nearest outputs identical: {identical}")
    out = {
        "benchmark": "preprocess",
        "params": {"duration_s": args.duration_s, "rate_mev": args.rate_mev, "resolution": [HEIGHT, WIDTH],
                   "representation": REPR, "workers": 1, "torch_threads": 1},
        "events": n_events,
        "results": rows,
        "reference_identical": identical,
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                    "python": platform.python_version()},
    }
    path = Path(__file__).with_suffix(".json")
    path.write_text(json.dumps(out, indent=1))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
