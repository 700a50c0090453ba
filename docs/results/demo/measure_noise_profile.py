"""Measure the demo recipe's shipped noise profile (src/evdet/configs/noise/demo.json) from real seeds.

The demo's own baseline (seed 0) and two A/A records of the same recipe on the same data trained
beside it (seeds 1, 2 and 3, 4; `evdet exp new noise_demo_a -c demo data.root=... training.max_steps=300
training.val_every_n_steps=300 seeds=[1,2]`, then `evdet exp run`): five seeds of one recipe,
profiled by `build_profile` (each metric's sample SD over the five seeds, 4 degrees of freedom).
`evdet exp noise demo data.root=... --seeds 6` does the same in one record.

Usage: python docs/results/demo/measure_noise_profile.py runs/demo/experiments runs/aa_demo2
"""

import json
import math
import sys
from pathlib import Path

from scipy.stats import t as student_t

from evdet.experiments.records.record import load_experiment
from evdet.experiments.statistics.noise_profile import SHIPPED_DIR, build_profile


def main(demo_root: Path, aa_root: Path) -> Path:
    exps = [load_experiment(demo_root, "baseline_3scale"), load_experiment(aa_root, "noise_demo_a"),
            load_experiment(aa_root, "noise_demo_b")]
    doc = build_profile(exps, "demo")
    k = len(doc["seeds"])
    for m in doc["metrics"].values():     # what a one-seed Δ of this recipe adds (t with k - 1 dof, two runs)
        m["one_seed_delta_half_width"] = float(student_t.ppf(0.975, k - 1)) * m["sd"] * math.sqrt(2)
    doc["provenance"]["command"] = f"python docs/results/demo/measure_noise_profile.py {demo_root} {aa_root}"
    out = SHIPPED_DIR / "demo.json"
    out.write_text(json.dumps(doc, indent=1) + "\n")
    return out


if __name__ == "__main__":
    print(main(Path(sys.argv[1]), Path(sys.argv[2])))
