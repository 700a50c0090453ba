"""The evaluated seed runs of a record: their results, per-seed metric values and saved validation files."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from evdet.experiments.records.metric_keys import metric_value, split_metric_key
from evdet.experiments.records.record import Experiment, run_dirs
from evdet.experiments.records.views import ResultsView
from evdet.experiments.statistics.validation_data import DETECTIONS_FILE


def run_results(exp: Experiment) -> list[tuple[str, ResultsView, Path]]:
    """(seed, the run's results as a ResultsView, run dir) of every evaluated seed run, in seed order.

    Completed runs count; while none is completed, every run with results does. A schema-1 record
    (no ``runs``) is one run: the record itself.
    """
    res = exp.typed_results
    if not res.runs:
        return [("", res, exp.path)]
    dirs = run_dirs(exp)
    evaluated = [(s, r) for s, r in res.runs.items() if r.protocols]
    chosen = [(s, r) for s, r in evaluated if r.completed] or evaluated
    return [(s, ResultsView(protocols=r.protocols, monitors=r.monitors, step=r.step), dirs.get(s, exp.path))
            for s, r in chosen]


def seed_values(exp: Experiment, metric: str, protocol: Optional[str] = None) -> list[Optional[float]]:
    """The metric of each evaluated seed run, in seed order (None where a run lacks it)."""
    proto = split_metric_key(metric)[0] or protocol or exp.typed_results.headline_protocol
    return [metric_value(doc, metric, proto) for _, doc, _ in run_results(exp)]


def detection_files(exp: Experiment) -> list[Path]:
    """Saved validation detections of the evaluated seed runs (only when every run has them)."""
    files = [d / "validation" / DETECTIONS_FILE for _, _, d in run_results(exp)]
    return files if files and all(f.exists() for f in files) else []
