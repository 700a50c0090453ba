"""Create an experiment record from presets, a baseline's config and ``key=value`` overrides."""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Optional

from evdet.experiments.records.record import RecordError, create_experiment, record_dir
from evdet.experiments.records.run_config import dump_run_config, load_run_config


def new_experiment(root: Path, exp_id: str, hypothesis: str, *, base: Optional[str] = None,
                   config_files: Iterable[str | Path] = (), overrides: Iterable[str] = (),
                   command: str = "") -> Path:
    """Write ``<root>/<exp_id>/`` with hypothesis.md and the fully resolved config.yaml.

    Args:
        hypothesis: hypothesis.md as is when it has ``## `` sections (``records.hypotheses.hypothesis_document``
            builds them), else the hypothesis alone, put into that template with placeholder sections.
        base: baseline experiment id; its config.yaml is the starting point (else the defaults).
        config_files: YAML files or preset names merged next, in order.
        overrides: ``key=value`` strings merged last (unknown keys are errors).
    Raises:
        RecordError: the base has no config, or the record exists; ConfigError: bad keys or values.
    """
    root = Path(root)
    files = list(config_files)
    if base:
        base_cfg = record_dir(root, base) / "config.yaml"
        if not base_cfg.exists():
            raise RecordError(f"{base_cfg}: base experiment {base!r} has no config.yaml")
        files = [base_cfg, *files]
    cfg = load_run_config(files, [*overrides, f"name={exp_id}"], use_default=not base)
    return create_experiment(root, exp_id, dump_run_config(cfg), hypothesis, base=base, command=command)
