"""The demo's results file: every number the README quotes for the demo, with commit, machine and date.

``evdet demo --out DIR`` writes ``DIR/results.json`` (and ``--results PATH`` a copy, e.g.
``docs/results/demo/results.json``, the file the README's demo figures are read from)::

    {"provenance": {commit, dirty, machine, date, command}, "settings": {...},
     "wall_s": {"training": {id: s}, "total": s}, "trained_at": {id: {git, machine}},
     "records": {id: {protocol: {"AP", "AP50", "small_AP", "per_class": {name: {"AP", "AP50", "support"}}}}},
     "small_road_users": {id: {protocol: {"value": interval, "delta": interval, "effect": word}}},
     "verdicts": {id: {"overall": word, "criteria": [{"criterion", "decision", "interval", "reason"}]}},
     "interval_note": text, "filter_effect": {...}}

Intervals are ``Difference.to_dict()`` of the one interval policy (method and whether it covers
training noise included).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

from evdet.studies.summary_rows import summary_rows
from evdet.utils.atomic import write_text_atomic

PROTOCOLS = ("prophesee", "full")


def interval_note(summary: dict, base_id: str) -> str:
    """Which interval the demo's Δs got, in words (for the report and the results file)."""
    deltas = [r.protocol("full").delta_small for r in summary_rows(summary) if r.id != base_id]
    d = next((x for x in deltas if x is not None), None)
    if d is None or not d.has_interval:
        return "No interval could be computed for the Δ (see the verdict lines)."
    if d.covers_training_noise:
        return (f"One seed per experiment. Each Δ interval is '{d.method}': the paired bootstrap over the "
                f"evaluation data widened by the training noise of the recipe's noise profile ({d.detail}). "
                "It covers training noise, so the words helps / hurts and supported / rejected apply.")
    return (f"One seed per experiment and no noise profile matches this recipe and data: each Δ interval is "
            f"'{d.method}', evaluation noise only. A Δ outside it is 'beyond evaluation noise', and the verdict "
            "stays inconclusive; evdet exp noise (a profile) or --seeds measure the training noise.")


def _record_numbers(exp) -> dict:
    from evdet.experiments.records.metric_keys import metric_value

    out, res = {}, exp.typed_results
    for proto in PROTOCOLS:
        out[proto] = {m: metric_value(res, f"{proto}/{m}") for m in ("AP", "AP50", "small_AP")}
        out[proto]["per_class"] = {name: {"AP": c.AP, "AP50": c.AP50, "support": c.support}
                                   for name, c in res.protocol(proto).per_class.items()}
    return out


def _trained_at(exp) -> dict:
    """Commit (and dirty flag) and machine a record trained on (its environment.json; a resumed
    demo can train and report at different commits)."""
    try:
        env = json.loads((exp.path / "environment.json").read_text())
    except (OSError, ValueError):
        return {}
    return {"git": env.get("git"), "machine": env.get("machine")}


def _wall_s(exp) -> float:
    return float(sum(r.training.wall_s or 0.0 for r in exp.typed_results.runs.values()))


def demo_results(root: Path, summary: dict, base_id: str, variant_id: str, settings: dict,
                 total_s: float, command: str) -> dict:
    """The results document (module doc) of a finished demo under ``root``."""
    from evdet.experiments.analysis.verdict import judge, overall_verdict, parse_criteria
    from evdet.experiments.records.record import load_experiment
    from evdet.experiments.statistics.policy import IntervalPolicy, effect_word
    from evdet.utils.provenance import provenance

    exps = {i: load_experiment(root, i) for i in (base_id, variant_id)}
    policy = IntervalPolicy(n_boot=int(settings.get("n_boot", 50)))
    verdicts = {}
    for i, exp in exps.items():
        base = exps[base_id] if i != base_id else None
        res = judge(parse_criteria(exp.hypothesis), exp, base, policy=policy)
        verdicts[i] = {"overall": overall_verdict(res),
                       "criteria": [{"criterion": r.criterion.text, "decision": r.decision,
                                     "interval": r.interval.to_dict() if r.interval else None, "reason": r.reason}
                                    for r in res]}
    small = {}
    for row in summary_rows(summary):
        small[row.id] = {}
        for proto in PROTOCOLS:
            b = row.protocol(proto)
            value, delta = b.small_AP_interval, b.delta_small
            small[row.id][proto] = {"value": value.to_dict() if value else None,
                                    "delta": delta.to_dict() if delta else None,
                                    "holm": dict(b.delta_small_holm) if b.delta_small_holm is not None else None,
                                    "effect": effect_word(delta) if delta else None}
    return {"provenance": provenance(command), "settings": settings,
            "wall_s": {"training": {i: _wall_s(e) for i, e in exps.items()}, "total": total_s},
            "records": {i: _record_numbers(e) for i, e in exps.items()}, "small_road_users": small,
            "trained_at": {i: _trained_at(e) for i, e in exps.items()},
            "verdicts": verdicts, "interval_note": interval_note(summary, base_id),
            "filter_effect": summary.get("filter_effect")}


def write_demo_results(doc: dict, *paths: Optional[Path]) -> list[Path]:
    """Write the results document to every given path (atomic)."""
    text = json.dumps(doc, indent=1, default=float) + "\n"
    return [write_text_atomic(Path(p), text) for p in paths if p is not None]
