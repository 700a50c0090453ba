"""Experiment-record commands (evdet exp ...), analysis and the demo."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from evdet.cli.common import (ROOT_OPT, TRUSTED_OPT, app, console, exp_app, fail, load_exp, parse_seeds,
                              parse_size)
from evdet.utils.formatting import number

N_BOOT_OPT = typer.Option(200, "--n-boot", min=10, help="Bootstrap resamples (one-seed comparisons).")
INTERVALS_OPT = typer.Option(True, "--intervals/--no-intervals",
                             help="Compute 95% intervals (one-seed bootstraps take seconds per experiment).")


def list_exps_marked(root: Path) -> list:
    """Every experiment under ``root``; unreadable records are listed as broken (exit 1 only when none)."""
    from evdet.experiments.records.record import list_experiments

    exps = list_experiments(root, on_error="mark")
    if not exps:
        fail(f"{root}: no experiments")
    for e in exps:
        if e.error:
            typer.secho(f"warning: broken record {e.id}: {e.error}", fg=typer.colors.YELLOW, err=True)
    return exps


@exp_app.command("new")
def exp_new(
    exp_id: str = typer.Argument(..., help="Experiment id, e.g. 4scale_sizeaware_100k."),
    overrides: Optional[List[str]] = typer.Argument(None, help="key=value overrides, e.g. model.in_stages=[1,2,3,4]."),
    hypothesis: str = typer.Option(..., "--hypothesis", help="hypothesis.md file, or the hypothesis as text."),
    base: Optional[str] = typer.Option(None, "--base", help="Baseline experiment id: start from its config."),
    config: Optional[List[str]] = typer.Option(None, "--config", "-c",
                                               help="YAML file or preset (demo, model/small, data/gen1); repeatable."),
    seeds: Optional[str] = typer.Option(None, "--seeds", help="Train one run per seed, e.g. 0,1,2 (config "
                                        "'seeds'); results get mean, std and 95% intervals over seeds."),
    root: Path = ROOT_OPT,
) -> None:
    """Create an experiment record: hypothesis, fully resolved config (base or presets + overrides)."""
    import shlex

    from evdet.experiments.records.new import new_experiment
    from evdet.experiments.records.record import RecordError
    from evdet.experiments.records.run_config import ConfigError

    try:
        text = Path(hypothesis).read_text() if Path(hypothesis).is_file() else hypothesis
    except OSError:  # text too long to be a path
        text = hypothesis
    argv = ["evdet", "exp", "new", exp_id, *(overrides or []), "--hypothesis", hypothesis,
            *(["--base", base] if base else []), *[a for c in (config or []) for a in ("-c", c)],
            *(["--seeds", seeds] if seeds else []), "--root", str(root)]
    seed_override = [f"seeds=[{','.join(str(s) for s in parse_seeds('--seeds', seeds))}]"] if seeds else []
    try:
        path = new_experiment(root, exp_id, text, base=base, config_files=config or (),
                              overrides=[*(overrides or []), *seed_override],
                              command=" ".join(shlex.quote(a) for a in argv))
    except (RecordError, ConfigError) as err:
        fail(str(err))
    typer.echo(f"created {path}")


@exp_app.command("run")
def exp_run(exp_id: str, resume: bool = typer.Option(False, "--resume", help="Continue: skip finished seeds, "
                                                     "resume the interrupted one from its last.ckpt."),
            root: Path = ROOT_OPT, trusted: bool = TRUSTED_OPT) -> None:
    """Train an experiment (one run per seed, in order) with evaluation attached; fills results.json."""
    from evdet.experiments.records.record import RecordError
    from evdet.experiments.records.run_config import ConfigError
    from evdet.experiments.running.runner import AlreadyCompleted, run_experiment
    from evdet.utils.safe_load import UntrustedCheckpointError

    try:
        res = run_experiment(root, exp_id, resume=resume, trusted=trusted,
                             command=f"evdet exp run {exp_id}{' --resume' if resume else ''} --root {root}")
    except AlreadyCompleted as done:
        typer.echo(str(done))
        return
    except (RecordError, ConfigError, UntrustedCheckpointError) as err:
        fail(str(err))
    seeds = res.get("seeds") or []
    typer.echo(f"{exp_id}: {res['status']} at step {res['step']}"
               + (f" ({len(seeds)} seeds: {', '.join(map(str, seeds))})" if len(seeds) > 1 else ""))


@exp_app.command("list")
def exp_list(root: Path = ROOT_OPT) -> None:
    """Table of experiments: id, status, steps, headline metrics, architecture (broken records marked)."""
    from evdet.experiments.analysis.tables import experiments_table

    console().print(experiments_table(list_exps_marked(root)))


@exp_app.command("rank")
def exp_rank(by: str = typer.Option("AP", "--by", help="AP, small_AP, AP_S, per_class.<name>.AP, prophesee/AP..."),
             protocol: Optional[str] = typer.Option(None, "--protocol"),
             baseline: Optional[str] = typer.Option(None, "--baseline", help="Delta vs this id (default: each base)."),
             n_boot: int = N_BOOT_OPT, intervals: bool = INTERVALS_OPT,
             root: Path = ROOT_OPT) -> None:
    """Rank experiments by a metric, with the delta to the baseline, its 95% interval and whether it is
    within noise (Welch t over seeds; one seed: paired bootstrap over evaluation sequences / frame blocks)."""
    from evdet.experiments.records.metric_keys import UnknownMetricError
    from evdet.experiments.analysis.rank import rank_experiments
    from evdet.experiments.analysis.tables import rank_table

    exps = list_exps_marked(root)
    try:
        rows = rank_experiments(exps, by, protocol=protocol, baseline=baseline, intervals=intervals, n_boot=n_boot,
                                progress=True)
    except UnknownMetricError as err:
        fail(str(err))
    console().print(rank_table(rows, by))


@exp_app.command("compare")
def exp_compare(ids: List[str] = typer.Argument(..., help="Two or more experiment ids (deltas vs the first)."),
                protocol: Optional[str] = typer.Option(None, "--protocol"),
                allow_mismatch: bool = typer.Option(False, "--allow-mismatch",
                                                    help="Compare despite different fingerprints (flagged)."),
                plot: Optional[Path] = typer.Option(None, "--plot", help="Write overlaid loss / AP curves PNG."),
                n_boot: int = N_BOOT_OPT, intervals: bool = INTERVALS_OPT,
                root: Path = ROOT_OPT) -> None:
    """Metric, per-class and per-size deltas between experiments with 95% intervals (within noise marked),
    and overlaid curves."""
    from evdet.experiments.analysis.compare import IncomparableError, compare_experiments, plot_curves
    from evdet.experiments.analysis.tables import comparison_tables

    if len(ids) < 2:
        fail("compare needs at least two experiment ids")
    exps = [load_exp(root, i) for i in ids]
    try:
        comp = compare_experiments(exps, protocol=protocol, allow_mismatch=allow_mismatch, intervals=intervals,
                                   n_boot=n_boot, progress=True)
    except IncomparableError as err:
        fail(f"{err} (use --allow-mismatch to show them anyway)")
    out_console = console()
    for p in comp.problems:
        out_console.print(f"[bold red]NOT COMPARABLE:[/] {p}")
    for t in comparison_tables(comp):
        out_console.print(t)
    if plot is not None:
        typer.echo(f"curves: {plot_curves(exps, plot, protocol=comp.protocol)}")


@exp_app.command("diff")
def exp_diff(a: str = typer.Argument(..., help="Experiment id or config YAML (also YOLO hyp.yaml)."),
             b: str = typer.Argument(..., help="Experiment id or config YAML."),
             root: Path = ROOT_OPT) -> None:
    """Changed config keys with relative change and a risk note each, highest risk first."""
    from evdet.experiments.analysis.config_diff import ConfigDiffError, diff_configs, load_config_tree
    from evdet.experiments.records.record import read_status
    from evdet.experiments.analysis.tables import diff_table

    try:
        old, new = load_config_tree(a, root), load_config_tree(b, root)
    except ConfigDiffError as err:
        fail(str(err))
    base_done = read_status(root / a).get("state") == "completed" if (root / a).is_dir() else None
    d = diff_configs(old, new, base_completed=base_done, ids=(a, b))
    out_console = console()
    if not d.changes:
        out_console.print("no differences")
        return
    out_console.print(diff_table(d, f"{a} -> {b}"))
    for n in d.notes:
        out_console.print(f"[bold yellow]{n}[/]")
    if d.plan:
        out_console.print("to isolate the cause, run:", *(f"  {c}" for c in d.plan), sep="\n", markup=False,
                          soft_wrap=True)


@exp_app.command("verdict")
def exp_verdict(exp_id: str, n_boot: int = N_BOOT_OPT, root: Path = ROOT_OPT) -> None:
    """Judge each success criterion of hypothesis.md with noise: supported only when the 95% interval of the
    difference to the base (or of the value) lies wholly on the criterion's side of the threshold, rejected
    when wholly on the other side, inconclusive otherwise. Each line shows the interval and its method."""
    from evdet.experiments.statistics.intervals import IntervalError
    from evdet.experiments.analysis.verdict import CriteriaError, judge, parse_criteria, verdict_lines

    exp = load_exp(root, exp_id)
    try:
        criteria = parse_criteria(exp.hypothesis, str(exp.path / "hypothesis.md"))
    except CriteriaError as err:
        fail(str(err))
    if not criteria:
        fail(f"{exp.path / 'hypothesis.md'}: no criteria under '## Success criteria'")
    base = load_exp(root, exp.base) if exp.base else None
    try:
        res = judge(criteria, exp, base, n_boot=n_boot, progress=True)
    except IntervalError as err:
        fail(str(err))
    for line in verdict_lines(res, exp_id):
        typer.echo(line)


@exp_app.command("rescore")
def exp_rescore(ids: List[str] = typer.Argument(..., help="Experiment ids."), root: Path = ROOT_OPT) -> None:
    """Score records again from their saved validation detections under the current evaluation code, after
    evdet's evaluation changed (a protocol's filter or metric rule): each seed run's protocols are
    evaluated again with the arguments saved beside the detections, nothing is predicted again, and the
    record notes when and at which commit. Prints each protocol's AP and fingerprint before and after, so
    tables never mix values of two fingerprints. Runs without saved detections keep their values."""
    from evdet.experiments.records.record import RecordError
    from evdet.experiments.records.views import ResultsView
    from evdet.experiments.running.rescore import rescore_record
    from evdet.experiments.statistics.intervals import IntervalError

    for exp_id in ids:
        before = load_exp(root, exp_id).typed_results
        try:
            after = ResultsView.from_dict(rescore_record(root, exp_id))
        except (RecordError, IntervalError) as err:
            fail(str(err))
        for proto, block in after.protocols.items():
            old = before.protocols.get(proto)
            ap_old = None if old is None else old.metrics.get("AP")
            digest_old = None if old is None else old.fingerprint.digest
            changed = "same fingerprint" if digest_old == block.fingerprint.digest else (
                f"fingerprint {digest_old or '-'} -> {block.fingerprint.digest or '-'}")
            typer.echo(f"{exp_id} {proto}: AP {number(ap_old)} -> {number(block.metrics.get('AP'))} ({changed})")


@exp_app.command("noise")
def exp_noise(
    recipe: str = typer.Argument(..., help="Recipe: YAML file or preset (demo, recipes/small_objects_cpu)."),
    overrides: Optional[List[str]] = typer.Argument(None, help="key=value overrides (data.root=... is needed)."),
    seeds: int = typer.Option(6, "--seeds", min=2, help="Training seeds of the A/A design (0, 1, ... N-1)."),
    name: Optional[str] = typer.Option(None, "--name", help="Profile name (default: the recipe's file stem)."),
    out: Optional[Path] = typer.Option(None, "--out", help="Profile JSON (default: ROOT/_noise/NAME.json)."),
    root: Path = ROOT_OPT,
) -> None:
    """Measure a recipe's noise profile: train it N times changing only the seed (an A/A design, record
    noise_NAME, resumable) and store each metric's seed standard deviation. A one-seed comparison whose
    recipe and data match the profile then gets an interval that includes this training noise."""
    from evdet.experiments.records.record import RecordError
    from evdet.experiments.records.run_config import ConfigError
    from evdet.experiments.designs.noise import measure_noise
    from evdet.experiments.statistics.noise_profile import ProfileError, load_profile

    label = name or Path(recipe).stem
    try:
        path = measure_noise(root, label, [recipe], overrides or [], list(range(seeds)), out=out)
    except (RecordError, ConfigError, ProfileError) as err:
        fail(str(err))
    profile = load_profile(path)
    for key in ("full/AP", "full/groups.small_road_users.AP", "prophesee/AP"):
        m = profile.metrics.get(key)
        if m:
            typer.echo(f"{key}: mean {m['mean']:.4f}, seed SD {m['sd']:.4f} over {profile.n} seeds")
    typer.echo(f"profile: {path}")


@exp_app.command("report")
def exp_report(ids: Optional[List[str]] = typer.Argument(None, help="Experiment ids (default: all)."),
               out: Optional[Path] = typer.Option(None, "--out", help="HTML file (default <root>/report.html, "
                                                  "or <root>/<ID>/report.html for one id)."),
               protocol: Optional[str] = typer.Option(None, "--protocol"),
               by: str = typer.Option("AP", "--by", help="Ranking metric."),
               clip: bool = typer.Option(False, "--clip", help="Embed a prediction GIF of the best-ranked "
                                         "experiment: reads its checkpoint (weights-only unless --trusted)."),
               root: Path = ROOT_OPT, trusted: bool = TRUSTED_OPT) -> None:
    """Write one self-contained HTML report (plots embedded) of the given experiments."""
    from evdet.experiments.report.build import write_report

    exps = [load_exp(root, i) for i in ids] if ids else [e for e in list_exps_marked(root) if not e.error]
    target = out or (exps[0].path / "report.html" if ids and len(ids) == 1 else root / "report.html")
    if target.is_dir():
        fail(f"--out {target}: is a folder; give the HTML file to write, e.g. {target / 'report.html'}")
    typer.echo(f"report: {write_report(exps, target, root=root, protocol=protocol, by=by, clip=clip, trusted=trusted)}")


@app.command()
def analyze(data: Path = typer.Argument(..., help="Raw (<split>/*_bbox.npy) or preprocessed dataset root."),
            results: Optional[str] = typer.Option(None, "--results", help="Experiment id whose per-class AP to use."),
            protocol: Optional[str] = typer.Option(None, "--protocol"),
            split: List[str] = typer.Option(["train"], "--split", help="Split(s) to analyse; repeatable."),
            input_size: Optional[str] = typer.Option(None, "--input-size", help="Model input WIDTHxHEIGHT, e.g. 640x360."),
            json_out: Optional[Path] = typer.Option(None, "--json", help="Write the analysis as JSON."),
            plot: Optional[Path] = typer.Option(None, "--plot", help="Write box-size histograms PNG."),
            root: Path = ROOT_OPT) -> None:
    """Per-class data analysis: support, share, AP efficiency, box sizes, FPN level ownership."""
    from evdet.evaluation.class_analysis import AnalysisError, analysis_json, analyze_dataset, plot_histograms
    from evdet.utils.atomic import write_text_atomic
    from evdet.experiments.analysis.tables import analysis_table

    hw = parse_size("--input-size", input_size) if input_size else None
    res_doc = load_exp(root, results).results if results else None
    try:
        a = analyze_dataset(data, splits=split, results=res_doc, protocol=protocol, input_hw=hw)
    except (AnalysisError, ValueError, FileNotFoundError) as err:
        fail(str(err))
    console().print(analysis_table(a))
    if json_out is not None:
        typer.echo(f"json: {write_text_atomic(json_out, analysis_json(a))}")
    if plot is not None:
        typer.echo(f"plot: {plot_histograms(data, a, plot, splits=split)}")



@app.command()
def demo(
    out: Path = typer.Option(Path("runs/demo"), "--out", help="Folder for data, experiments and report.html."),
    steps: int = typer.Option(300, "--steps", help="Training steps per experiment (one validation, at the end)."),
    sequences: int = typer.Option(9, "--sequences", help="Synthetic sequences to generate."),
    duration_s: float = typer.Option(12.0, "--duration-s", help="Length of each synthetic sequence, seconds."),
    seed: int = typer.Option(0, "--seed"),
    results: Optional[Path] = typer.Option(None, "--results", help="Also write the results file here (the "
                                           "README's demo figures: docs/results/demo/results.json)."),
) -> None:
    """End-to-end demo on generated data: simulate, preprocess, train a 3-scale baseline and the same with
    the size-aware loss (one change), evaluate both, judge the variant with 95% intervals, rank and compare
    them, and write an HTML report led by the small road users (resumable)."""
    from evdet.experiments.analysis.compare import compare_experiments
    from evdet.studies.demo import BASELINE_ID, VARIANT_ID, DemoSettings, run_demo
    from evdet.experiments.analysis.rank import rank_experiments
    from evdet.experiments.records.record import list_experiments, load_experiment
    from evdet.experiments.analysis.tables import comparison_tables, rank_table

    settings = DemoSettings(sequences=sequences, duration_s=duration_s, seed=seed, max_steps=steps,
                            val_every_n_steps=steps)
    import shlex
    import sys

    report = run_demo(out, settings, echo=typer.echo, results=results,
                      command=" ".join(shlex.quote(a) for a in ["evdet", *sys.argv[1:]]))
    root = out / "experiments"
    out_console = console()
    for by in ("AP", "small_AP"):
        out_console.print(rank_table(rank_experiments(list_experiments(root), by, protocol="full",
                                                      n_boot=settings.n_boot), f"full/{by}"))
    comparison = compare_experiments([load_experiment(root, BASELINE_ID), load_experiment(root, VARIANT_ID)],
                                     protocol="full", n_boot=settings.n_boot)
    for table in comparison_tables(comparison):
        out_console.print(table)
    typer.echo(f"report: {report}")
