"""HTML sections of the designed experiments (ablations, bisections, sweeps) for the experiment report.

Reads the summaries that ``ablate``, ``bisect`` and ``sweep`` leave in ``<root>/_designs/<name>.json``
(a sweep also leaves ``<name>_history.png`` and ``<name>_importances.png`` there), so the report needs
no database access: it adds ``designs_report_html(root)`` to its page.
"""

from __future__ import annotations

import json
from pathlib import Path

from evdet.experiments.report.html import esc, img_file, table
from evdet.experiments.statistics.intervals import Difference
from evdet.experiments.statistics.multiplicity import holm_text


def load_design_summaries(root: Path) -> list[dict]:
    """Every ``<root>/_designs/*.json`` summary, by name (unreadable files are skipped)."""
    out = []
    for path in sorted((Path(root) / "_designs").glob("*.json")):
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(doc, dict) and doc.get("kind") in ("ablate", "bisect", "sweep"):
            out.append({**doc, "name": path.stem, "path": str(path)})
    return out


def _diff_text(d: dict) -> str:
    return Difference.from_dict(d).text()


def _word(d: dict) -> str:
    from evdet.experiments.designs.ablate import effect_word

    return effect_word(Difference.from_dict(d))


def _table(headers: list[str], rows: list[list[str]]) -> str:
    """``html.table`` of plain-text cells."""
    return table(headers, [[esc(c) for c in r] for r in rows])


def ablation_html(s: dict) -> str:
    """One ablation: per metric, each key's single and leave-one-out effect, and the interaction check."""
    parts = [f"<h3>Ablation {esc(s['name'])}: {esc(s['base'])} &rarr; "
             f"{esc(s['variant'])}</h3>"]
    for eff in s["effects"]:
        holm = eff.get("single_holm") or {}
        rows = [[k, _diff_text(eff["single"][k]), _word(eff["single"][k]), holm_text(holm.get(k)),
                 _diff_text(eff["leave_one_out"][k]), _word(eff["leave_one_out"][k])] for k in s["keys"]]
        rows.append(["all keys", _diff_text(eff["full"]), _word(eff["full"]), "", "", ""])
        parts.append(_table([f"{eff['metric']}: key", "alone on base", "", "Holm over the keys", "left out of variant",
                             ""], rows))
        verdict = {True: "the single effects add up", False: "the keys interact (the effects do not add up)",
                   None: "no interval: cannot tell whether they add up"}[eff["adds_up"]]
        parts.append(f"<p>Interaction (all - sum of singles): {esc(_diff_text(eff['interaction']))}: "
                     f"{verdict}.</p>")
    return "".join(parts)


def bisection_html(s: dict) -> str:
    """One bisection: the culprit and the runs that prove it."""
    rows = [[p["role"], "all" if len(p["keys"]) == len(s["keys"]) else ", ".join(p["keys"]) or "none", p["state"],
             "-" if p["value"] is None else f"{p['value']:.6g}", "bad" if p["bad"] else "good", p["exp_id"]]
            for p in s["proof"]]
    noise = " (within noise)" if s.get("regression_within_noise") else ""
    reg = f"<p>BAD - GOOD: {esc(_diff_text(s['regression']))}{noise}</p>" if s.get("regression") else ""
    return (f"<h3>Bisection {esc(s['name'])}: {esc(s['good'])} &rarr; {esc(s['bad'])} "
            f"on {esc(s['metric'])}</h3>{reg}<p>Culprit: <b>{esc(', '.join(s['culprit']))}</b> "
            f"({len(s['probes'])} configurations looked at, {len(s['keys'])} changed keys).</p>"
            + _table(["run", "keys from BAD", "state", s["metric"], "", "record"], rows))


def sweep_html(s: dict, folder: Path) -> str:
    """One sweep: trial counts, best trials, importances and the two plots (embedded; only files of ``folder``)."""
    defn = s.get("definition", {})
    counts = ", ".join(f"{k.lower()} {v}" for k, v in sorted(s["counts"].items()))
    rows = [[str(b["number"]), f"{b['value']:.6g}", str(b["exp_id"]), json.dumps(b["params"])] for b in s["best"]]
    imp = ", ".join(f"{k} {v:.2f}" for k, v in (s.get("importances") or {}).items()) or s.get("importances_note", "")
    imgs = "".join(img_file(folder / str(name), str(kind), folder) for kind, name in (s.get("plots") or {}).items())
    return (f"<h3>Sweep {esc(s['name'])}: {esc(s['direction'])} {esc(str(defn.get('metric')))} "
            f"from {esc(str(defn.get('base')))}</h3><p>Trials: {esc(counts)}. Parameter importances: "
            f"{esc(imp)}.</p>" + _table(["trial", "value", "record", "params"], rows) + imgs)


def designs_report_html(root: Path) -> str:
    """A ``<section>`` with every ablation and bisection under ``root`` ('' when there is none)."""
    summaries = load_design_summaries(root)
    if not summaries:
        return ""
    folder = Path(root) / "_designs"
    render = {"ablate": ablation_html, "bisect": bisection_html, "sweep": lambda s: sweep_html(s, folder)}
    body = "".join(_render_or_warn(render[s["kind"]], s) for s in summaries)
    return f"<section><h2>Designed experiments</h2>{body}</section>"


def _render_or_warn(render, summary: dict) -> str:
    """The summary's HTML, or a warning naming its file when a field is missing or of the wrong type."""
    try:
        return render(summary)
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as err:
        what = f"missing field {err}" if isinstance(err, KeyError) else f"{type(err).__name__}: {err}"
        return f'<div class="warn">{esc(summary["path"])}: malformed {esc(summary["kind"])} summary ({esc(what)})</div>'
