"""Benchmark: evdet against its real peers (evt3, evlib) and RVT's own algorithms, same run.

Rows (outputs checked equal on every row, by SHA-1 of canonical arrays):

* EVT 3.0 decode of ``--events`` synthetic events (file -> t/x/y/p arrays): vs evt3, vs evlib;
* EVT 2.0 decode, same events: vs evlib;
* stacked histogram (10 bins, cutoff 10) of those events at 1280x720, and fused with RVT's
  nearest-exact 2x downsampling (640x360): vs RVT's torch ``StackedHistogram``, vs evlib's Rust
  ``stacked_histogram_dense``;
* RVT-style preprocessing of a ``--duration-s`` 1280x720 recording (HDF5 events -> 50 ms
  windows -> ds2 histograms -> Blosc HDF5): evdet's ``preprocess_dataset`` (labels included) vs
  RVT's ``write_event_representations`` algorithm and evlib's ``process_sequence(backend="rust")``
  on evdet's window end times.

Every side runs in its own worker process (``peers_worker.py``) pinned to ``--threads`` CPUs with
every library's thread variable set, so that 1 and 2 threads mean the same for all. The peers
live in their own venv (``--peers-venv``, created on first use with pinned versions; never the
project's). Rounds are interleaved (the order of the sides alternates) and the statistic is the
best round; the ratio is evdet's speed over the peer's (> 1: evdet faster). Results go to
``bench_peers.json`` (commit, machine, date); ``--readme`` rewrites README's Speed table.

    python benchmarks/bench_peers.py [--threads 1 2] [--rounds 3] [--events 5000000] [--duration-s 10]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PEER_PINS = ("evlib==0.13.2", "evt3==0.4.1", "numpy==2.4.6", "h5py==3.16.0", "hdf5plugin==7.1.0")
THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS", "RAYON_NUM_THREADS",
               "POLARS_MAX_THREADS", "BLOSC_NTHREADS", "OPENBLAS_NUM_THREADS")
PROJECT_SIDES = ("evdet", "rvt")
README_START, README_END = "<!-- speed-table:start -->", "<!-- speed-table:end -->"


def ensure_peers_venv(venv: Path) -> Path:
    """Python of the peers' venv, created with the pinned peers if missing (a few minutes)."""
    python = venv / "bin" / "python"
    if not python.exists():
        print(f"creating the peers' venv {venv} ({', '.join(PEER_PINS)})", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", *PEER_PINS], check=True)
    return python


class Worker:
    """One side in its own process, pinned to ``threads`` CPUs (see ``peers_worker.py``)."""

    def __init__(self, python: Path, side: str, threads: int):
        env = dict(os.environ, **{v: str(threads) for v in THREAD_VARS})
        env["PYTHONPATH"] = str(ROOT / "src") if side in PROJECT_SIDES else ""
        self.side = side
        self.proc = subprocess.Popen([str(python), str(HERE / "peers_worker.py"), side, "--threads", str(threads)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)

    def run(self, op: str, args: dict) -> dict:
        self.proc.stdin.write(json.dumps({"op": op, "args": args}) + "\n")
        self.proc.stdin.flush()
        reply = json.loads(self.proc.stdout.readline())
        if "error" in reply:
            raise SystemExit(f"{self.side} {op}: {reply['error']}")
        return reply

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait()


def make_inputs(tmp: Path, n_events: int, duration_s: float) -> dict:
    """Input files of every row; returns {row key: {side: op args}}."""
    sys.path.insert(0, str(HERE))
    from bench_decode import synthetic_events
    from bench_preprocess import make_recording
    from bench_preprocess import write_raw as write_raw_dataset

    from evdet.events import write_raw

    ev = synthetic_events(n_events)
    for fmt in ("evt3", "evt2"):
        write_raw(tmp / f"events_{fmt}.raw", ev, 720, 1280, evt_format=fmt)
    np.savez(tmp / "events.npz", t=ev["t"], x=ev["x"], y=ev["y"], p=ev["p"])
    del ev
    write_raw_dataset(tmp / "raw", make_recording(duration_s, 5.0), duration_s)
    h5 = str(tmp / "raw" / "train" / "rec_td.h5")
    grid = str(tmp / "grid.npy")
    pre = {"evdet": {"raw_root": str(tmp / "raw"), "out_dir": str(tmp / "pre_evdet")},
           "rvt": {"events_h5": h5, "grid_npy": grid, "out_h5": str(tmp / "pre_rvt.h5")},
           "evlib": {"events_h5": h5, "grid_npy": grid, "out_dir": str(tmp / "pre_evlib")}}
    npz = str(tmp / "events.npz")
    return {
        "evt3_decode": ("decode", {s: {"path": str(tmp / "events_evt3.raw")} for s in ("evdet", "evt3", "evlib")}),
        "evt2_decode": ("decode", {s: {"path": str(tmp / "events_evt2.raw")} for s in ("evdet", "evlib")}),
        "histogram_full": ("histogram", {s: {"path": npz, "ds2": False} for s in ("evdet", "rvt", "evlib")}),
        "histogram_ds2": ("histogram", {s: {"path": npz, "ds2": True} for s in ("evdet", "rvt", "evlib")}),
        "preprocess_ds2": ("preprocess", pre),
    }


ROW_NAMES = {
    "evt3_decode": "EVT 3.0 decode, file to arrays",
    "evt2_decode": "EVT 2.0 decode, file to arrays",
    "histogram_full": "stacked histogram 1280x720",
    "histogram_ds2": "stacked histogram + nearest-exact 2x (640x360)",
    "preprocess_ds2": "RVT-style preprocessing 1280x720 -> 640x360",
}


def write_grid(tmp: Path) -> None:
    """evdet's window end times (from its warm-up output), used by RVT's and evlib's runs."""
    found = sorted((tmp / "pre_evdet").glob("*/*/event_representations_v2/*/timestamps_us.npy"))
    np.save(tmp / "grid.npy", np.load(found[0]))


def measure(threads: int, rounds: int, rows: dict, pythons: dict, tmp: Path) -> list[dict]:
    """Best-of-rounds seconds of every side of every row at one thread count."""
    sides = sorted({s for _, per_side in rows.values() for s in per_side})
    workers = {s: Worker(pythons[s], s, threads) for s in sides}
    try:
        first = {}
        for key, (op, per_side) in rows.items():           # warm-up (numba cache, imports), untimed
            first[key] = workers["evdet"].run(op, per_side["evdet"])
            if op == "preprocess":
                write_grid(tmp)
            for side in per_side:
                if side != "evdet":
                    first[key + side] = workers[side].run(op, per_side[side])
        best: dict[tuple[str, str], float] = {}
        digests: dict[tuple[str, str], dict] = {}
        for r in range(rounds):
            for key, (op, per_side) in rows.items():
                order = list(per_side) if r % 2 == 0 else list(reversed(per_side))
                for side in order:
                    reply = workers[side].run(op, per_side[side])
                    best[key, side] = min(best.get((key, side), float("inf")), reply["seconds"])
                    digests[key, side] = reply["digest"]
            print(f"threads {threads}: round {r + 1}/{rounds} done", flush=True)
    finally:
        for w in workers.values():
            w.close()
    results = []
    for key, (op, per_side) in rows.items():
        mine = best[key, "evdet"]
        for side in per_side:
            if side == "evdet":
                continue
            results.append({"row": key, "measure": ROW_NAMES[key], "threads": threads, "peer": side,
                            "evdet_s": mine, "peer_s": best[key, side], "speed_ratio": best[key, side] / mine,
                            "outputs_equal": digests[key, side] == digests[key, "evdet"]})
    return results


def speed_table(result: dict, placeholders: bool = False) -> str:
    """Markdown table of a bench_peers.json result (README's Speed section); with ``placeholders``
    the rows as ``docs/numbers.yaml`` quotes (``{bench_peers:rows/i/...}``) instead of values."""
    def cell(i: int, key: str, fmt: str) -> str:
        return f"{{bench_peers:rows/{i}/{key}:{fmt}}}" if placeholders else format(result["rows"][i][key], fmt)

    lines = ["| measure | peer | threads | evdet s | peer s | evdet speed / peer | outputs |",
             "|---|---|---|---|---|---|---|"]
    for i, r in enumerate(result["rows"]):
        lines.append(f"| {r['measure']} | {r['peer']} | {r['threads']} | {cell(i, 'evdet_s', '.3f')} | "
                     f"{cell(i, 'peer_s', '.3f')} | {cell(i, 'speed_ratio', '.2f')}x | "
                     f"{'equal' if r['outputs_equal'] else 'DIFFER'} |")
    if placeholders:
        return "\n".join(f'      - "{line}"' for line in lines[2:])
    lines.append(f"\nBest of {result['rounds']} interleaved rounds, each side pinned to the stated number of cores; "
                 f"commit, machine and date in `benchmarks/bench_peers.json`.")
    return "\n".join(lines)


def update_readme(result: dict, readme: Path) -> None:
    text = readme.read_text()
    if README_START not in text:
        raise SystemExit(f"{readme}: no '{README_START}' marker to put the Speed table under")
    head, rest = text.split(README_START, 1)
    tail = rest.split(README_END, 1)[1]
    readme.write_text(f"{head}{README_START}\n{speed_table(result)}\n{README_END}{tail}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--events", type=int, default=5_000_000)
    parser.add_argument("--duration-s", type=float, default=10.0)
    parser.add_argument("--rows", nargs="+", choices=sorted(ROW_NAMES), default=list(ROW_NAMES))
    parser.add_argument("--peers-venv", type=Path, default=HERE / ".peers-venv")
    parser.add_argument("--out", type=Path, default=HERE / "bench_peers.json")
    parser.add_argument("--readme", action="store_true", help="rewrite README's Speed table from --out and exit")
    args = parser.parse_args()
    if args.readme:
        result = json.loads(args.out.read_text())
        update_readme(result, ROOT / "README.md")
        print("quotes for docs/numbers.yaml (README.md):\n" + speed_table(result, placeholders=True))
        return
    peer_python = ensure_peers_venv(args.peers_venv)
    pythons = {"evdet": Path(sys.executable), "rvt": Path(sys.executable), "evt3": peer_python,
               "evlib": peer_python}
    versions = subprocess.run([str(peer_python), "-c", "import importlib.metadata as m; print(m.version('evlib'), "
                               "m.version('evt3'))"], capture_output=True, text=True).stdout.split()
    with tempfile.TemporaryDirectory(prefix="bench_peers_") as tmp:
        tmp = Path(tmp)
        all_rows = make_inputs(tmp, args.events, args.duration_s)
        rows = {k: all_rows[k] for k in args.rows}
        results = [r for n in args.threads for r in measure(n, args.rounds, rows, pythons, tmp)]
    from evdet.utils.provenance import provenance

    result = {"benchmark": "peers", "versions": dict(zip(("evlib", "evt3"), versions)),
              "events": args.events, "duration_s": args.duration_s, "rounds": args.rounds,
              "statistic": "best of interleaved rounds", "rows": results, "provenance": provenance()}
    args.out.write_text(json.dumps(result, indent=1))
    print(speed_table(result))
    if not all(r["outputs_equal"] for r in results):
        raise SystemExit("some outputs differ from evdet's (see outputs column)")


if __name__ == "__main__":
    main()
