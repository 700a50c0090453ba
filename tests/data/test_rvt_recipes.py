"""The RVT / eTraM recipes hold, value by value, the reference table (tests/data/rvt_reference_values.yaml)."""

import re
from dataclasses import asdict
from pathlib import Path

import pytest
import yaml

from evdet.data.classes import KNOWN_CLASS_MAPS
from evdet.experiments.records.run_config import load_run_config
from evdet.training.optim import effective_batch, scaled_lr

TABLE = yaml.safe_load((Path(__file__).parent / "rvt_reference_values.yaml").read_text())["recipes"]
RECIPES = Path(__file__).resolve().parents[2] / "src" / "evdet" / "configs" / "recipes"


def _get(cfg: dict, dotted: str):
    for part in dotted.split("."):
        cfg = cfg[part]
    return list(cfg) if isinstance(cfg, tuple) else cfg


@pytest.mark.parametrize("recipe", sorted(TABLE))
def test_recipe_holds_every_reference_value(recipe):
    cfg = load_run_config([f"recipes/{recipe}"])
    resolved = asdict(cfg)
    for key, ref in TABLE[recipe].items():
        if key == "effective_batch":
            got = effective_batch(cfg.data.batch_size, cfg.training)
        elif key == "effective_lr":
            got = scaled_lr(cfg.training.lr, effective_batch(cfg.data.batch_size, cfg.training))
        elif key == "num_classes":
            got = KNOWN_CLASS_MAPS[cfg.data.class_map].num_classes
        else:
            got = _get(resolved, key)
        want = ref["value"]
        if isinstance(want, float):
            assert got == pytest.approx(want, rel=2e-3), (recipe, key, ref["source"])
        else:
            assert got == want, (recipe, key, ref["source"])


@pytest.mark.parametrize("recipe", sorted(TABLE))
def test_every_recipe_key_names_its_source(recipe):
    """Each value line of the YAML carries a comment naming RVT's or eTraM's file and line."""
    for line in (RECIPES / f"{recipe}.yaml").read_text().splitlines():
        if re.match(r"^\s+\w+: \S", line) or re.match(r"^\w+: \S", line):
            assert re.search(r"# (RVT|eTraM) \S+", line), f"{recipe}.yaml: no source for {line.strip()!r}"
