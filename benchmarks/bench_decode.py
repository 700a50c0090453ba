"""Benchmark: Prophesee RAW decoding throughput (EVT 3.0, EVT 2.0, and the real sparklers file).

Synthetic data: ``--events`` events (default 5 M) at 1280x720 over one second, half uniform noise
and half runs of neighbouring pixels on one row (which EVT 3.0 packs into vector words), encoded
with ``evdet.events.raw_encode`` and written to a temp folder. Timed, best of ``--repeats``:

* evdet decoder kernel (numba) on the words in memory, and ``read_events`` on the file (header,
  decode, validation, structured array);
* for EVT 3.0, the ``evt3`` package (Rust) on the same file, as the reference (outputs compared);
* the real ``tests/fixtures/real/psee-evt2-sparklers`` EVT 2.0 file through ``read_events``.

Prints a table (ms, M events/s, MB/s, ratio vs the evt3 package) and writes ``bench_decode.json``
next to this file.

    python benchmarks/bench_decode.py [--events 5000000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
from pathlib import Path

import numpy as np

from evdet.utils.provenance import provenance
from evdet.events import make_events, read_events, write_raw
from evdet.events.evt_stream import decode_evt2, decode_evt3
from evdet.events.raw_encode import encode_evt2, encode_evt3
from evdet.utils.atomic import atomic_path
from timing import best_time

HEIGHT, WIDTH = 720, 1280
SPARKLERS = (Path(__file__).resolve().parents[1]
             / "tests/fixtures/real/psee-evt2-sparklers/sparklers_gen3_evt2.raw")


def synthetic_events(n: int, seed: int = 0) -> np.ndarray:
    """n events over 1 s: half uniform noise, half runs of 2-24 neighbours along x on one row."""
    rng = np.random.default_rng(seed)
    n_noise = n // 2
    t = [rng.integers(0, 1_000_000, n_noise)]
    x = [rng.integers(0, WIDTH, n_noise)]
    y = [rng.integers(0, HEIGHT, n_noise)]
    p = [rng.integers(0, 2, n_noise)]
    remaining = n - n_noise
    lengths = rng.integers(2, 25, remaining // 2 + 1)
    lengths = lengths[: np.searchsorted(np.cumsum(lengths), remaining) + 1]
    lengths[-1] -= lengths.sum() - remaining
    lengths = lengths[lengths > 0]
    starts = rng.integers(0, WIDTH - 25, lengths.size)
    offsets = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    t.append(np.repeat(rng.integers(0, 1_000_000, lengths.size), lengths))
    x.append(np.repeat(starts, lengths) + offsets)
    y.append(np.repeat(rng.integers(0, HEIGHT, lengths.size), lengths))
    p.append(np.repeat(rng.integers(0, 2, lengths.size), lengths))
    t, x, y, p = (np.concatenate(c) for c in (t, x, y, p))
    order = np.lexsort((x, y, p, t))          # time-sorted, runs stay contiguous along x
    return make_events(t[order], x[order], y[order], p[order])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=5_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    ev = synthetic_events(args.events)
    words3, words2 = encode_evt3(ev), encode_evt2(ev)
    decode_evt3(words3[:100])       # compile / load the numba cache before timing
    decode_evt2(words2[:100])
    rows: dict[str, dict] = {}
    checks: dict[str, bool] = {}

    def record(name: str, seconds: float, n_events: int, n_bytes: int) -> None:
        rows[name] = {"ms": seconds * 1e3, "mev_per_s": n_events / seconds / 1e6,
                      "mb_per_s": n_bytes / seconds / 1e6, "events": n_events, "bytes": n_bytes}

    with tempfile.TemporaryDirectory() as tmp:
        path3, path2 = Path(tmp) / "synthetic_evt3.raw", Path(tmp) / "synthetic_evt2.raw"
        write_raw(path3, ev, HEIGHT, WIDTH, evt_format="evt3")
        write_raw(path2, ev, HEIGHT, WIDTH, evt_format="evt2")

        s, out = best_time(lambda: decode_evt3(words3), args.repeats)
        record("EVT3 evdet kernel (memory)", s, out[0].size, words3.nbytes)
        s, out = best_time(lambda: read_events(path3), args.repeats)
        record("EVT3 evdet read_events", s, out.size, path3.stat().st_size)
        checks["evt3_round_trip"] = bool(np.array_equal(out, ev))
        try:
            import evt3
        except ImportError:
            evt3 = None
        if evt3 is not None:
            s, ref = best_time(lambda: evt3.decode_file(str(path3)), args.repeats)
            record("EVT3 evt3 package (reference)", s, len(ref), path3.stat().st_size)
            checks["evt3_matches_package"] = bool(
                np.array_equal(ref.timestamp.astype(np.int64), out["t"]) and np.array_equal(ref.x, out["x"])
                and np.array_equal(ref.y, out["y"]) and np.array_equal(ref.polarity, out["p"]))

        s, out = best_time(lambda: decode_evt2(words2), args.repeats)
        record("EVT2 evdet kernel (memory)", s, out[0].size, words2.nbytes)
        s, out = best_time(lambda: read_events(path2), args.repeats)
        record("EVT2 evdet read_events", s, out.size, path2.stat().st_size)
        checks["evt2_round_trip"] = bool(np.array_equal(out, ev))

    if SPARKLERS.is_file():
        s, out = best_time(lambda: read_events(SPARKLERS), max(args.repeats, 5))
        record("EVT2 sparklers (real) read_events", s, out.size, SPARKLERS.stat().st_size)

    ref_ms = rows.get("EVT3 evt3 package (reference)", {}).get("ms")
    print(f"RAW decoding, {args.events:,} synthetic events at {WIDTH}x{HEIGHT} "
          f"(EVT3 {words3.nbytes / 1e6:.1f} MB, EVT2 {words2.nbytes / 1e6:.1f} MB), best of {args.repeats}")
    print(f"{'decoder':<36}{'ms':>9}{'M ev/s':>9}{'MB/s':>9}{'vs evt3':>9}")
    for name, r in rows.items():
        ratio = f"{ref_ms / r['ms']:>8.2f}x" if ref_ms and name.startswith("EVT3") else f"{'':>9}"
        print(f"{name:<36}{r['ms']:>9.1f}{r['mev_per_s']:>9.1f}{r['mb_per_s']:>9.1f}{ratio}")
    print("checks: " + ", ".join(f"{k}={v}" for k, v in checks.items()))

    result = {
        "benchmark": "raw_decode", "events": args.events, "height": HEIGHT, "width": WIDTH,
        "repeats": args.repeats, "statistic": "min wall time", "results": rows, "checks": checks,
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                    "python": platform.python_version(), "numpy": np.__version__},
    }
    out_path = Path(__file__).with_suffix(".json")
    with atomic_path(out_path) as tmp_json:
        result["provenance"] = provenance()   # commit, machine, date (docs quote this file)
        tmp_json.write_text(json.dumps(result, indent=2))
    if not all(checks.values()):
        raise SystemExit(f"decoder checks failed: {checks}")


if __name__ == "__main__":
    main()
