"""The ``evdet`` command line: thin commands that parse, call one library function, print and exit.

Heavy imports (torch, lightning, h5py) sit inside the commands so that ``evdet --help`` is instant.
"""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

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


def fail(message: str) -> None:
    """Print a one-line error and exit with code 1."""
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code=1)


# ---- data: events, preprocessing, stats --------------------------------------------------------

# ---- synthetic data ----------------------------------------------------------------------------

# ---- training, evaluation, prediction ------------------------------------------------------------

# ---- experiments, analysis, demo -----------------------------------------------------------------


def main() -> None:
    app()


if __name__ == "__main__":
    main()
