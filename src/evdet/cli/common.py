"""The Typer apps and the helpers every command module shares."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

app = typer.Typer(
    help="evdet: event-camera object detection for traffic monitoring "
    "(read recordings, preprocess, train RVT-family detectors, evaluate, compare experiments).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
exp_app = typer.Typer(help="Experiment records: create, run, list, rank, compare, diff, verdict, report.",
                      no_args_is_help=True)
app.add_typer(exp_app, name="exp")
export_app = typer.Typer(help="Export models and data for other runtimes and tools (ONNX, YOLO).",
                         no_args_is_help=True)
app.add_typer(export_app, name="export")


def console():
    """A rich console; when output is not a terminal (logs, CI) tables get 160 columns, not 80."""
    from rich.console import Console

    return Console(width=None if sys.stdout.isatty() else 160)


def fail(message: str) -> None:
    """Print a one-line error and exit with code 1."""
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code=1)


ROOT_OPT = typer.Option(Path("experiments"), "--root", help="Folder holding the experiment records.")


def parse_size(option: str, text: str, example: str = "640x360") -> tuple[int, int]:
    """``WIDTHxHEIGHT`` (every size option of the CLI) -> (height, width); exits on anything else."""
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        fail(f"{option} {text!r}: expected WIDTHxHEIGHT, e.g. {example}")
    if w <= 0 or h <= 0:
        fail(f"{option} {text!r}: width and height must be positive")
    return h, w


def parse_seeds(option: str, text: str) -> list[int]:
    """Comma-separated seeds (``0,1,2``) -> [0, 1, 2]; exits on anything else or on none."""
    try:
        seeds = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        fail(f"{option} {text!r}: expected comma-separated integers, e.g. 0,1,2")
    if not seeds:
        fail(f"{option} {text!r}: no seed given")
    return seeds
TRUSTED_OPT = typer.Option(False, "--trusted", help="Also load checkpoints holding pickled Python objects besides "
                           "tensors (unpickling them can run code: only for files whose source you trust).")


def load_exp(root: Path, exp_id: str):
    from evdet.experiments.records.record import RecordError, load_experiment

    try:
        return load_experiment(root, exp_id)
    except RecordError as err:
        fail(str(err))


def list_exps(root: Path) -> list:
    """Every experiment under ``root``; exits with an error when there is none or a record is bad."""
    from evdet.experiments.records.record import RecordError, list_experiments

    try:
        exps = list_experiments(root)
    except RecordError as err:
        fail(str(err))
    if not exps:
        fail(f"{root}: no experiments")
    return exps
