"""One side of ``bench_peers.py``: runs timed operations sent on stdin, one JSON object a line.

    python peers_worker.py evdet|rvt      (the project's venv: evdet, torch)
    python peers_worker.py evt3|evlib     (the peers' venv: no evdet, no torch)

Request ``{"op": "decode_evt3", "args": {...}}``; reply ``{"seconds": s, "digest": {...}}``: the
wall time of the operation alone, then (untimed) a SHA-1 of each output column or array in a
canonical dtype (t int64, x / y uint16, p uint8 0/1, histograms uint8 C order), so that the
parent compares outputs of different libraries without moving them. The worker restricts itself
to the first ``--threads`` CPUs (``sched_setaffinity``) and sets the thread variables of every
library before importing it, so a peer cannot use more cores than evdet.

RVT's algorithms (side ``rvt``) are transcribed from uzh-rpg/RVT: ``StackedHistogram.construct``
in ``data/utils/representations.py`` (fastmode: uint8 ``put_`` accumulation, then clamp) and
``write_event_representations`` / ``downsample_ev_repr`` in ``scripts/genx/preprocess_dataset.py``
(all timestamps loaded, ``searchsorted`` windows, ``interpolate(nearest-exact)``, one resizable
HDF5 write per window, Blosc zstd level 1).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time

THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS", "RAYON_NUM_THREADS",
               "POLARS_MAX_THREADS", "BLOSC_NTHREADS", "OPENBLAS_NUM_THREADS")
HEIGHT, WIDTH, NBINS, CUTOFF = 720, 1280, 10, 10


def digest(*arrays) -> str:
    import numpy as np

    h = hashlib.sha1()
    for a in arrays:
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def event_digest(t, x, y, p) -> dict:
    import numpy as np

    return {"n": int(len(t)), "sha1": digest(np.asarray(t, np.int64), np.asarray(x, np.uint16),
                                             np.asarray(y, np.uint16), (np.asarray(p) > 0).astype(np.uint8))}


def load_npz_events(path: str):
    import numpy as np

    d = np.load(path)
    return d["t"], d["x"], d["y"], d["p"]


def h5_data_digest(path: str) -> dict:
    import h5py
    import hdf5plugin  # noqa: F401  (Blosc filter)
    import numpy as np

    with h5py.File(path, "r") as fh:
        data = np.asarray(fh["data"])
    return {"shape": list(data.shape), "sha1": digest(data)}


# ---- evdet -------------------------------------------------------------------------------------

def evdet_decode(path: str):
    from evdet.events import read_events

    ev = read_events(path)
    return lambda: event_digest(ev["t"], ev["x"], ev["y"], ev["p"])


def evdet_histogram(path: str, ds2: bool):
    from evdet.events import make_events, stacked_histogram

    ev = make_events(*load_npz_events(path))        # input preparation: not timed
    start = time.perf_counter()
    rep = stacked_histogram(ev, HEIGHT, WIDTH, NBINS, CUTOFF, nearest_ds2=ds2)
    return time.perf_counter() - start, lambda: {"shape": list(rep.shape), "sha1": digest(rep)}


def evdet_preprocess(raw_root: str, out_dir: str):
    import shutil
    from pathlib import Path

    from evdet.data.preprocess.dataset import preprocess_dataset

    shutil.rmtree(out_dir, ignore_errors=True)
    preprocess_dataset(raw_root, out_dir, downsample="nearest", workers=1, progress=False)
    files = sorted(Path(out_dir).glob("*/*/event_representations_v2/*/event_representations_ds2_nearest.h5"))
    return lambda: h5_data_digest(str(files[0]))


# ---- RVT's algorithms (torch) ------------------------------------------------------------------

def rvt_stacked_histogram(torch, x, y, pol, time_us, height, width):
    """RVT ``StackedHistogram(bins=10, count_cutoff=10, fastmode=True).construct``."""
    rep = torch.zeros((2, NBINS, height, width), dtype=torch.uint8)
    if x.numel() == 0:
        return rep.reshape(-1, height, width)
    t0, t1 = time_us[0], time_us[-1]
    t_norm = (time_us - t0) / max(int(t1 - t0), 1) * NBINS
    t_idx = torch.clamp(t_norm.floor(), max=NBINS - 1)
    indices = x.long() + width * y.long() + height * width * t_idx.long() + NBINS * height * width * pol.long()
    rep.put_(indices, torch.ones_like(indices, dtype=torch.uint8), accumulate=True)
    return torch.clamp(rep, min=0, max=CUTOFF).reshape(-1, height, width)


def rvt_histogram(path: str, ds2: bool):
    import numpy as np
    import torch

    cols = [torch.from_numpy(np.asarray(c, np.int64)) for c in load_npz_events(path)]
    start = time.perf_counter()
    rep = rvt_stacked_histogram(torch, cols[1], cols[2], cols[3], cols[0], HEIGHT, WIDTH)
    if ds2:
        rep = torch.nn.functional.interpolate(rep[None], scale_factor=0.5, mode="nearest-exact")[0]
    rep = rep.numpy()
    return time.perf_counter() - start, lambda: {"shape": list(rep.shape), "sha1": digest(rep)}


def rvt_preprocess(events_h5: str, grid_npy: str, out_h5: str):
    """RVT's ``write_event_representations`` for one sequence, ds2 nearest-exact, 50 ms windows."""
    import h5py
    import hdf5plugin
    import numpy as np
    import torch

    grid = np.load(grid_npy)
    shape = (2 * NBINS, HEIGHT // 2, WIDTH // 2)
    with h5py.File(events_h5, "r") as src, h5py.File(out_h5, "w") as dst:
        ev = src["events"]
        t_all = np.asarray(ev["t"], dtype=np.int64)
        ends = np.searchsorted(t_all, grid, side="right")
        starts = np.searchsorted(t_all, grid - 50_000, side="left")
        ds = dst.create_dataset("data", dtype="uint8", shape=(0, *shape), chunks=(1, *shape),
                                maxshape=(None, *shape),
                                **hdf5plugin.Blosc(cname="zstd", clevel=1, shuffle=hdf5plugin.Blosc.SHUFFLE))
        for i, (a, b) in enumerate(zip(starts, ends)):
            cols = [torch.from_numpy(np.asarray(ev[k][a:b], dtype=np.int64)) for k in ("x", "y", "p")]
            rep = rvt_stacked_histogram(torch, *cols, torch.from_numpy(t_all[a:b]), HEIGHT, WIDTH)
            rep = torch.nn.functional.interpolate(rep[None], scale_factor=0.5, mode="nearest-exact")
            ds.resize(i + 1, axis=0)
            ds[i:i + 1] = rep.numpy()
    return lambda: h5_data_digest(out_h5)


# ---- peers: evt3 and evlib ---------------------------------------------------------------------

def evt3_decode(path: str):
    import evt3

    r = evt3.decode_file(path)
    cols = r.timestamp, r.x, r.y, r.polarity        # the getters copy: part of getting arrays
    return lambda: event_digest(*cols)


def evlib_decode(path: str):
    import evlib
    import polars as pl

    df = evlib.load_events(path, sort=False).collect()     # stream order (its sort is not stable)
    cols = (df["t"].cast(pl.Int64).to_numpy(), df["x"].to_numpy(), df["y"].to_numpy(),
            df["polarity"].to_numpy())
    return lambda: event_digest(*cols)


def evlib_histogram(path: str, ds2: bool):
    import evlib
    import numpy as np

    t, x, y, p = (np.asarray(c, np.int64) for c in load_npz_events(path))
    if ds2:
        rows, cols = np.full(HEIGHT, -1, np.int64), np.full(WIDTH, -1, np.int64)
        rows[1::2], cols[1::2] = np.arange(HEIGHT // 2), np.arange(WIDTH // 2)
        out_hw = (HEIGHT // 2, WIDTH // 2)
    else:
        rows, cols, out_hw = np.arange(HEIGHT, dtype=np.int64), np.arange(WIDTH, dtype=np.int64), (HEIGHT, WIDTH)
    grid = np.array([t[-1]], np.int64)                  # one window holding every event
    start = time.perf_counter()
    rep = evlib.representations_rs.stacked_histogram_dense(
        t, x, y, p, grid, int(t[-1] - t[0]), NBINS, CUTOFF, rows, cols, *out_hw)[0]
    return time.perf_counter() - start, lambda: {"shape": list(rep.shape), "sha1": digest(rep)}


def evlib_preprocess(events_h5: str, grid_npy: str, out_dir: str):
    import shutil
    from pathlib import Path

    import numpy as np
    from evlib.rvt.pipeline import process_sequence

    shutil.rmtree(out_dir, ignore_errors=True)
    out = process_sequence(Path(events_h5), Path(out_dir), "gen4", HEIGHT, WIDTH, np.load(grid_npy),
                           downsample_by_2=True, backend="rust")
    return lambda: h5_data_digest(str(out))


OPS = {
    "evdet": {"decode": evdet_decode, "histogram": evdet_histogram, "preprocess": evdet_preprocess},
    "rvt": {"histogram": rvt_histogram, "preprocess": rvt_preprocess},
    "evt3": {"decode": evt3_decode},
    "evlib": {"decode": evlib_decode, "histogram": evlib_histogram, "preprocess": evlib_preprocess},
}


def run(side: str, op: str, args: dict) -> dict:
    """Time one operation. An op returns a digest function, or (seconds, digest function) when
    it times only part of itself (input preparation excluded)."""
    start = time.perf_counter()
    result = OPS[side][op](**args)
    seconds = time.perf_counter() - start
    if isinstance(result, tuple):
        seconds, result = result
    return {"seconds": seconds, "digest": result()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("side", choices=sorted(OPS))
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[: args.threads])
    for var in THREAD_VARS:
        os.environ[var] = str(args.threads)
    if args.side == "rvt":
        import torch

        torch.set_num_threads(args.threads)
    for line in sys.stdin:
        request = json.loads(line)
        try:
            reply = run(args.side, request["op"], request.get("args", {}))
        except Exception as exc:            # reported to the parent, which names the row
            reply = {"error": f"{type(exc).__name__}: {exc}"}
        print(json.dumps(reply), flush=True)


if __name__ == "__main__":
    main()
