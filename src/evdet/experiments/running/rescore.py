"""Score a record again: its saved validation detections under the current evaluation code.

When a protocol's rule changes after a run (a post-processing default, a box filter), the record's
metrics and the intervals recomputed from its ``validation/detections.npz`` would otherwise disagree.
``rescore_record`` evaluates every seed run's saved ground truth and detections again, under each
protocol the run holds, with the keyword arguments saved beside them, replaces the run's protocol
results, and aggregates over seeds as the runner does. The detections are the model's candidates as
validation saved them; nothing is predicted again. The record notes when and at which commit it was
rescored (``rescored``).
"""

from __future__ import annotations

import time
from pathlib import Path

from evdet.experiments.records.record import atomic_write_json, load_experiment, run_dirs
from evdet.experiments.records.record_lock import RecordLock
from evdet.experiments.running.seed_aggregate import aggregate_runs
from evdet.experiments.statistics.intervals import DETECTIONS_FILE, evaluate_saved, load_validation_detections


def rescore_record(root: Path, exp_id: str) -> dict:
    """Rewrite ``results.json`` of ``exp_id`` from its runs' saved detections (module doc); returns it.

    Raises:
        RecordError: no such record; RecordBusy: a live process runs it; IntervalError: a run's detections
            file cannot be read.
    """
    exp = load_experiment(root, exp_id)
    with RecordLock(exp.path):          # not while a run writes the record
        return _rescore(load_experiment(root, exp_id))


def _rescore(exp) -> dict:
    from evdet.utils.provenance import git_info

    results = dict(exp.results)
    dirs = run_dirs(exp)
    for seed, run in exp.typed_results.runs.items():
        path = dirs[seed] / "validation" / DETECTIONS_FILE
        if not run.protocols or not path.exists():
            continue
        data = load_validation_detections(path)
        results["runs"][seed]["protocols"] = {p: evaluate_saved(data.gts, data.dts, p, data.eval_kwargs)
                                              for p in run.protocols}
    aggregate_runs(results)
    results["rescored"] = {"at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                           "git": git_info(Path(__file__).parent)}
    atomic_write_json(exp.path / "results.json", results)
    return results

