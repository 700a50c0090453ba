"""Benchmark: stacked histogram of one window, evdet's numba kernel vs the reference torch code.

``--events`` random events (default 5 M) at 1280x720 over a 50 ms window, nbins 10, cutoff 10:

* evdet: ``evdet.events.stacked_histogram`` (numba, single thread; compiled once before timing).
* reference: the RVT algorithm, torch ``put_(index, ones, accumulate=True)`` on int64 indices,
  float32 time normalisation, then clamp (written out below, same run). Its int64 input tensors
  are prepared outside the timing; evdet's time includes reading the structured array.
* np.bincount: the same index arithmetic in NumPy, ``np.bincount``, clip.

All three outputs are checked to be identical. Prints a table (ms, M events/s, speed-up vs the
reference) and writes ``bench_histogram.json`` next to this file.

    python benchmarks/bench_histogram.py [--events 5000000] [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
from pathlib import Path

import numpy as np

from evdet.utils.provenance import provenance
from evdet.events import EVENT_DTYPE, stacked_histogram
from evdet.utils.atomic import atomic_path
from timing import best_time

HEIGHT, WIDTH, NBINS, CUTOFF = 720, 1280, 10, 10


def random_window(n: int, seed: int = 0) -> np.ndarray:
    """n uniform random events over 50 ms at 1280x720, sorted by t."""
    rng = np.random.default_rng(seed)
    ev = np.empty(n, dtype=EVENT_DTYPE)
    ev["t"] = np.sort(rng.integers(0, 50_000, n))
    ev["x"] = rng.integers(0, WIDTH, n)
    ev["y"] = rng.integers(0, HEIGHT, n)
    ev["p"] = rng.integers(0, 2, n)
    return ev


def torch_columns(ev: np.ndarray) -> dict:
    """Contiguous int64 tensors t, x, y, p (prepared outside the timed reference call)."""
    import torch

    return {k: torch.from_numpy(np.ascontiguousarray(ev[k], dtype=np.int64)) for k in "txyp"}


def histogram_torch_reference(cols: dict):
    """RVT's StackedHistogram.construct: torch put_ with accumulate on int64 indices."""
    import torch

    time_, x, y, pol = cols["t"], cols["x"], cols["y"], cols["p"]
    rep = torch.zeros((2, NBINS, HEIGHT, WIDTH), dtype=torch.uint8).flatten().to(torch.int64)
    t0, t1 = time_[0], time_[-1]
    t_norm = (time_ - t0) / max(int(t1 - t0), 1) * NBINS
    t_idx = torch.clamp(t_norm.floor(), max=NBINS - 1).long()
    index = x + WIDTH * y + HEIGHT * WIDTH * t_idx + NBINS * HEIGHT * WIDTH * pol
    rep.put_(index, torch.ones_like(x), accumulate=True)
    return torch.clamp(rep, min=0, max=CUTOFF).to(torch.uint8).view(2 * NBINS, HEIGHT, WIDTH)


def histogram_bincount(ev: np.ndarray) -> np.ndarray:
    """The same histogram with NumPy index arithmetic and np.bincount."""
    t = ev["t"]
    dt = (t - t[0]).astype(np.float32)
    b = np.floor(dt / np.float32(max(int(t[-1] - t[0]), 1)) * np.float32(NBINS)).astype(np.int64)
    np.minimum(b, NBINS - 1, out=b)
    index = ev["x"].astype(np.int64) + WIDTH * ev["y"].astype(np.int64)
    index += HEIGHT * WIDTH * (b + NBINS * ev["p"].astype(np.int64))
    counts = np.bincount(index, minlength=2 * NBINS * HEIGHT * WIDTH)
    return np.minimum(counts, CUTOFF).astype(np.uint8).reshape(2 * NBINS, HEIGHT, WIDTH)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=5_000_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    import torch

    ev = random_window(args.events)
    cols = torch_columns(ev)
    stacked_histogram(ev[:1000], HEIGHT, WIDTH, NBINS, CUTOFF)       # compile / load the cache
    methods = {
        "evdet numba": lambda: stacked_histogram(ev, HEIGHT, WIDTH, NBINS, CUTOFF),
        "torch put_ (reference)": lambda: histogram_torch_reference(cols).numpy(),
        "np.bincount": lambda: histogram_bincount(ev),
    }
    results, outputs = {}, {}
    for name, fn in methods.items():
        seconds, outputs[name] = best_time(fn, args.repeats)
        results[name] = {"ms": seconds * 1e3, "mev_per_s": args.events / seconds / 1e6}
    reference = outputs["torch put_ (reference)"]
    identical = all(np.array_equal(out, reference) for out in outputs.values())
    ref_ms = results["torch put_ (reference)"]["ms"]
    for r in results.values():
        r["speedup_vs_reference"] = ref_ms / r["ms"]

    print(f"stacked histogram, {args.events:,} events, {WIDTH}x{HEIGHT}, nbins={NBINS}, "
          f"best of {args.repeats}, torch threads={torch.get_num_threads()}")
    print(f"{'method':<24}{'ms':>10}{'M ev/s':>10}{'vs ref':>10}")
    for name, r in results.items():
        print(f"{name:<24}{r['ms']:>10.1f}{r['mev_per_s']:>10.1f}{r['speedup_vs_reference']:>9.2f}x")
    print(f"outputs identical: {identical}")

    record = {
        "benchmark": "stacked_histogram",
        "events": args.events, "height": HEIGHT, "width": WIDTH, "nbins": NBINS,
        "count_cutoff": CUTOFF, "repeats": args.repeats, "statistic": "min wall time",
        "torch_threads": torch.get_num_threads(), "outputs_identical": identical,
        "results": results,
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                    "python": platform.python_version(), "numpy": np.__version__,
                    "torch": torch.__version__},
    }
    out_path = Path(__file__).with_suffix(".json")
    with atomic_path(out_path) as tmp:
        record["provenance"] = provenance()   # commit, machine, date (docs quote this file)
        tmp.write_text(json.dumps(record, indent=2))
    if not identical:
        raise SystemExit("outputs differ between methods")


if __name__ == "__main__":
    main()
