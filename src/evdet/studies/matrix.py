"""A study's experiment matrix: variants x seeds on generated eTraM-like data, resumable.

The study (its question, variants and plans) is data, ``configs/studies/<name>.yaml``, read by
``evdet.studies.study_plan``; the small-object study is the one described below.

Question: which change helps the small road users (pedestrian, bicycle, motorbike, wheelchair)?
The seed researcher's table (one seed each, Prophesee-filtered eTraM) concluded "complexity hurts"
and "resolution first"; this matrix re-asks it with exact ground truth, several seeds and intervals,
under ``prophesee`` (size filter) and ``full`` (every box counts).

Layout::

    <work>/
      matrix.json          the plan this work folder belongs to (a rerun with another plan is refused)
      raw/                 generated sensors: <split>/<seq>_td.h5 + _bbox.npy, dataset.yaml, preview.png
      input/               preprocessed at the recipe input: the sensor halved, reference 2x2 "nearest"
      input_full/          preprocessed at the sensor resolution (the "resolution first" variant)
      experiments/<id>/    one ordinary experiment record per variant, one run per seed
    <out>/
      results.md           commands, per-variant table with intervals, verdicts, run times, what finished
      results.json         the same numbers
      report.html          evdet's HTML report over the matrix records
      preview.png          a generated frame beside the box statistics

Every stage skips finished work: data and preprocessing are resumable, completed records are
skipped, a killed record is resumed from its last checkpoint, and a record that another worker is
running is left alone (so several ``evdet exp matrix`` processes can share one work folder).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

from evdet.experiments.records.hypotheses import hypothesis_document
from evdet.studies.matrix_results import EFFECTS_PLOT, results_markdown, summarize
from evdet.studies.matrix_training import record_checkpoint, train_parallel, train_records
from evdet.studies.study_plan import RECORD_REF, MatrixError, MatrixPlan, Variant
from evdet.utils.atomic import write_text_atomic


def hypothesis_text(v: Variant, plan: MatrixPlan) -> str:
    """hypothesis.md of a variant: question, hypothesis, criteria under both protocols."""
    if v.id == plan.baseline:
        return hypothesis_document(
            v.id, question=f"Does the {plan.name.upper()} recipe ({', '.join(plan.recipes)}, {plan.max_steps} steps, "
                           f"{plan.input_hw[1]}x{plan.input_hw[0]} input) learn the small road users at all?",
            hypothesis=f"{v.change} finds the small road users clearly above zero under `full`.",
            rationale=f"Reference row of the study ({plan.title}): every variant is compared with it.",
            criteria="- full/small_AP >= 0.01\n- prophesee/AP >= 0.01",
            risks="Short schedule: far from converged; seeds differ.")
    return hypothesis_document(
        v.id, question=f"Does \"{v.change}\" help the small road users (pedestrian, bicycle, motorbike, wheelchair) "
                       f"compared with the baseline ({plan.baseline})?",
        hypothesis=f"{v.change} raises the small-road-user AP under both protocols.",
        rationale=plan.rationale,
        criteria="- full/small_AP >= base + 0.0\n- prophesee/small_AP >= base + 0.0",
        risks="Short schedule; slower variants see the same steps, not the same time.")


def _variant_overrides(v: Variant, plan: MatrixPlan, work: Path) -> list[str]:
    out = [RECORD_REF.sub(lambda m: str(record_checkpoint(work, m.group(1))), plan.substitute(o))
           for o in v.overrides]
    if v.full_input:
        out.append(f"data.root={(work / 'input_full').resolve()}")
    return out


def record_commands(plan: MatrixPlan, work: Path) -> dict[str, str]:
    """The ``evdet exp new`` command equivalent to each record of the plan."""
    root = work / "experiments"
    seeds = ",".join(map(str, plan.seeds))
    out = {}
    for vid in plan.variants:
        if vid == plan.baseline:
            args = [*(f"-c {r}" for r in plan.recipes), f"data.root={work / 'input'}",
                    f"training.max_steps={plan.max_steps}", f"--seeds {seeds}"]
        else:
            args = [f"--base {plan.baseline}",
                    *(o.replace(str(work.resolve()), str(work)) for o in _variant_overrides(plan.variant(vid), plan, work))]
        out[vid] = f"evdet exp new {vid} {' '.join(args)} --hypothesis <text> --root {root}"
    return out


def create_records(plan: MatrixPlan, work: Path) -> list[str]:
    """Create the records of the plan that do not exist yet (baseline first) and declare them one pool
    (``statistics.policy``); returns the ids created."""
    from evdet.experiments.records.new import new_experiment
    from evdet.experiments.statistics.policy import write_pool

    root = work / "experiments"
    commands = record_commands(plan, work)
    created = []
    for vid in plan.variants:
        if (root / vid).exists():
            continue
        v = plan.variant(vid)
        if vid == plan.baseline:
            kw = dict(config_files=list(plan.recipes),
                      overrides=[f"data.root={(work / 'input').resolve()}", f"training.max_steps={plan.max_steps}",
                                 f"seeds=[{','.join(map(str, plan.seeds))}]"])
        else:
            kw = dict(base=plan.baseline, overrides=_variant_overrides(v, plan, work))
        new_experiment(root, vid, hypothesis_text(v, plan), command=commands[vid], **kw)
        created.append(vid)
    write_pool(root, f"{plan.study}_{plan.name}", list(plan.variants))   # one recipe: every door pools their seeds
    return created


def _check_plan(plan: MatrixPlan, work: Path) -> None:
    """Write ``matrix.json`` on first use; refuse a work folder made for other data or recipe."""
    path = work / "matrix.json"
    mine = {k: v for k, v in asdict(plan).items()
            if k not in ("variants", "catalog", "title", "question", "rationale", "gen_workers", "preprocess_workers",
                         "train_workers", "work", "out")}
    mine = json.loads(json.dumps(mine))
    if path.exists():
        old = json.loads(path.read_text())
        changed = [k for k in mine if old.get(k) != mine[k]]
        if changed:
            raise MatrixError(f"{path}: this work folder holds a matrix with other {changed} "
                              f"({[old.get(k) for k in changed]} vs {[mine[k] for k in changed]}); "
                              "use another --work folder")
        return
    work.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, json.dumps(mine, indent=1) + "\n")


def prepare_data(plan: MatrixPlan, work: Path, echo: Callable[[str], None] = print) -> None:
    """Generate the sensors (once), write the preview, preprocess at the input and the sensor size."""
    from evdet.data.preprocess.dataset import preprocess_dataset
    from evdet.data.synthetic import generate_dataset, render_preview

    raw = work / "raw"
    if (raw / "dataset.yaml").exists():
        echo(f"data: already generated in {raw}")
    else:
        h, w = plan.sensor_hw
        echo(f"data: generating {plan.sequences} sequences of {plan.duration_s:g} s at {w}x{h}")
        generate_dataset(raw, sequences=plan.sequences, duration_s=plan.duration_s, resolution=plan.sensor_hw,
                         seed=plan.data_seed, workers=plan.gen_workers)
    if not (raw / "preview.png").exists():
        render_preview(raw, raw / "preview.png")
    uses_full = any(plan.variant(v).full_input for v in plan.variants)
    echo("data: preprocessing (input = sensor / 2, nearest)" + (" and at the sensor size" if uses_full else ""))
    preprocess_dataset(raw, work / "input", downsample="nearest", workers=plan.preprocess_workers)
    if uses_full:
        preprocess_dataset(raw, work / "input_full", downsample="none", workers=plan.preprocess_workers)


def write_results(plan: MatrixPlan, work: Path, out: Path, one_command: str,
                  machine: str = "this machine", n_boot: int = 100) -> Path:
    """Write results.md, results.json, effects.png, report.html and preview.png of the matrix to ``out``."""
    import shutil

    from evdet.experiments.records.record import list_experiments
    from evdet.experiments.report.build import write_report
    from evdet.studies.matrix_plot import effects_plot

    out.mkdir(parents=True, exist_ok=True)
    summary = summarize(plan, work, n_boot=n_boot)
    write_text_atomic(out / "results.json", json.dumps(summary, indent=1, default=str) + "\n")
    if effects_plot(summary, out / EFFECTS_PLOT, plan.baseline) is None:
        (out / EFFECTS_PLOT).unlink(missing_ok=True)
    md = results_markdown(summary, record_commands(plan, work), one_command, machine, work / "experiments", out)
    write_text_atomic(out / "results.md", md)
    exps = [e for e in list_experiments(work / "experiments") if e.id in plan.variants
            and e.typed_results.completed_runs]
    if exps:                       # the report covers the records with at least one finished seed
        write_report(exps, out / "report.html", root=work / "experiments", by="full/small_AP",
                     title=f"{plan.title} ({plan.name})", n_boot=n_boot, clip=True)  # own checkpoints
    if (work / "raw" / "preview.png").exists():
        shutil.copyfile(work / "raw" / "preview.png", out / "preview.png")
    return out / "results.md"


def run_matrix(plan: MatrixPlan, work: Path, out: Path, *, one_command: str, train: bool = True,
               workers: int = 1, machine: str = "this machine", echo: Callable[[str], None] = print,
               progress: bool = True, n_boot: int = 100) -> Path:
    """Prepare the data, create the records, train what is unfinished, write the results (resumable).

    Args:
        train: False only refreshes the results from the records as they are.
        workers: training processes side by side (a GPU has room for several small runs).
        n_boot: bootstrap resamples of the intervals of single-seed records (each resample
            re-evaluates a validation run: about 1-2 s on 2 CPU cores).
    Returns:
        Path of results.md.
    """
    work, out = Path(work), Path(out)
    _check_plan(plan, work)
    t0 = time.monotonic()
    prepare_data(plan, work, echo)
    created = create_records(plan, work)
    if created:
        echo(f"records created: {', '.join(created)}")
    if train and workers > 1:
        train_parallel(plan, work, workers, echo)
    elif train:
        train_records(plan, work, echo, progress=progress)
    echo("matrix: writing results (intervals of single-seed records bootstrap the evaluation)")
    path = write_results(plan, work, out, one_command, machine, n_boot=n_boot)
    echo(f"matrix: results in {path} ({time.monotonic() - t0:.0f} s)")
    return path
