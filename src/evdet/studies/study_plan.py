"""A study as data: its question, variants and plans, read from ``configs/studies/<name>.yaml``.

A study (the small-object matrix, the roadmap study) is a baseline record and variants that
override it, trained with seeds on generated data under one plan (``cpu`` or ``gpu``). The YAML
file holds everything the runner needs; the code holds no research narrative::

    name, title, question, rationale, baseline
    variants: [{id, change, overrides: [key=value, ...], input: recipe|full, combines: [ids], cost}]
    plans: {<plan>: {sensor_hw, sequences, duration_s, data_seed, recipes, seeds, max_steps, tau_px2,
                     values: {name: number}, gen_workers, preprocess_workers, train_workers, work, out}}

Placeholders in overrides: ``{tau_px2}`` and every name of the plan's ``values`` are replaced by
numbers; ``{record:<id>}`` by the first-seed checkpoint of record ``<id>`` (a variant that needs
another record's model waits until that checkpoint exists).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal, Optional, Sequence

import yaml

STUDIES_DIR = Path(__file__).resolve().parents[1] / "configs" / "studies"
RECORD_REF = re.compile(r"\{record:([A-Za-z0-9_.-]+)\}")


class MatrixError(RuntimeError):
    """An unknown study, plan or variant, a malformed study file, or a work folder of another plan."""


@dataclass(frozen=True)
class Variant:
    """One row of a study: overrides of the baseline record's config.

    Args:
        id: experiment id.
        change: what differs from the baseline, in words.
        overrides: ``key=value`` overrides on the baseline's config (placeholders: module doc).
        input: ``recipe`` (the plan's input, the sensor halved) or ``full`` (the sensor resolution).
        combines: ids of the single-change variants this one combines (its interaction is reported).
        cost: time per training step relative to the baseline; within a seed the costliest records
            train first, so that parallel workers finish together.
    """

    id: str
    change: str
    overrides: tuple[str, ...] = ()
    input: Literal["recipe", "full"] = "recipe"
    combines: tuple[str, ...] = ()
    cost: float = 1.0

    @property
    def full_input(self) -> bool:
        return self.input == "full"

    def needs(self) -> list[str]:
        """Records whose checkpoint this variant's overrides refer to."""
        return [m for o in self.overrides for m in RECORD_REF.findall(o)]


@dataclass(frozen=True)
class MatrixPlan:
    """Data, recipe, seeds and variants of one study under one plan.

    Args:
        study: study name (its YAML file).
        name: plan name ("cpu", "gpu").
        sensor_hw: generated sensor (height, width); the recipe input is half of it.
        sequences, duration_s, data_seed: the generated dataset (see ``generate_dataset``).
        recipes: config presets of the baseline, merged in order.
        seeds: training seeds of every variant.
        max_steps: training steps per run.
        tau_px2: size-aware tau in input pixels^2 (1024 at 640x360 input, scaled with the input area).
        values: further numbers the overrides refer to by name.
        gen_workers, preprocess_workers: processes for data generation and preprocessing.
        train_workers: training processes side by side by default.
        work, out: default work folder and results folder.
        catalog: every variant of the study; ``variants``: the ids this plan trains (the baseline first).
    """

    study: str
    name: str
    title: str
    question: str
    rationale: str
    baseline: str
    sensor_hw: tuple[int, int]
    sequences: int
    duration_s: float
    data_seed: int
    recipes: tuple[str, ...]
    seeds: tuple[int, ...]
    max_steps: int
    tau_px2: float
    catalog: tuple[Variant, ...]
    values: tuple[tuple[str, float], ...] = ()
    gen_workers: int = 1
    preprocess_workers: int = 2
    train_workers: int = 1
    work: str = ""
    out: str = ""
    variants: tuple[str, ...] = field(default=())

    @property
    def input_hw(self) -> tuple[int, int]:
        return self.sensor_hw[0] // 2, self.sensor_hw[1] // 2

    def variant(self, variant_id: str) -> Variant:
        for v in self.catalog:
            if v.id == variant_id:
                return v
        raise MatrixError(f"study {self.study}: unknown variant {variant_id!r}; known: {[v.id for v in self.catalog]}")

    def substitute(self, override: str) -> str:
        """``override`` with its numeric placeholders filled (``{record:...}`` is left to the runner)."""
        numbers = {"tau_px2": self.tau_px2, **dict(self.values)}
        for name, value in numbers.items():
            override = override.replace("{" + name + "}", f"{value:g}")
        left = [m for m in re.findall(r"\{([^}]*)\}", override) if not m.startswith("record:")]
        if left:
            raise MatrixError(f"study {self.study}, plan {self.name}: override {override!r} names "
                              f"{left[0]!r}, which the plan's values do not define")
        return override


def _study_file(study: str) -> Path:
    path = STUDIES_DIR / f"{study}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in STUDIES_DIR.glob("*.yaml"))
        raise MatrixError(f"unknown study {study!r}; known: {known}")
    return path


def _variant_of(path: Path, i: int, d: dict) -> Variant:
    if not isinstance(d, dict) or "id" not in d or "change" not in d:
        raise MatrixError(f"{path}: variants[{i}] needs 'id' and 'change'")
    unknown = set(d) - {"id", "change", "overrides", "input", "combines", "cost"}
    if unknown:
        raise MatrixError(f"{path}: variants[{i}] ({d['id']}): unknown field(s) {sorted(unknown)}")
    if d.get("input", "recipe") not in ("recipe", "full"):
        raise MatrixError(f"{path}: variants[{i}] ({d['id']}): input must be 'recipe' or 'full'")
    return Variant(str(d["id"]), str(d["change"]), tuple(str(o) for o in d.get("overrides") or ()),
                   d.get("input", "recipe"), tuple(str(c) for c in d.get("combines") or ()),
                   float(d.get("cost", 1.0)))


def load_plan(study: str, plan: str) -> MatrixPlan:
    """The named plan of a study file, every variant selected."""
    path = _study_file(study)
    try:
        doc = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise MatrixError(f"{path}: not valid YAML ({err})") from None
    plans = doc.get("plans") or {}
    if plan not in plans:
        raise MatrixError(f"study {study}: unknown plan {plan!r}; known: {sorted(plans)}")
    catalog = tuple(_variant_of(path, i, d) for i, d in enumerate(doc.get("variants") or ()))
    ids = [v.id for v in catalog]
    base = doc.get("baseline")
    if base not in ids:
        raise MatrixError(f"{path}: baseline {base!r} is not among the variants {ids}")
    for v in catalog:
        bad = [c for c in (*v.combines, *v.needs()) if c not in ids]
        if bad:
            raise MatrixError(f"{path}: variant {v.id} refers to unknown variant {bad[0]!r}")
    p = dict(plans[plan])
    try:
        return MatrixPlan(
            study=str(doc["name"]), name=plan, title=str(doc.get("title", doc["name"])),
            question=str(doc.get("question", "")).strip(), rationale=str(doc.get("rationale", "")).strip(),
            baseline=str(base), sensor_hw=tuple(int(x) for x in p.pop("sensor_hw")),
            sequences=int(p.pop("sequences")), duration_s=float(p.pop("duration_s")),
            data_seed=int(p.pop("data_seed")), recipes=tuple(str(r) for r in p.pop("recipes")),
            seeds=tuple(int(s) for s in p.pop("seeds")), max_steps=int(p.pop("max_steps")),
            tau_px2=float(p.pop("tau_px2")), catalog=catalog,
            values=tuple(sorted((str(k), float(v)) for k, v in (p.pop("values", None) or {}).items())),
            variants=tuple(ids), **{k: p.pop(k) for k in list(p)
                                    if k in ("gen_workers", "preprocess_workers", "train_workers", "work", "out")})
    except KeyError as err:
        raise MatrixError(f"{path}: plan {plan} lacks {err.args[0]!r}") from None
    except TypeError as err:
        raise MatrixError(f"{path}: plan {plan}: {err}") from None


def make_plan(name: str, *, study: str = "small_objects", seeds: Optional[Sequence[int]] = None,
              max_steps: Optional[int] = None, variants: Optional[Sequence[str]] = None) -> MatrixPlan:
    """A named plan of a study with optional changes (seeds, steps, a subset of the variants; the
    baseline and the records a chosen variant needs are always kept)."""
    plan = load_plan(study, name)
    if seeds is not None:
        if not seeds or len(set(seeds)) != len(seeds):
            raise MatrixError(f"seeds {list(seeds)}: give distinct seeds, e.g. 0,1,2")
        plan = replace(plan, seeds=tuple(int(s) for s in seeds))
    if max_steps is not None:
        if max_steps < 1:
            raise MatrixError(f"max_steps must be >= 1, got {max_steps}")
        plan = replace(plan, max_steps=int(max_steps))
    if variants is not None:
        chosen = {plan.variant(v).id for v in variants} | {plan.baseline}
        chosen |= {n for v in list(chosen) for n in plan.variant(v).needs()}
        plan = replace(plan, variants=tuple(v.id for v in plan.catalog if v.id in chosen))
    return plan
