"""Results of the small-object matrix: per-variant rows with intervals, tables, markdown.

Every interval comes from the one interval policy (``experiments.statistics.policy``).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Optional

from evdet.experiments.records.metric_keys import metric_value
from evdet.experiments.records.views import ResultsView
from evdet.studies.interactions import interaction_rows, interactions_markdown
from evdet.studies.study_plan import MatrixPlan
from evdet.studies.summary_rows import SMALL_METRIC, summary_rows
from evdet.utils.formatting import number

EFFECTS_PLOT = "effects.png"
PROTOCOLS = ("prophesee", "full")


def filter_effect(pre_root: Path, representation: str, class_names: Sequence[str],
                  split: str = "val") -> dict[str, dict]:
    """Per class: ground-truth boxes after the skip-first rule and the share the Prophesee size
    filter removes, at the evaluated (input) resolution.

    Returns:
        {class name: {"boxes": n, "removed": n_removed, "removed_share": share or None}}, plus "all".
    """
    import numpy as np

    from evdet.data.preprocessed import read_preprocess_info
    from evdet.evaluation.dataset import load_ground_truth
    from evdet.evaluation.protocols import get_protocol

    h, w = read_preprocess_info(pre_root)["repr_hw"]
    truth = load_ground_truth(pre_root, split, representation)
    boxes = np.concatenate([t.boxes for t in truth.values()])
    timed = get_protocol("full").box_filter(h, w).keep_mask(boxes)
    kept = get_protocol("prophesee").box_filter(h, w).keep_mask(boxes)
    out = {}
    for cid, name in [*enumerate(class_names), (-1, "all")]:
        sel = timed if cid < 0 else timed & (boxes["class_id"] == cid)
        n, n_kept = int(sel.sum()), int((sel & kept).sum())
        out[name] = {"boxes": n, "removed": n - n_kept, "removed_share": (n - n_kept) / n if n else None}
    return out


def _fmt(v: Optional[float], signed: bool = False) -> str:
    return number(v, signed=signed, missing="–")


def _interval_text(d, signed: bool = False) -> str:
    """``mean [low, high]`` of a Difference (signed for deltas); "–" without a result."""
    if d is None or d.mean is None:
        return "–"
    fmt = "{:+.4f}" if signed else "{:.4f}"
    if not d.has_interval:
        return fmt.format(d.mean) + (" (no interval)" if signed else "")
    return f"{fmt.format(d.mean)} [{fmt.format(d.low)}, {fmt.format(d.high)}]"


def summarize_records(root: Path, changes: dict[str, str], base_id: str, pre_root: Optional[Path],
                      seeds_planned: Sequence[int] = (), n_boot: int = 100) -> dict:
    """Small-road-user numbers of some records, per protocol, with 95% intervals and verdicts.

    Args:
        root: experiment records folder.
        changes: {experiment id: what it changes, in words}, in table order (the base first).
        base_id: the reference every delta refers to.
        pre_root: preprocessed dataset of the base (for the filter's effect), or None.
        seeds_planned: seeds each record should have (default: its own config's).
    Returns:
        {"rows": [{id, change, state, seeds_planned, seeds_done, wall_s_per_run, step, protocols
        {p: {AP, AP50, small_AP, *_seeds (per seed), *_interval, delta_small, delta_small_holm}},
        verdict, criteria}], "filter_effect", "generated_at", "provenance"} (read back through
        ``summary_rows.SummaryRow``). Every interval comes from the one interval policy
        (``statistics.policy``); ``changes`` is declared a pool (one recipe, so the seed variance is
        pooled over its records; ``create_records`` writes the same pool for the other doors), and the
        Δs of the variants against ``base_id`` form one family with a Holm correction per protocol.
    """
    from evdet.experiments.records.record import load_experiment
    from evdet.experiments.statistics import policy as interval_policy
    from evdet.utils.provenance import provenance

    exps = {vid: load_experiment(root, vid) for vid in changes if (root / vid).exists()}
    base = exps.get(base_id)
    policy = interval_policy.IntervalPolicy(n_boot=n_boot, pools=(tuple(changes),))
    rows = [_record_row(vid, change, exps.get(vid), base if vid != base_id else None, seeds_planned, policy)
            for vid, change in changes.items()]
    _holm(rows, base_id)
    summary = {"rows": rows, "generated_at": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
               "provenance": provenance()}
    effect = _baseline_filter_effect(base, pre_root)
    if effect is not None:
        summary["filter_effect"] = effect
    return summary


def _record_row(vid: str, change: str, e, base, seeds_planned: Sequence[int], policy) -> dict:
    """The summary row of record ``vid`` (``e`` None: not created); ``base`` None for the baseline itself."""
    res = e.typed_results if e else ResultsView()
    done = [r for r in res.runs.values() if r.completed]
    planned = list(seeds_planned) or list((e.config.get("seeds") if e else None) or [0])   # config.yaml as written
    row = {"id": vid, "change": change, "state": e.state if e else "not created",
           "seeds_planned": planned, "seeds_done": [int(r.seed) for r in done],
           "wall_s_per_run": [float(r.training.wall_s or 0.0) for r in done], "step": res.step, "protocols": {}}
    evaluated = e is not None and bool(done)
    for proto in PROTOCOLS:
        row["protocols"][proto] = _protocol_cells(e, base, proto, policy, evaluated)
    if evaluated:
        row.update(_verdict_cells(e, base, policy))
    return row


def _protocol_cells(e, base, proto: str, policy, evaluated: bool) -> dict:
    """AP, AP50, small AP of one protocol: values, per-seed values, intervals and the Δ small AP vs ``base``."""
    from evdet.experiments.statistics import policy as interval_policy
    from evdet.experiments.statistics.intervals import IntervalError, seed_values

    block: dict = {}
    for metric in ("AP", "AP50", SMALL_METRIC):
        key = f"{proto}/{metric}"
        block[metric] = metric_value(e.typed_results, key) if evaluated else None
        block[f"{metric}_seeds"] = seed_values(e, key) if evaluated else []
        if not evaluated or block[metric] is None:
            continue
        try:
            block[f"{metric}_interval"] = interval_policy.value(e, key, policy=policy).to_dict()
            if base is not None and metric == SMALL_METRIC and metric_value(base.typed_results, key) is not None:
                block["delta_small"] = interval_policy.difference(base, e, key, policy=policy).to_dict()
        except IntervalError as err:
            block[f"{metric}_interval_error"] = str(err)
    return block


def _verdict_cells(e, base, policy) -> dict:
    """``verdict`` and ``criteria`` of a record's hypothesis; a verdict that cannot be formed is reported."""
    from evdet.experiments.analysis.verdict import judge, overall_verdict, parse_criteria

    try:
        results = judge(parse_criteria(e.hypothesis), e, base, policy=policy)
        return {"verdict": overall_verdict(results),
                "criteria": [f"{r.criterion.text}: {r.decision} ({r.reason})" for r in results]}
    except Exception as err:  # a verdict that cannot be formed is reported, not fatal
        return {"verdict": f"error: {err}"}


def _baseline_filter_effect(base, pre_root: Optional[Path]) -> Optional[dict]:
    """``filter_effect`` on the baseline's data with its per-class AP under both protocols (None without it)."""
    names = list(base.typed_results.class_names) if base is not None else []
    if not names or pre_root is None or not Path(pre_root).exists():
        return None
    cfg_repr = (base.config.get("data") or {}).get("representation", "stacked_histogram_dt=50_nbins=10")
    effect = filter_effect(Path(pre_root), cfg_repr, names)
    for name in names:
        effect[name]["AP_full"] = metric_value(base.typed_results, f"full/per_class.{name}.AP")
        effect[name]["AP_prophesee"] = metric_value(base.typed_results, f"prophesee/per_class.{name}.AP")
    return effect


def _holm(rows: list[dict], base_id: str) -> None:
    """``delta_small_holm`` of each variant: Holm over the family of Δs against ``base_id``, per protocol."""
    from evdet.experiments.statistics.multiplicity import holm_family

    views = summary_rows({"rows": rows})
    for proto in PROTOCOLS:
        family = {r.id: r.protocol(proto).delta_small for r in views
                  if r.id != base_id and r.protocol(proto).delta_small is not None}
        for vid, res in holm_family(family).items():
            next(r for r in rows if r["id"] == vid)["protocols"][proto]["delta_small_holm"] = res.to_dict()


def summarize(plan: MatrixPlan, work: Path, n_boot: int = 100) -> dict:
    """Numbers of the matrix as it stands (see :func:`summarize_records`), with its plan."""
    changes = {vid: plan.variant(vid).change for vid in plan.variants}
    summary = summarize_records(work / "experiments", changes, plan.baseline, work / "input",
                                seeds_planned=plan.seeds, n_boot=n_boot)
    plan_doc = {k: v for k, v in asdict(plan).items() if k != "catalog"}
    return {"plan": plan_doc, **summary, "interactions": interaction_rows(plan, summary["rows"], PROTOCOLS)}


def small_object_tables(summary: dict, base_id: Optional[str] = None,
                        input_text: str = "the input") -> list[tuple[str, str, list[str], list[list[str]]]]:
    """The small-road-user table, the overall table and the filter's effect, as data.

    Returns:
        [(title, note, headers, rows)] with cells as plain text (identifiers in backticks).
    """
    from evdet.experiments.statistics.multiplicity import holm_text
    from evdet.experiments.statistics.policy import effect_word

    rows = summary_rows(summary)
    base_id = base_id or rows[0].id                     # the rows are in table order, the base first
    small = []
    for r in rows:
        walls = r.wall_s_per_run
        is_base = r.id == base_id
        cells = [f"`{r.id}`", r.change, f"{len(r.seeds_done)}/{len(r.seeds_planned)}",
                 f"{sum(walls) / len(walls):.0f}" if walls else "–"]
        for block in (r.protocol("full"), r.protocol("prophesee")):
            d = block.delta_small
            cells += [_interval_text(block.small_AP_interval),
                      "(reference)" if is_base else _interval_text(d, signed=True),
                      "" if is_base else effect_word(d), "" if is_base else holm_text(block.delta_small_holm)]
        small.append(cells + [r.verdict])
    overall = [[f"`{r.id}`", r.state, str(r.step), _fmt(r.protocol("prophesee").AP), _fmt(r.protocol("prophesee").AP50),
                _fmt(r.protocol("full").AP), _fmt(r.protocol("full").AP50)] for r in rows]
    tables = [("Small road users (pedestrian, bicycle, motorbike, wheelchair)",
               "AP of the small_road_users group (mean over finished seeds) and Δ = variant - baseline, each "
               "with a 95% interval from evdet's one interval policy: once a record holds two seeds, a "
               "t-interval whose seed variance is pooled over every record with two or more seeds (one "
               "recipe, so one seed variance is assumed); before that, a paired bootstrap over the validation "
               "data, widened by the recipe's noise profile when one matches, else evaluation noise only. "
               "'helps' / 'hurts' only when an interval that covers training noise lies wholly above / below "
               "0. Holm: the Δs against the baseline are one family; the Holm-adjusted p-value (from each "
               "unadjusted interval) says whether the Δ survives a family-wise 5% error rate.",
               ["variant", "change", "seeds done", "s per run", "full small AP", "Δ vs baseline (full)",
                "effect (full)", "Holm (full)", "prophesee small AP", "Δ vs baseline (prophesee)",
                "effect (prophesee)", "Holm (prophesee)", "verdict"], small),
              ("Overall", "", ["variant", "state", "step", "prophesee AP", "prophesee AP50", "full AP",
                               "full AP50"], overall)]
    effect = summary.get("filter_effect")
    if effect:
        cells = []
        for name, d in effect.items():
            share = "–" if d["removed_share"] is None else f"{100 * d['removed_share']:.0f}%"
            cells.append([name, str(d["boxes"]), f"{d['removed']} ({share})", _fmt(d.get("AP_full")),
                          _fmt(d.get("AP_prophesee"))])
        tables.append(("What the Prophesee filter hides (validation ground truth, baseline AP)",
                       f"Boxes after the skip-first 0.5 s rule at {input_text}; the filter drops boxes with a "
                       "diagonal under 60 px or a side under 20 px at 1280x720 (scaled with the width). AP per "
                       "class of the baseline under full (every box) and prophesee (filtered boxes only).",
                       ["class", "boxes", "removed by the filter", "AP full (all boxes)",
                        "AP prophesee (filtered)"], cells))
    return tables


def tables_markdown(tables, level: str = "##") -> list[str]:
    lines = []
    for title, note, headers, rows in tables:
        lines += [f"{level} {title}", ""] + ([note, ""] if note else [])
        lines += ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
        lines += ["| " + " | ".join(row) + " |" for row in rows] + [""]
    return lines


def tables_html(tables) -> str:
    """The tables as an HTML section (for the top of a report): the report's one table builder, cells as
    plain text with `identifiers` in code."""
    from evdet.experiments.report.html import code_text, esc, table

    parts = []
    for title, note, headers, rows in tables:
        parts.append(f"<h2>{esc(title)}</h2>" + (f"<p>{esc(note)}</p>" if note else ""))
        parts.append(table(headers, [[code_text(c) for c in row] for row in rows]))
    return "\n".join(parts)


def results_markdown(summary: dict, commands: dict[str, str], one_command: str, machine: str,
                     root: Path, out_dir: Optional[Path] = None) -> str:
    """results.md: what was run, how, what finished, and per variant the small-road-user effect."""
    plan = summary["plan"]
    rows = summary["rows"]
    h, w = plan["sensor_hw"]
    lines = [f"# {plan.get('title', 'evdet small-object matrix')} ({plan['name'].upper()} plan)", "",
             plan.get("question", ""), "",
             f"Generated {summary['generated_at']} on {machine}.", "",
             f"Data: {plan['sequences']} generated eTraM-like sequences of {plan['duration_s']:g} s at {w}x{h} "
             f"(data seed {plan['data_seed']}), input {w // 2}x{h // 2} (reference 2x2 nearest downsampling; "
             f"`input: full` variants at {w}x{h}). Recipes `{', '.join(plan['recipes'])}`, {plan['max_steps']} steps "
             "per run, "
             f"seeds {plan['seeds']}. Validation split, `prophesee` and `full` protocols, RVT scoring "
             "(each protocol's default).", "",
             "Reproduce (resumes where it stopped; several processes may share the work folder):", "",
             f"    {one_command}", "",
             "Intervals: 95%. Δ vs the baseline: a t-interval with the seed variance pooled over every "
             "record with >= 2 finished seeds (one recipe, one seed variance assumed), so variants with "
             "fewer seeds still get the training noise; a variant's own AP likewise (mean +- t * s_pooled / "
             "sqrt(seeds)). Before any record has two seeds: a paired bootstrap over validation sequences or "
             "blocks of label frames (the spread of the evaluation data only, not of training). "
             "results.json also holds the pairwise Welch / bootstrap interval of every Δ.", ""]
    if out_dir is not None and (Path(out_dir) / EFFECTS_PLOT).exists():
        lines += [f"![Δ small-road-user AP per variant]({EFFECTS_PLOT})", ""]
    lines += tables_markdown(small_object_tables(summary, input_text=f"the {w // 2}x{h // 2} input"))
    lines += interactions_markdown(summary.get("interactions") or [], PROTOCOLS)
    unfinished = [r for r in rows if len(r["seeds_done"]) < len(r["seeds_planned"])]
    lines += ["## What finished", ""]
    if not unfinished:
        lines.append("Every variant finished every planned seed.")
    for r in unfinished:
        lines.append(f"- `{r['id']}`: {len(r['seeds_done'])} of {len(r['seeds_planned'])} seeds finished "
                     f"(state {r['state']}, last evaluated step {r['step']}).")
    lines += ["", "## Commands of the records", ""] + [f"    {c}" for c in commands.values()]
    lines += ["", "Rank and compare them with the ordinary tools, e.g.:", "",
              f"    evdet exp rank --root {root} --by full/small_AP",
              f"    evdet exp verdict {rows[-1]['id']} --root {root}",
              f"    evdet exp report --root {root}", ""]
    return "\n".join(lines)
