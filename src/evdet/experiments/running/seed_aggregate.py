"""results.json's top level from its seed runs: the mean over seeds and the per-metric seed statistics.

One run: its results as they are. Several: the first run's documents with every scalar a metric key
names (``records.metric_keys.scalar_leaves``) replaced by the mean over seeds, and ``seed_aggregate``
naming the seeds (confusion, counts, PR curves stay the first run's); ``seed_stats`` holds n, mean,
std and the 95% t-interval of each scalar and monitor with the per-seed values.
"""

from __future__ import annotations

import copy
from typing import Optional

from evdet.experiments.records.metric_keys import scalar_leaves
from evdet.experiments.records.views import ProtocolView, ResultsView, RunView
from evdet.experiments.statistics.intervals import seed_summary


def _numeric(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _set_leaf(block: dict, key: str, value: Optional[float]) -> None:
    """Inverse of ``scalar_leaves`` for one key: ``AP`` -> metrics, ``per_class.car.AP`` -> per_class."""
    parts = key.split(".")
    if len(parts) == 1:
        block["metrics"][key] = value
    else:
        block[parts[0]][".".join(parts[1:-1])][parts[-1]] = value


def aggregated_runs(view: ResultsView) -> list[str]:
    """Keys of the runs to aggregate, in seed order: the completed ones (while none is, the evaluated ones)."""
    evaluated = [k for k in (str(s) for s in view.seeds) if k in view.runs and view.runs[k].protocols]
    return [k for k in evaluated if view.runs[k].completed] or evaluated


def _protocol_stats(protocols: dict, runs: list[RunView], seeds: list) -> dict:
    """Per protocol and metric key: the seed summary; replaces the scalars of ``protocols`` by the means."""
    stats: dict = {}
    for p, block in protocols.items():
        leaves = [scalar_leaves(r.protocols.get(p) or ProtocolView()) for r in runs]
        stats[p] = {}
        for key in leaves[0]:
            values = [lv.get(key) for lv in leaves]
            summary = seed_summary([v for v in values if _numeric(v)])
            stats[p][key] = {**summary.to_dict(), "values": values}
            if len(runs) > 1:
                _set_leaf(block, key, summary.mean)
        if len(runs) > 1:
            block["seed_aggregate"] = {"seeds": seeds, "statistic": "mean",
                                       "first_seed_only": ["confusion", "counts", "pr_curves"]}
    return stats


def _monitor_stats(runs: list[RunView]) -> tuple[dict, dict]:
    """(monitors: the mean of numeric monitors, else the per-seed values; their seed summaries)."""
    monitors, stats = dict(runs[0].monitors), {}
    for name in list(monitors):
        values = [r.monitors.get(name) for r in runs]
        if all(_numeric(x) for x in values):
            summary = seed_summary(values)
            stats[name] = {**summary.to_dict(), "values": values}
            monitors[name] = summary.mean
        elif len(runs) > 1:
            monitors[name] = [x for x in values if x is not None] or None
    return monitors, stats


def aggregate_runs(results: dict) -> None:
    """Fill ``protocols``, ``seed_stats``, ``monitors`` and ``step`` of ``results`` from its ``runs`` (module doc)."""
    view = ResultsView.from_dict(results)
    chosen = aggregated_runs(view)
    if not chosen:
        return
    runs = [view.runs[k] for k in chosen]
    seeds = [r.seed for r in runs]
    protocols = copy.deepcopy(results["runs"][chosen[0]]["protocols"])      # the document written back
    protocol_stats = _protocol_stats(protocols, runs, seeds)
    monitors, monitor_stats = _monitor_stats(runs)
    results.update(protocols=protocols, seed_stats={"seeds": seeds, "protocols": protocol_stats,
                                                    "monitors": monitor_stats},
                   monitors=monitors, step=min(r.step for r in runs))
