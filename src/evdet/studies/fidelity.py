"""How far RVT-fidelity choices move AP at demo scale: post-processing, evaluation threshold, zoom.

Trains the demo model (nano, 320x180 generated data, mixed sampling so that both zoom modes act)
with zoom off and with RVT's zoom (random: in 0.64 / out 0.16, streams: out 0.5), ``seeds`` each,
then re-evaluates every checkpoint's one set of predictions (made at obj x cls >= 0.001) under
``rvt`` and ``clip_cap`` post-processing at thresholds 0.001 and 0.1. Writes::

    <out_dir>/raw, preprocessed/, experiments/    data and experiment records (resumable)
    <out_dir>/values/<run>.json                   each checkpoint's AP under every post-processing (cached)
    docs/results/fidelity/fidelity.json           per checkpoint values, paired deltas with intervals,
                                                  zoom on - off (Welch) with intervals; provenance (commit, machine, date)

Run: ``OMP_NUM_THREADS=1 python -m evdet.studies.fidelity <out_dir>`` (about 40 minutes on one shared core).
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

RESULTS = Path(__file__).resolve().parents[3] / "docs" / "results" / "fidelity" / "fidelity.json"
ZOOM_ON = ("data.augment.zoom_in_prob=0.64", "data.augment.zoom_out_prob=0.16",
           "data.augment.stream_zoom_out_prob=0.5")
POSTS = (("rvt", 0.001), ("rvt", 0.1), ("clip_cap", 0.001), ("clip_cap", 0.1))
METRICS = ("AP", "AP50")
PROTOCOLS = ("prophesee", "full")


@dataclass(frozen=True)
class FidelitySettings:
    resolution: tuple[int, int] = (180, 320)
    sequences: int = 9
    duration_s: float = 12.0
    data_seed: int = 0
    seeds: tuple[int, ...] = (0, 1)
    max_steps: int = 100


def train_arms(out_dir: Path, s: FidelitySettings) -> dict[str, Path]:
    """Checkpoints by run name ("zoom_off_s0", ...), trained (or found) under ``out_dir``."""
    from evdet.data.preprocess.dataset import preprocess_dataset
    from evdet.data.synthetic import generate_dataset
    from evdet.experiments.records.new import new_experiment
    from evdet.experiments.records.record import load_experiment
    from evdet.experiments.running.runner import run_experiment

    raw, pre, root = out_dir / "raw", out_dir / "preprocessed", out_dir / "experiments"
    if not (raw / "dataset.yaml").exists():
        generate_dataset(raw, sequences=s.sequences, duration_s=s.duration_s, resolution=s.resolution,
                         seed=s.data_seed)
    preprocess_dataset(raw, pre, downsample="none", workers=1)
    out = {}
    for seed in s.seeds:                       # seed-major: an interrupted study still holds paired arms
        for arm, extra in (("zoom_off", ()), ("zoom_on", ZOOM_ON)):
            name = f"{arm}_s{seed}"
            overrides = [f"data.root={pre.resolve()}", "data.sampling=mixed", "model.head.conf_threshold=0.001",
                         f"training.max_steps={s.max_steps}", f"training.val_every_n_steps={s.max_steps}",
                         f"training.seed={seed}", *extra]
            if not (root / name).exists():
                new_experiment(root, name, f"# {name}\nfidelity study arm", config_files=["demo"],
                               overrides=overrides, command="python -m evdet.studies.fidelity")
            exp = load_experiment(root, name)
            if exp.state != "completed":
                resume = (exp.path / "checkpoints" / "last.ckpt").exists()
                run_experiment(root, name, resume=resume, command="python -m evdet.studies.fidelity")
            out[name] = exp.path / "checkpoints" / "last.ckpt"
    return out


def evaluate_posts(ckpt: Path, pre: Path) -> dict:
    """protocol -> "post@thr" -> metric -> value, from one prediction pass at 0.001."""
    from evdet.evaluation.config import EvalConfig
    from evdet.evaluation.dataset import EvalSetup, evaluate_split, load_ground_truth
    from evdet.training.predict import load_module, predict_sequences

    module = load_module(ckpt)
    setup = EvalSetup.from_dataset(pre, EvalConfig(protocols=PROTOCOLS), module.data_cfg.class_map)
    names, _, dts = predict_sequences(module, pre, "val", progress=False, device="cpu",
                                      batch_size=module.data_cfg.eval_batch_size)
    truth = load_ground_truth(pre, "val", module.data_cfg.representation, names)
    out: dict = {p: {} for p in PROTOCOLS}
    for post, thr in POSTS:
        res = evaluate_split(replace(setup, postprocess=post, conf_threshold=thr), truth, dict(zip(names, dts)))
        for p in PROTOCOLS:
            out[p][f"{post}@{thr:g}"] = {m: res[p].metrics[m] for m in METRICS}
    return out


def cached_values(out_dir: Path, name: str, ckpt: Path) -> dict:
    """``evaluate_posts`` of one run, kept in ``<out_dir>/values/<name>.json`` (a resumed study reuses it)."""
    path = out_dir / "values" / f"{name}.json"
    if path.is_file():
        return json.loads(path.read_text())
    values = evaluate_posts(ckpt, out_dir / "preprocessed")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(values))
    return values


def summarize(values: dict) -> dict:
    """protocol -> metric -> comparison -> {mean, interval, ...}: paired deltas over every checkpoint
    (rvt - clip_cap; threshold 0.001 - 0.1) and zoom on - off over seeds (Welch)."""
    from evdet.experiments.statistics.intervals import seed_summary, welch_interval

    pairs = {"rvt - clip_cap at 0.001": ("rvt@0.001", "clip_cap@0.001"),
             "rvt - clip_cap at 0.1": ("rvt@0.1", "clip_cap@0.1"),
             "0.001 - 0.1 under rvt": ("rvt@0.001", "rvt@0.1"),
             "0.001 - 0.1 under clip_cap": ("clip_cap@0.001", "clip_cap@0.1")}
    out: dict = {}
    for p in PROTOCOLS:
        for m in METRICS:
            rows = out.setdefault(p, {}).setdefault(m, {})
            for label, (a, b) in pairs.items():
                deltas = [values[r][p][a][m] - values[r][p][b][m] for r in values]
                sm = seed_summary(deltas)
                rows[label] = {"deltas": deltas, "mean": sm.mean, "low": sm.low, "high": sm.high, "n": sm.n,
                               "method": "95% t interval over the checkpoints (paired)"}
            off = [values[r][p]["rvt@0.001"][m] for r in values if r.startswith("zoom_off")]
            on = [values[r][p]["rvt@0.001"][m] for r in values if r.startswith("zoom_on")]
            if len(off) >= 2 and len(on) >= 2:
                mean, low, high, dof = welch_interval(off, on)
                rows["zoom on - off"] = {"off": off, "on": on, "mean": mean, "low": low, "high": high, "dof": dof,
                                         "method": "95% Welch t interval over seeds, rvt @ 0.001"}
    return out


def run_fidelity(out_dir: Path, s: FidelitySettings = FidelitySettings(), results: Path = RESULTS) -> dict:
    import torch

    torch.set_num_threads(1)
    t0 = time.monotonic()
    ckpts = train_arms(Path(out_dir), s)
    values = {name: cached_values(Path(out_dir), name, ckpt) for name, ckpt in ckpts.items()}
    from evdet.utils.provenance import provenance

    doc = {"provenance": provenance(command="python -m evdet.studies.fidelity"),
           "settings": {"resolution_hw": list(s.resolution), "sequences": s.sequences, "duration_s": s.duration_s,
                        "seeds": list(s.seeds), "max_steps": s.max_steps, "model": "nano (configs/demo.yaml)",
                        "sampling": "mixed", "run_conf_threshold": 0.001, "zoom_on": list(ZOOM_ON)},
           "values": values, "summary": summarize(values), "wall_s": round(time.monotonic() - t0, 1)}
    results.parent.mkdir(parents=True, exist_ok=True)
    results.write_text(json.dumps(doc, indent=1, sort_keys=False) + "\n")
    return doc


if __name__ == "__main__":
    run_fidelity(Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/evdet_fidelity"))
