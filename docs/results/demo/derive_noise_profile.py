"""Derive the demo recipe's shipped noise profile (src/evdet/configs/noise/demo.json) from the A/A test.

The A/A test of the demo baseline recipe (README, commit c209123, 2026-11-30, 2 CPU cores, AMD EPYC)
trained seeds 0-2 against seeds 3-5 and kept only, per metric, the group means' difference
B - A and its 95% Welch interval (3 + 3 seeds); the per-seed values were not committed, and
re-measuring six 300-step runs did not fit this session's shared 2 cores. The seed SD follows from
what was kept, assuming equal group variances (both groups are one recipe): the Welch interval then
has 4 degrees of freedom, half-width h = t_{0.975,4} * s_w * sqrt(2/3), so s_w = h / (t * sqrt(2/3));
the six seeds' SD (5 degrees of freedom; the group difference is itself seed noise) is
s = sqrt((4 s_w^2 + 1.5 d^2) / 5). The README rounded every figure to 3 decimals (about 4% on s).

Usage: python docs/results/demo/derive_noise_profile.py runs/demo/experiments
(recipe and data fingerprints from that root's demo baseline record, which must have run).
"""

import json
import math
import sys
from pathlib import Path

from scipy.stats import t as student_t

from evdet.experiments.records.record import load_experiment
from evdet.experiments.statistics.noise_profile import SHIPPED_DIR, data_fingerprint, flat_config, recipe_fingerprint
from evdet.utils.provenance import provenance

AA = {  # metric: (difference B - A, Welch low, Welch high), README A/A table at commit c209123
    "full/AP": (-0.027, -0.066, 0.012),
    "prophesee/AP": (-0.028, -0.068, 0.013),
    "full/groups.small_road_users.AP": (-0.019, -0.046, 0.008),
}


def seed_sd(diff: float, low: float, high: float) -> float:
    s_w = (high - low) / 2 / (float(student_t.ppf(0.975, 4)) * math.sqrt(2 / 3))
    return math.sqrt((4 * s_w ** 2 + 1.5 * diff ** 2) / 5)


def main(root: Path) -> Path:
    base = load_experiment(root, "baseline_3scale")
    cfg = flat_config(base.config)
    doc = {"schema": 1, "name": "demo", "record": "A/A test of the demo baseline (README, commit c209123)",
           "seeds": [0, 1, 2, 3, 4, 5], "recipe_fingerprint": recipe_fingerprint(cfg),
           "data_fingerprint": data_fingerprint(base), "config": cfg,
           "metrics": {k: {"sd": seed_sd(*v), "mean": None, "values": None, "aa_difference": list(v),
                           "one_seed_delta_half_width": float(student_t.ppf(0.975, 5)) * seed_sd(*v) * math.sqrt(2)}
                       for k, v in AA.items()},
           "derived": __doc__.split("\n\n")[1].replace("\n", " "),
           "provenance": provenance("python docs/results/demo/derive_noise_profile.py " + str(root))}
    out = SHIPPED_DIR / "demo.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=1) + "\n")
    return out


if __name__ == "__main__":
    print(main(Path(sys.argv[1])))
