"""Designed experiments and sweeps: evdet exp ablate / bisect / sweep / sweep-status."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from evdet.cli.common import ROOT_OPT, console, exp_app, fail, parse_seeds

STORAGE_HELP = ("Optuna storage shared by the workers: sqlite:///FILE.db (one machine) or "
                "postgresql://USER:PASSWORD@HOST/DB (several machines, with a shared --root).")


def _quiet_optuna() -> None:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)


def _progress() -> bool:
    """Training progress bars only on a terminal (not in logs)."""
    import sys

    return sys.stdout.isatty()


def _executor(root: Path, storage: Optional[str], study: str, signature: dict, metric: Optional[str]):
    """Local executor, or the Optuna queue when --storage is given (every worker runs the same command)."""
    from functools import partial

    from evdet.experiments.running.executors import LocalExecutor, run_record

    if storage is None:
        return LocalExecutor(root, progress=_progress(), echo=typer.echo)
    from evdet.experiments.designs.queue import QueueExecutor

    _quiet_optuna()
    return QueueExecutor(root, storage, study, signature, metric=metric, echo=typer.echo,
                         run_fn=partial(run_record, progress=_progress()))


@exp_app.command("ablate")
def exp_ablate(
    base: str = typer.Argument(..., help="Baseline experiment id."),
    variant: str = typer.Argument(..., help="Experiment id whose changed keys are ablated."),
    seeds: Optional[str] = typer.Option(None, "--seeds", help="Seeds of every arm, e.g. 0,1,2 (default: each "
                                        "config's own)."),
    metric: Optional[List[str]] = typer.Option(None, "--metric", "-m", help="Metric key, repeatable (default: "
                                               "VARIANT's success-criteria metrics, else AP)."),
    name: Optional[str] = typer.Option(None, "--name", help="Prefix of the created records."),
    storage: Optional[str] = typer.Option(None, "--storage", help=STORAGE_HELP),
    root: Path = ROOT_OPT,
) -> None:
    """One-key-added and leave-one-out runs of every changed key, effects with intervals, interaction check."""
    from evdet.experiments.designs.ablate import ablate_experiments, effect_word
    from evdet.experiments.designs.arms import DesignError
    from evdet.experiments.records.record import RecordError
    from evdet.experiments.records.run_config import ConfigError

    seed_list = parse_seeds("--seeds", seeds) if seeds else None
    name = name or f"ablate_{base}_{variant}"
    try:
        ex = _executor(root, storage, f"evdet-{name}", {"design": "ablate", "base": base, "variant": variant,
                                                        "seeds": seed_list}, None)
        res = ablate_experiments(root, base, variant, metrics=metric, seeds=seed_list, name=name, executor=ex,
                                 echo=typer.echo)
    except (DesignError, RecordError, ConfigError) as err:
        fail(str(err))
    from rich.table import Table

    out = console()
    for exp_id in res.failed:
        out.print(f"[bold red]{exp_id} failed[/] (see its status.json / logs/error.txt): effects that use it "
                  "compare a broken run")
    for eff in res.effects:
        table = Table(title=f"{eff.metric}: effect of each key ({base} -> {variant})")
        holm = eff.single_holm()
        for col in ("key", "alone on base (add - base)", "", "Holm over the keys", "left out of variant "
                    "(variant - drop)", ""):
            table.add_column(col)
        for k in res.keys:
            s, l1 = eff.single[k], eff.leave_one_out[k]
            table.add_row(k, s.text(), effect_word(s), holm[k].text(), l1.text(), effect_word(l1))
        table.add_row("[bold]all keys[/]", eff.full.text(), effect_word(eff.full), "", "", "")
        out.print(table)
        verdict = {True: "the single effects add up (interaction interval contains 0)",
                   False: "the keys interact: the single effects do not add up",
                   None: "no interval: cannot tell whether the effects add up"}[eff.adds_up]
        out.print(f"interaction (all - sum of singles): {eff.interaction.text()}: {verdict}")
    typer.echo(f"records: {', '.join(f'{r}={i}' for r, i in res.arms.items())}")


@exp_app.command("bisect")
def exp_bisect(
    good: str = typer.Argument(..., help="Experiment id of the good run."),
    bad: str = typer.Argument(..., help="Experiment id of the bad run."),
    metric: str = typer.Option(..., "--metric", "-m", help="Any logged metric: full/AP, prophesee/small_AP, "
                               "train/loss (last logged value), monitors.loss_cv..."),
    mode: str = typer.Option(..., "--mode", help="max (higher is better) or min (lower is better)."),
    threshold: Optional[float] = typer.Option(None, "--threshold", help="Values worse than this are bad "
                                              "(default: midway between GOOD and BAD)."),
    name: Optional[str] = typer.Option(None, "--name", help="Prefix of the created records."),
    confirm: bool = typer.Option(True, "--confirm/--no-confirm", help="Also run BAD without the culprit."),
    storage: Optional[str] = typer.Option(None, "--storage", help=STORAGE_HELP),
    root: Path = ROOT_OPT,
) -> None:
    """Smallest set of changed keys that turns GOOD into BAD (delta debugging; failed runs count as bad)."""
    from evdet.experiments.designs.bisect import bisect_experiments
    from evdet.experiments.designs.arms import DesignError
    from evdet.experiments.records.record import RecordError
    from evdet.experiments.records.run_config import ConfigError

    if mode not in ("max", "min"):
        fail(f"--mode {mode!r}: use max or min")
    name = name or f"bisect_{good}_{bad}"
    try:
        ex = _executor(root, storage, f"evdet-{name}", {"design": "bisect", "good": good, "bad": bad,
                                                        "metric": metric, "mode": mode}, metric)
        res = bisect_experiments(root, good, bad, metric, mode, threshold=threshold, name=name, executor=ex,
                                 confirm=confirm, echo=typer.echo)
    except (DesignError, RecordError, ConfigError) as err:
        fail(str(err))
    from rich.table import Table

    table = Table(title=f"bisect {good} -> {bad} on {metric} ({mode}, bad past {res.threshold})")
    for col in ("run", "keys from BAD", "state", metric, "bad?", "record"):
        table.add_column(col)
    for p in res.proof:
        keys = "all" if len(p.keys) == len(res.keys) else ", ".join(p.keys) or "none"
        value = "-" if p.value is None else f"{p.value:.6g}"
        table.add_row(p.role, keys, p.state, value, "BAD" if p.bad else "good", p.exp_id)
    out = console()
    out.print(table)
    if res.regression and res.regression.get("low") is not None:
        from evdet.experiments.statistics.intervals import Difference

        noise = " [yellow](within noise)[/]" if res.regression_within_noise else ""
        out.print(f"BAD - GOOD: {Difference(**res.regression).text()}{noise}")
    out.print(f"culprit: [bold]{', '.join(res.culprit)}[/] ({len(res.probes)} configurations looked at, "
              f"{len(res.trained)} trained now, out of {len(res.keys)} changed keys)")
    if res.culprit_explains_all is False:
        out.print("[yellow]BAD without the culprit is still bad: other keys contribute too "
                  f"(bisect {res.proof[-1].exp_id} -> {bad} next)[/]")


def _print_sweep(summary: dict) -> None:
    from rich.table import Table

    out = console()
    counts = ", ".join(f"{k.lower()} {v}" for k, v in sorted(summary["counts"].items()))
    defn = summary["definition"]
    out.print(f"sweep {summary['study']}: {counts}; {summary['direction']} {defn.get('metric')} "
              f"(base {defn.get('base')})")
    table = Table(title="best trials")
    for col in ("trial", "value", "record", "params"):
        table.add_column(col)
    for b in summary["best"]:
        table.add_row(str(b["number"]), f"{b['value']:.6g}", str(b["exp_id"]),
                      ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in b["params"].items()))
    out.print(table)
    if summary["importances"]:
        imp = Table(title="parameter importances (Optuna, fANOVA)")
        imp.add_column("param")
        imp.add_column("importance")
        for k, v in summary["importances"].items():
            imp.add_row(k, f"{v:.3f}")
        out.print(imp)
    else:
        out.print(f"importances: not available ({summary['importances_note']})")


@exp_app.command("sweep")
def exp_sweep(
    name: str = typer.Argument(..., help="Study name (the same for every worker)."),
    base: str = typer.Option(..., "--base", help="Experiment id whose config every trial starts from."),
    space: Path = typer.Option(..., "--space", help="Space YAML: params: {dotted.key: {low, high, log, step} | "
                               "{choices: [...]}}, sampler: tpe|random, pruner: median|none."),
    trials: int = typer.Option(..., "--trials", help="Total trials of the study, shared by all workers."),
    metric: str = typer.Option(..., "--metric", "-m", help="Objective, e.g. full/AP or train/loss."),
    storage: str = typer.Option(..., "--storage", help=STORAGE_HELP),
    direction: Optional[str] = typer.Option(None, "--direction", help="maximize or minimize (default: from the "
                                            "metric; losses are minimised)."),
    heartbeat_s: int = typer.Option(30, "--heartbeat-s", help="Trial heartbeat; a worker silent for twice this "
                                    "is dead and its trial is retried."),
    plots: Optional[Path] = typer.Option(None, "--plots", help="Write history / importances PNGs here at the end."),
    root: Path = ROOT_OPT,
) -> None:
    """Work on an Optuna sweep (TPE, pruning) until the study holds --trials trials; start as many as you like."""
    from evdet.experiments.designs.arms import DesignError
    from evdet.experiments.records.record import RecordError
    from evdet.experiments.records.run_config import ConfigError
    from functools import partial

    from evdet.experiments.running.executors import run_record
    from evdet.experiments.designs.sweep import SweepSettings, run_sweep
    from evdet.experiments.designs.sweep_results import load_sweep, plot_sweep

    _quiet_optuna()
    settings = SweepSettings(name=name, base=base, space_file=space, trials=trials, metric=metric,
                             storage=storage, direction=direction, heartbeat_s=heartbeat_s)
    try:
        summary = run_sweep(root, settings, run_fn=partial(run_record, progress=_progress()), echo=typer.echo)
    except (DesignError, RecordError, ConfigError) as err:
        fail(str(err))
    _print_sweep(summary)
    if plots is not None:
        for kind, path in plot_sweep(load_sweep(storage, name), plots).items():
            typer.echo(f"{kind}: {path}")


@exp_app.command("sweep-status")
def exp_sweep_status(
    name: str = typer.Argument(..., help="Study name."),
    storage: str = typer.Option(..., "--storage", help=STORAGE_HELP),
    plots: Optional[Path] = typer.Option(None, "--plots", help="Write history / importances PNGs here."),
) -> None:
    """Trial counts, best trials and parameter importances of a sweep (while it runs or after)."""
    from evdet.experiments.designs.queue import QueueError
    from evdet.experiments.designs.sweep_results import load_sweep, plot_sweep, sweep_summary

    _quiet_optuna()
    try:
        study = load_sweep(storage, name)
    except QueueError as err:
        fail(str(err))
    _print_sweep(sweep_summary(study))
    if plots is not None:
        for kind, path in plot_sweep(study, plots).items():
            typer.echo(f"{kind}: {path}")
