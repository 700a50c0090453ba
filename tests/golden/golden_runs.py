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

The generated data has eTraM's 8 classes. A recipe on another known class map (``data.class_map``
gen1 / gen4) trains on the same recordings with their raw labels mapped to its classes
(``LABEL_MAPS``; a box of a class mapped to none is dropped) and then preprocessed as usual:

- gen1 (car, pedestrian): car <- car, bus, truck, tram; pedestrian <- pedestrian; bicycle,
  motorbike, wheelchair dropped.
- gen4 (pedestrian, two-wheeler, car): pedestrian <- pedestrian; two-wheeler <- bicycle, motorbike;
  car <- car; bus, truck, tram, wheelchair dropped (Gen4 labels trucks and buses as classes of their
  own, which RVT removes: RVT scripts/genx/preprocess_dataset.py, prophesee_remove_labels_filter_gen4).

A recipe that cannot run its golden run is listed under ``unrunnable`` with its error (the test
names them; fixing the recipe or the data it needs, then ``make golden``, removes the entry).
The top-level ``provenance`` is that of every run without one of its own: an update of some recipes
only stamps the runs it measured with their ``provenance``.

``tests/golden/test_golden.py`` reruns them and compares with ``golden.json``: losses within
``LOSS_RTOL`` (relative), metrics within ``METRIC_ATOL`` (absolute), detection counts within
``COUNT_RTOL`` (and their score sum within ``COUNT_RTOL`` relative). Same machine: bit-identical;
the tolerances leave room for another CPU of the same kind (different BLAS / oneDNN kernel choices
change the last bits, which 24 steps amplify a little), not for a change of behaviour. A code change
that moves them either keeps them or re-measures (``make golden`` = ``python tests/golden/golden_runs.py
--update``) and says so in its commit.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

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
# target class -> the eTraM classes whose boxes it takes, per known class map (module docstring)
LABEL_MAPS = {
    "gen1": {"car": ("car", "bus", "truck", "tram"), "pedestrian": ("pedestrian",)},
    "gen4": {"pedestrian": ("pedestrian",), "two-wheeler": ("bicycle", "motorbike"), "car": ("car",)},
}


def recipe_names() -> list[str]:
    """Every shipped recipe, as its preset name (``recipes/<stem>``)."""
    return sorted(f"recipes/{p.stem}" for p in RECIPES.glob("*.yaml"))


def make_data(work: Path) -> dict[str, Path]:
    """Generated eTraM-like data (4 sequences of 3 s at 96x160: 2 train / 1 val / 1 test), preprocessed:
    {"etram": the 8 generated classes, "gen1" / "gen4": the same recordings labelled by ``LABEL_MAPS``}."""
    from evdet.data.preprocess.dataset import preprocess_dataset
    from evdet.data.synthetic import generate_dataset

    raw = work / "raw"
    datasets = {"etram": work / "pre", **{name: work / f"pre_{name}" for name in LABEL_MAPS}}
    if not (raw / "dataset.yaml").exists():
        generate_dataset(raw, sequences=4, duration_s=3.0, resolution=RESOLUTION, seed=0, progress=False,
                         splits=(0.5, 0.25, 0.25))
    for name, pre in datasets.items():
        if not (pre / "preprocess.json").exists():
            src = raw if name == "etram" else map_raw_dataset(raw, work / f"raw_{name}", name)
            preprocess_dataset(src, pre, downsample="none", workers=1, progress=False)
    return datasets


def label_map_ids(target: str) -> np.ndarray:
    """Class id in the known map ``target`` of every eTraM class id under ``LABEL_MAPS[target]``, -1 where
    dropped; shape (8,), int64.

    Raises:
        ValueError: the mapping names a class outside the target map or eTraM, misses a target class, or
            maps one eTraM class twice.
    """
    from evdet.data.classes import ETRAM, KNOWN_CLASS_MAPS

    names, mapping = KNOWN_CLASS_MAPS[target].names, LABEL_MAPS[target]
    if sorted(mapping) != sorted(names):
        raise ValueError(f"LABEL_MAPS[{target!r}] maps to {sorted(mapping)}, the {target} classes are {list(names)}")
    ids = np.full(ETRAM.num_classes, -1, dtype=np.int64)
    for name, sources in mapping.items():
        for source in sources:
            if source not in ETRAM.names or ids[ETRAM.names.index(source)] >= 0:
                raise ValueError(f"LABEL_MAPS[{target!r}][{name!r}]: {source!r} is no eTraM class or is mapped twice")
            ids[ETRAM.names.index(source)] = names.index(name)
    return ids


def map_boxes(boxes: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """The boxes (BBOX_DTYPE, N) whose class ``ids`` keeps (``ids[class_id] >= 0``), class_id mapped; a copy."""
    new = ids[boxes["class_id"].astype(np.int64)]
    out = boxes[new >= 0].copy()
    out["class_id"] = new[new >= 0]
    return out


def map_raw_dataset(raw: Path, dst: Path, target: str) -> Path:
    """A copy of the raw dataset ``raw`` at ``dst`` whose labels are mapped to the known class map ``target``
    (``LABEL_MAPS``); its dataset.yaml names those classes and states the mapping. Returns ``dst``."""
    import shutil

    from evdet.data.classes import DATASET_YAML, KNOWN_CLASS_MAPS, write_dataset_yaml
    from evdet.data.labels import load_labels, save_labels
    from evdet.data.preprocess.inputs import discover_sequences
    from evdet.utils.yaml_files import load_yaml_file

    ids = label_map_ids(target)
    for split, _name, events, bbox in discover_sequences(raw):
        (dst / split).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(events, dst / split / events.name)
        save_labels(dst / split / bbox.name, map_boxes(load_labels(bbox), ids))
    meta = {k: v for k, v in load_yaml_file(raw / DATASET_YAML).items() if k != "classes"}
    write_dataset_yaml(dst, KNOWN_CLASS_MAPS[target], **meta,
                       label_map={k: list(v) for k, v in LABEL_MAPS[target].items()})
    return dst


def data_for(recipe: str) -> str:
    """Which of ``make_data``'s datasets ``recipe`` trains on: its ``data.class_map`` when mapped, else "etram"."""
    from evdet.experiments.records.run_config import load_run_config

    class_map = load_run_config([recipe]).data.class_map
    return class_map if class_map in LABEL_MAPS else "etram"


def measure(recipe: str, datasets: dict[str, Path], work: Path) -> dict:
    """Train ``recipe`` at golden size on its dataset of ``datasets`` (``make_data``, ``data_for``); its
    per-step losses and evaluation digest."""
    import torch

    from evdet.experiments.records.new import new_experiment
    from evdet.experiments.records.record import read_metrics_csv
    from evdet.experiments.running.runner import run_experiment

    torch.set_num_threads(1)
    root = work / "experiments"
    exp_id = recipe.replace("/", "_")
    if not (root / exp_id).exists():
        new_experiment(root, exp_id, "golden run", config_files=[recipe],
                       overrides=[f"data.root={datasets[data_for(recipe)]}", *SMALL])
    results = run_experiment(root, exp_id, progress=False)
    curves = read_metrics_csv(root / exp_id / "logs" / "metrics.csv")
    steps, losses = curves["train/loss"]
    digest = {}
    for proto, block in sorted(results["protocols"].items()):
        metrics = block.get("metrics", {})
        small = (block.get("groups", {}).get("small_road_users") or {}).get("AP")
        digest[proto] = {"AP": metrics.get("AP"), "AP50": metrics.get("AP50"), "small_AP": small}
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
        old = json.loads(GOLDEN.read_text()) if GOLDEN.exists() else {}
        everything = set(recipes) >= set(recipe_names())
        prov = provenance("make golden" if everything else f"{Path(__file__).relative_to(ROOT)} --update "
                          + " ".join(recipes))
        new = {r: m if everything else {**m, "provenance": prov} for r, m in measured.items()}
        runs = {**old.get("runs", {}), **new}
        unrunnable = {r: e for r, e in {**old.get("unrunnable", {}), **failed}.items() if r not in measured}
        doc = {"steps": STEPS, "resolution": list(RESOLUTION), "overrides": list(SMALL),
               "label_maps": {t: {k: list(v) for k, v in m.items()} for t, m in LABEL_MAPS.items()},
               "tolerance": {"loss_rtol": LOSS_RTOL, "metric_atol": METRIC_ATOL, "count_rtol": COUNT_RTOL},
               "provenance": prov if everything else old.get("provenance", prov), "runs": runs,
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
