"""Report sections of the lab features, each only when its data exists: a prediction clip of the best
experiment, tracking metrics of the saved validation detections, pseudo-label quality of pseudo-labelled
training data, and the designed experiments (ablations, bisections, sweeps) under ``<root>/_designs``.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Optional, Sequence

from evdet.experiments.statistics.intervals import IntervalError, detection_files, load_validation_detections
from evdet.experiments.analysis.rank import RankRow
from evdet.experiments.records.record import Experiment
from evdet.experiments.report.html import esc, fmt, img, table

CLIP_WINDOWS = 20                      # windows in the prediction clip (1 s at 50 ms)
TRACKING_METRICS = ("HOTA", "DetA", "AssA", "MOTA", "MOTP", "IDF1")


def tracking_results(exp: Experiment) -> Optional[dict]:
    """``evdet.tracking.track_and_evaluate`` over the saved validation detections of ``exp``'s seed runs.

    Several seed runs are pooled (each run's sequences count as sequences). None without saved detections;
    else the library's dict plus ``"max_score"``: the highest detection score (tracks need ``new_track_score``).
    Raises:
        IntervalError / ValueError: a detections file cannot be read, or no class names (the message names the file).
    """
    from evdet.tracking import track_and_evaluate

    files = detection_files(exp)
    if not files:
        return None
    gts, dts, names = [], [], None
    for path in files:
        data = load_validation_detections(path)
        gts += data.gts
        dts += data.dts
        names = names or data.eval_kwargs.get("class_names") or list(exp.typed_results.class_names)
    if not names:
        raise ValueError(f"{files[0]}: no class names in the saved detections nor in results.json")
    result = track_and_evaluate(gts, dts, class_names=names)
    result["max_score"] = max((float(d["class_confidence"].max()) for d in dts if d.size), default=None)
    return result


def tracking_section(experiments: Sequence[Experiment]) -> list[str]:
    """Tracking metrics overall and per class of every experiment with saved validation detections."""
    overall, per_class, warnings, tracker = [], [], [], {}
    for e in experiments:
        try:
            res = tracking_results(e)
        except (IntervalError, ValueError) as err:
            warnings.append(f'<div class="warn">{esc(e.id)}: tracking not evaluated: {esc(err)}</div>')
            continue
        if res is None:
            continue
        tracker = res["tracker"]
        o = res["overall"]
        overall.append([esc(e.id), esc(len(detection_files(e))), *[fmt(o.get(k)) for k in TRACKING_METRICS],
                        esc(o.get("IDSW", "-")), esc(o.get("gt_tracks", "-")), fmt(res["max_score"], digits=3)])
        per_class += [[esc(e.id), esc(name), *[fmt(m.get(k)) for k in TRACKING_METRICS], esc(m.get("gt_tracks", "-"))]
                      for name, m in res["per_class"].items()]
    if not overall and not warnings:
        return []
    nums = tuple(range(1, 2 + len(TRACKING_METRICS) + 3))
    start = (f" A track starts from a detection scored &ge; {tracker['new_track_score']} and continues with "
             f"scores down to {tracker['low_score']}, so a detector whose best score stays below "
             f"{tracker['new_track_score']} has no tracks.") if tracker else ""
    return ['<section id="tracking"><h2>Tracking</h2>',
            "<p>The saved validation detections of each run tracked by evdet's ByteTrack-style tracker (default "
            "settings) and scored against the ground-truth track ids, class-aware, IoU 0.5, frames within 25 ms "
            f"of a label time. MOTP is the mean IoU of matched pairs. Several seed runs are pooled.{start}</p>",
            *warnings,
            table(["id", "runs", *TRACKING_METRICS, "IDSW", "GT tracks", "best score"], overall, nums)
            if overall else "",
            "<h3>Per class</h3>" + table(["id", "class", *TRACKING_METRICS, "GT tracks"], per_class,
                                         tuple(range(2, 3 + len(TRACKING_METRICS))))
            if per_class else "",
            "</section>"]


def _data_root(exp: Experiment) -> Optional[str]:
    return ((exp.config if isinstance(exp.config, dict) else {}).get("data") or {}).get("root")


def _raw_recording(exp: Experiment) -> Optional[tuple[Path, Optional[Path]]]:
    """(events file, its ``*_bbox.npy`` or None) of the first validation sequence of ``exp`` in a raw dataset.

    Looked for in the experiment's ``data.root`` and the ``raw`` folder beside it (the layout of ``evdet demo``
    and ``evdet exp matrix``); None when no raw recording exists.
    """
    from evdet.data.preprocess.inputs import BBOX_SUFFIX, EVENT_SUFFIXES

    data_root = _data_root(exp)
    candidates = [Path(data_root), Path(data_root).parent / "raw"] if data_root else []
    files = detection_files(exp)
    names = list(load_validation_detections(files[0]).names) if files else []
    if not names and data_root and (Path(data_root) / "val").is_dir():
        names = sorted(p.name for p in (Path(data_root) / "val").iterdir() if p.is_dir())
    for cand in candidates:
        for name in names:
            for suffix in EVENT_SUFFIXES:
                events = cand / "val" / f"{name}{suffix}"
                if events.is_file():
                    gt = cand / "val" / f"{name}{BBOX_SUFFIX}"
                    return events, gt if gt.is_file() else None
    return None


def clip_section(ranked: Sequence[RankRow], by_id: dict, by: str, *, trusted: bool = False) -> list[str]:
    """A GIF of the best-ranked experiment with a checkpoint on a raw validation recording (none without one);
    ``trusted``: read a checkpoint holding arbitrary pickled objects (else weights-only)."""
    import tempfile

    for row in ranked:
        e = by_id.get(row.id)
        if row.rank is None or e is None:
            continue
        ckpts = [p for p in (e.path / "checkpoints" / n for n in ("best.ckpt", "last.ckpt")) if p.is_file()]
        if not ckpts:
            continue
        try:
            found = _raw_recording(e)
        except IntervalError:
            found = None
        if found is None:
            return []
        from evdet.data.labels import load_labels
        from evdet.evaluation.video import prediction_clip
        from evdet.tracking import track_sequence

        events, gt_path = found
        try:
            with tempfile.TemporaryDirectory() as tmp:
                gif = prediction_clip(ckpts[0], events, Path(tmp) / "clip.gif", max_frames=CLIP_WINDOWS,
                                      gt=load_labels(gt_path) if gt_path else None, track_fn=track_sequence,
                                      trusted=trusted)
                data = base64.b64encode(gif.read_bytes()).decode("ascii")
        except (ValueError, OSError, RuntimeError) as err:
            return ['<section id="clip"><h2>Predictions</h2>',
                    f'<div class="warn">{esc(e.id)}: no prediction clip: {esc(err)}</div></section>']
        return ['<section id="clip"><h2>Predictions</h2>',
                f"<p>{esc(e.id)} (rank {row.rank} by {esc(by)}, <code>{esc(ckpts[0].name)}</code>) on the first "
                f"{CLIP_WINDOWS} windows of <code>{esc(events.name)}</code>: boxes with score &ge; 0.3 and their "
                f"track ids{', ground truth beside' if gt_path else ''}.</p>",
                f'<img alt="prediction clip {esc(e.id)}" src="data:image/gif;base64,{data}">', "</section>"]
    return []


def designs_section(root: Optional[Path]) -> list[str]:
    """``designs_report_html(root)``: the ablations, bisections and sweeps recorded under ``<root>/_designs``."""
    from evdet.experiments.report.designs import designs_report_html

    html_text = designs_report_html(root) if root is not None else ""
    return [html_text] if html_text else []


def pseudo_label_roots(experiments: Sequence[Experiment]) -> dict[Path, list[str]]:
    """Pseudo-labelled datasets (``pseudo_labels.json`` + provenance sidecars) the experiments train on -> ids."""
    from evdet.pseudo.dataset import PROVENANCE_FILE, SETTINGS_FILE

    out: dict[Path, list[str]] = {}
    for e in experiments:
        root = _data_root(e)
        if not root or not (Path(root) / SETTINGS_FILE).is_file():
            continue
        if any(Path(root).glob(f"*/*/labels_v2/{PROVENANCE_FILE}")):
            out.setdefault(Path(root), []).append(e.id)
    return out


def pseudo_section(experiments: Sequence[Experiment]) -> list[str]:
    """Quality sweep (table + plot) of each pseudo-labelled dataset the experiments train on."""
    import json
    import tempfile

    from evdet.pseudo import measure_pseudo_labels
    from evdet.pseudo.dataset import SETTINGS_FILE
    from evdet.pseudo.quality import plot_quality_sweep

    roots = pseudo_label_roots(experiments)
    if not roots:
        return []
    parts = ['<section id="pseudo"><h2>Pseudo-label quality</h2>',
             "<p>Pseudo-labels of the withheld label frames against their true labels (IoU 0.5, same class), "
             "every teacher box down to the candidate score, swept over the score threshold.</p>"]
    for pseudo_root, ids in roots.items():
        parts.append(f"<h3><code>{esc(pseudo_root)}</code> (used by {esc(', '.join(ids))})</h3>")
        settings_path = pseudo_root / SETTINGS_FILE
        try:
            doc = json.loads(settings_path.read_text(encoding="utf-8"))
            source, split = doc["source"], (doc.get("withheld") or {}).get("split", "train")
            result = measure_pseudo_labels(source, pseudo_root, split=split)
        except (OSError, ValueError, KeyError, TypeError) as err:
            parts.append(f'<div class="warn">{esc(settings_path)}: not measured: {esc(err)}</div>')
            continue
        sru = "small_road_users"
        rows = [[fmt(r["threshold"], digits=2), fmt(r["overall"]["precision"], digits=3),
                 fmt(r["overall"]["recall"], digits=3), esc(r["overall"]["pseudo"]), esc(r["overall"]["gt"]),
                 fmt((r.get(sru) or {}).get("precision"), digits=3), fmt((r.get(sru) or {}).get("recall"), digits=3)]
                for r in result["rows"]]
        parts.append(f"<p>{result['frames']} withheld frames of split <code>{esc(split)}</code>, teacher "
                     f"<code>{esc(doc.get('teacher', '?'))}</code>.</p>")
        parts.append(table(["threshold", "precision", "recall", "pseudo boxes", "GT boxes",
                            "small road users precision", "small road users recall"], rows, tuple(range(7))))
        with tempfile.TemporaryDirectory() as tmp:
            png = plot_quality_sweep(result["rows"], result["class_names"], Path(tmp) / "quality_sweep.png",
                                     title=f"pseudo-label quality ({result['frames']} withheld frames)")
            parts.append(img(png.read_bytes(), f"pseudo-label quality sweep {pseudo_root.name}"))
    return parts + ["</section>"]
