"""``evdet config``: print the fully resolved run config of presets / recipes and overrides."""

from __future__ import annotations

from typing import List, Optional

import typer

from evdet.cli.common import app, fail


@app.command("config")
def config(
    overrides: Optional[List[str]] = typer.Argument(None, help="key=value overrides, e.g. data.batch_size=24 "
                                                    "training.devices=1."),
    config_files: Optional[List[str]] = typer.Option(None, "--config", "-c", help="YAML file or preset, e.g. "
                                                     "recipes/rvt_gen4; repeatable, merged in order."),
) -> None:
    """Print the resolved config (defaults, then each -c, then the overrides), as a run would record it."""
    from evdet.experiments.records.run_config import ConfigError, dump_run_config, load_run_config

    try:
        cfg = load_run_config(list(config_files or []), list(overrides or []))
    except ConfigError as err:
        fail(str(err))
    typer.echo(dump_run_config(cfg), nl=False)
