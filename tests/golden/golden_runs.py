"""Golden runs: a short, fast run of every shipped recipe whose losses and evaluation are committed.

Each recipe in ``src/evdet/configs/recipes/`` is trained for ``STEPS`` steps at tiny size (the
recipe's own settings, then ``SMALL`` on top: generated 96x160 data, the ``nano`` width, batch 2,
sequences of 3 steps, no loader workers, one torch thread) and validated once at the end: every
other setting of the recipe (sampling, augmentation, loss, schedule, post-processing, FPN stages,
patch size) runs as the recipe says. What is kept, per recipe:
the training loss of every step, and an evaluation digest (AP, AP50 and small-road-user AP under
each protocol the recipe evaluates, the number of saved validation detections and the sum of their
scores); the confidence threshold is lowered to 1e-4 so that a 24-step model has detections, at most 20
per frame to keep the evaluation quick.

A recipe that cannot run its golden run is listed under ``unrunnable`` with its error (the test
names them; fixing the recipe or the data it needs, then ``make golden``, removes the entry).

``tests/golden/test_golden.py`` reruns them and compares with ``golden.json``: losses within
``LOSS_RTOL`` (relative), metrics within ``METRIC_ATOL`` (absolute), detection counts within
``COUNT_RTOL`` (and their score sum within ``COUNT_RTOL`` relative). Same machine: bit-identical; the tolerances leave room for another CPU of the same
kind (different BLAS / oneDNN kernel choices change the last bits, which 24 steps amplify a
little), not for a change of behaviour. A code change that moves them either keeps them or
re-measures (``make golden`` = ``python tests/golden/golden_runs.py --update``) and says so in
its commit.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RECIPES = ROOT / "src" / "evdet" / "configs" / "recipes"
GOLDEN = Path(__file__).with_name("golden.json")
STEPS = 24
RESOLUTION = (96, 160)   # (height, width) of the generated sensor
LOSS_RTOL = 2e-3
METRIC_ATOL = 5e-3
COUNT_RTOL = 0.02
SMALL = (f"training.max_steps={STEPS}", f"training.val_every_n_steps={STEPS}", "training.log_every_n_steps=1",
         "training.checkpoint_every_n_steps=0", "training.loggers=[csv]", "data.batch_size=2",
         "data.eval_batch_size=2", "data.seq_len=3", "data.num_workers=0", "training.seed=0",
         "model.head.conf_threshold=0.0001", "model.head.max_detections=20", "model.preset=nano",
         "training.devices=1", "training.num_nodes=1")   # one CPU process (rvt_gen4 trains on 2 GPUs)


def recipe_names() -> list[str]:
    """Every shipped recipe, as its preset name (``recipes/<stem>``)."""
    return sorted(f"recipes/{p.stem}" for p in RECIPES.glob("*.yaml"))


def make_data(work: Path) -> Path:
    """Generated eTraM-like data (4 sequences of 3 s at 96x160: 2 train / 1 val / 1 test), preprocessed."""
    from evdet.data.preprocess.dataset import preprocess_dataset
    from evdet.data.synthetic import generate_dataset

    raw, pre = work / "raw", work / "pre"
    if not (pre / "preprocess.json").exists():
        generate_dataset(raw, sequences=4, duration_s=3.0, resolution=RESOLUTION, seed=0, progress=False,
                         splits=(0.5, 0.25, 0.25))
        preprocess_dataset(raw, pre, downsample="none", workers=1, progress=False)
    return pre


def measure(recipe: str, data: Path, work: Path) -> dict:
    """Train ``recipe`` at golden size on ``data``; its per-step losses and evaluation digest."""
    import torch

    from evdet.experiments.records.new import new_experiment
    from evdet.experiments.records.record import read_metrics_csv
    from evdet.experiments.running.runner import run_experiment

    torch.set_num_threads(1)
    root = work / "experiments"
    exp_id = recipe.replace("/", "_")
    if not (root / exp_id).exists():
        new_experiment(root, exp_id, "golden run", config_files=[recipe],
                       overrides=[f"data.root={data}", *SMALL])
    results = run_experiment(root, exp_id, progress=False)
    curves = read_metrics_csv(root / exp_id / "logs" / "metrics.csv")
    steps, losses = curves["train/loss"]
    digest = {}
    for proto, block in sorted(results["protocols"].items()):
        metrics = block.get("metrics", {})
        small = (block.get("groups", {}).get("small_road_users") or {}).get("AP")
        digest[proto] = {"AP": metrics.get("AP"), "AP50": metrics.get("AP50"), "small_AP": small}
    import numpy as np

    with np.load(root / exp_id / "validation" / "detections.npz") as z:
        dts = [z[k] for k in z.files if k.startswith("dt_")]
    scores = np.concatenate([d["class_confidence"] for d in dts]) if dts else np.zeros(0)
    return {"steps": [int(s) for s in steps], "loss": [float(v) for v in losses], "evaluation": digest,
            "detections": int(scores.size), "score_sum": float(scores.astype(np.float64).sum())}


def measure_all(recipes: list[str]) -> tuple[dict, dict]:
    """({recipe: measurement}, {recipe: error text}) of every recipe (a failing one is reported, not kept)."""
    measured, failed = {}, {}
    with tempfile.TemporaryDirectory(prefix="evdet-golden-") as tmp:
        data = make_data(Path(tmp))
        for r in recipes:
            try:
                measured[r] = measure(r, data, Path(tmp))
            except Exception as err:   # noqa: BLE001  (a recipe that cannot run is reported by name)
                failed[r] = f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
    return measured, failed


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--update", action="store_true", help=f"re-measure and write {GOLDEN.name}")
    ap.add_argument("recipes", nargs="*", help="recipe presets (default: every shipped recipe)")
    args = ap.parse_args(argv)
    from evdet.utils.provenance import provenance

    recipes = args.recipes or recipe_names()
    measured, failed = measure_all(recipes)
    if args.update:
        old = json.loads(GOLDEN.read_text())["runs"] if GOLDEN.exists() else {}
        old_failed = json.loads(GOLDEN.read_text()).get("unrunnable", {}) if GOLDEN.exists() else {}
        unrunnable = {r: e for r, e in {**old_failed, **failed}.items() if r not in measured}
        doc = {"steps": STEPS, "resolution": list(RESOLUTION), "overrides": list(SMALL),
               "tolerance": {"loss_rtol": LOSS_RTOL, "metric_atol": METRIC_ATOL, "count_rtol": COUNT_RTOL},
               "provenance": provenance("make golden"), "runs": {**old, **measured},
               "unrunnable": unrunnable}
        GOLDEN.write_text(json.dumps(doc, indent=1) + "\n")
        print(f"wrote {GOLDEN} ({len(measured)} recipes)")
    for r, m in measured.items():
        print(f"{r}: final loss {m['loss'][-1]:.5f}, {m['detections']} detections, {m['evaluation']}")
    for r, err in failed.items():
        print(f"{r}: FAILED ({err}); no golden run kept")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
