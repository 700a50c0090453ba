"""The ``evdet`` command line: thin commands that parse, call one library function, print and exit.

One module per area registers its commands on the shared Typer apps (``common``). Heavy imports
(torch, lightning, h5py) sit inside the commands so that ``evdet --help`` is instant.
"""

from evdet.cli import data, train, config, exp, matrix, causal, deploy, interop, track, rvt, pseudo  # noqa: F401,I001  (registers the commands, in help order)
from evdet.cli.common import app


def main() -> None:
    app()


__all__ = ["app", "main"]
