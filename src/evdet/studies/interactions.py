"""Do single effects add up? The interaction of each combination variant of a study.

For a variant that ``combines`` k single-change variants (each a change of the same baseline):

    I = (combo - base) - sum_i (single_i - base) = m_combo - sum_i m_i + (k - 1) m_base

of the small-road-user AP, per protocol. Its interval is the pooled t-interval of that contrast
(``statistics.intervals.pooled_contrast``): the seed variance pooled over every record of the study,
standard error ``s_p * sqrt(1/n_combo + sum_i 1/n_i + (k - 1)^2 / n_base)``. The effects add up
when the interval contains 0; a negative I means the combination is worth less than its parts.
"""

from __future__ import annotations

from typing import Optional

from evdet.experiments.statistics.intervals import IntervalError, pooled_contrast
from evdet.studies.study_plan import MatrixPlan
from evdet.studies.summary_rows import SummaryRow


def _seeds(row: Optional[dict], proto: str) -> list[float]:
    """The per-seed small-road-user AP of a summary row under ``proto`` (none for a missing row)."""
    if row is None:
        return []
    return [v for v in SummaryRow.from_dict(row).protocol(proto).small_AP_seeds if v is not None]


def interaction_rows(plan: MatrixPlan, rows: list[dict], protocols: tuple[str, ...]) -> list[dict]:
    """One entry per combination variant of ``plan`` present in ``rows`` (the matrix summary's rows):
    ``{id, combines, protocols: {p: {estimate, low, high, dof, adds_up} or {error}}}``."""
    by_id = {r["id"]: r for r in rows}
    groups = {p: [_seeds(r, p) for r in rows] for p in protocols}
    out = []
    for vid in plan.variants:
        parts = plan.variant(vid).combines
        if not parts or vid not in by_id:
            continue
        entry = {"id": vid, "combines": list(parts), "protocols": {}}
        for proto in protocols:
            samples = [_seeds(by_id.get(vid), proto), *(_seeds(by_id.get(c), proto) for c in parts),
                       _seeds(by_id.get(plan.baseline), proto)]
            coefs = [1.0, *[-1.0] * len(parts), float(len(parts) - 1)]
            try:
                est, low, high, dof = pooled_contrast(samples, coefs, groups[proto])
            except IntervalError as err:
                entry["protocols"][proto] = {"error": str(err)}
                continue
            entry["protocols"][proto] = {"estimate": est, "low": low, "high": high, "dof": dof,
                                         "adds_up": bool(low <= 0.0 <= high)}
        out.append(entry)
    return out


def interactions_markdown(entries: list[dict], protocols: tuple[str, ...]) -> list[str]:
    """The interactions as a markdown section (empty when the study has no combination)."""
    if not entries:
        return []
    head = "| combination | combines | " + " | ".join(f"interaction `{p}`" for p in protocols) + " |"
    lines = ["## Do the effects add up?", "",
             "Interaction I = (combination - baseline) - sum of the single effects, small-road-user AP, "
             "95% pooled t-interval of the contrast; 'adds up' when it contains 0.", "",
             head, "|" + "---|" * (2 + len(protocols))]
    for e in entries:
        cells = []
        for p in protocols:
            b = e["protocols"].get(p, {})
            if "estimate" not in b:
                cells.append(f"– ({b.get('error', 'no value')})")
            else:
                verdict = "adds up" if b["adds_up"] else ("less than its parts" if b["high"] < 0 else "more than its parts")
                cells.append(f"{b['estimate']:+.4f} [{b['low']:+.4f}, {b['high']:+.4f}] {verdict}")
        lines.append(f"| `{e['id']}` | {', '.join(f'`{c}`' for c in e['combines'])} | " + " | ".join(cells) + " |")
    return lines + [""]
