"""The evaluated seed runs of a record: their results, per-seed metric values and saved validation files."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from evdet.experiments.records.metric_keys import headline_protocol, metric_value, split_metric_key
from evdet.experiments.records.record import Experiment, run_dirs
from evdet.experiments.statistics.validation_data import DETECTIONS_FILE


def run_results(exp: Experiment) -> list[tuple[str, dict, Path]]:
    """(seed, results-like document, run dir) of every evaluated seed run, in seed order.

    Completed runs count; while none is completed, every run with results does. A schema-1 record
    (no ``runs``) is one run: the record itself.
    """
    runs = exp.results.get("runs") or {}
    dirs = run_dirs(exp)
    evaluated = [(s, r) for s, r in runs.items() if isinstance(r, dict) and r.get("protocols")]
    done = [(s, r) for s, r in evaluated if r.get("status") == "completed"]
    chosen = done or evaluated
    if not runs:
        return [("", exp.results, exp.path)]
    return [(s, {"protocols": r.get("protocols", {}), "monitors": r.get("monitors", {}),
                 "step": r.get("step", 0)}, dirs.get(s, exp.path)) for s, r in chosen]


def seed_values(exp: Experiment, metric: str, protocol: Optional[str] = None) -> list[Optional[float]]:
    """The metric of each evaluated seed run, in seed order (None where a run lacks it)."""
    proto = split_metric_key(metric)[0] or protocol
    return [metric_value(doc, metric, proto or headline_protocol(exp.results)) for _, doc, _ in run_results(exp)]


def detection_files(exp: Experiment) -> list[Path]:
    """Saved validation detections of the evaluated seed runs (only when every run has them)."""
    files = [d / "validation" / DETECTIONS_FILE for _, _, d in run_results(exp)]
    return files if files and all(f.exists() for f in files) else []
