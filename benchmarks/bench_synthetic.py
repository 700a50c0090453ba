"""Speed of the synthetic traffic generator: seconds of scene generated per CPU second.

Measures full sequences (traffic, rendering + DVS events, noise, labels) at the full eTraM
resolution (1280x720) and at the demo resolution (320x180), day and night, and the demo's data
generation (8 sequences x 15 s at 320x180, extrapolated from the measured rate). Writes
``bench_synthetic.json`` next to this file. CPU time (``time.process_time``) is reported beside
wall time because other work shares the cores.

    python benchmarks/bench_synthetic.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np

from evdet.utils.provenance import provenance
from evdet.data.synthetic import preset_config, simulate_sequence

CASES = [  # (name, (height, width), preset, seconds of scene)
    ("1280x720 day", (720, 1280), "day", 2.0),
    ("1280x720 night", (720, 1280), "night", 2.0),
    ("320x180 day", (180, 320), "day", 10.0),
    ("320x180 night", (180, 320), "night", 10.0),
]
DEMO = {"sequences": 8, "duration_s": 15.0, "resolution": (180, 320)}


def measure(resolution, preset: str, duration_s: float, seed: int = 0) -> dict:
    """Generate one sequence and time it."""
    cfg = preset_config(preset)
    w0, c0 = time.perf_counter(), time.process_time()
    seq = simulate_sequence(cfg, duration_s, resolution, np.random.default_rng(seed))
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    return {"resolution": list(resolution), "preset": preset, "scene_s": duration_s,
            "cpu_s": round(cpu, 3), "wall_s": round(wall, 3),
            "scene_s_per_cpu_s": round(duration_s / cpu, 3),
            "events": seq.stats["events"], "events_per_s": round(seq.stats["events"] / duration_s),
            "noise_share": round(seq.stats["noise_events"] / max(seq.stats["events"], 1), 3),
            "boxes_per_frame": round(seq.boxes.size / max(np.unique(seq.boxes["t"]).size, 1), 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a quarter of the scene lengths")
    args = parser.parse_args()
    simulate_sequence(preset_config("day"), 0.05, (180, 320), np.random.default_rng(0))  # JIT warm-up
    rows = {}
    for name, res, preset, dur in CASES:
        rows[name] = measure(res, preset, dur / 4 if args.quick else dur)
    demo_rate = rows["320x180 day"]["scene_s_per_cpu_s"]
    demo_cpu = DEMO["sequences"] * DEMO["duration_s"] / demo_rate
    print(f"{'case':<16} {'scene s/CPU s':>13} {'CPU s':>8} {'wall s':>8} {'Mev/s':>7} "
          f"{'noise':>6} {'boxes/frame':>11}")
    for name, r in rows.items():
        print(f"{name:<16} {r['scene_s_per_cpu_s']:>13.3f} {r['cpu_s']:>8.2f} {r['wall_s']:>8.2f} "
              f"{r['events_per_s'] / 1e6:>7.3f} {r['noise_share']:>6.3f} {r['boxes_per_frame']:>11.2f}")
    print(f"demo data ({DEMO['sequences']} x {DEMO['duration_s']:.0f} s at 320x180): "
          f"about {demo_cpu:.1f} CPU s")
    out = {"benchmark": "synthetic", "machine": platform.processor() or platform.machine(),
           "python": platform.python_version(), "quick": args.quick, "cases": rows,
           "demo": {**DEMO, "resolution": list(DEMO["resolution"]), "estimated_cpu_s": round(demo_cpu, 1)}}
    path = Path(__file__).with_suffix(".json")
    tmp = path.with_suffix(".json.tmp")
    out["provenance"] = provenance()   # commit, machine, date (docs quote this file)
    tmp.write_text(json.dumps(out, indent=2) + "\n")
    tmp.replace(path)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
