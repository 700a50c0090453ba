"""Ablations: the effect of each changed key of VARIANT vs BASE, with intervals, and whether they add up.

For the K changed keys (name and seeds aside) the design runs, as ordinary records under the root:

    base          BASE (with the requested seeds)                   reused when it exists
    variant       VARIANT (with the requested seeds)                reused when it exists
    add-<key>     BASE with only <key> from VARIANT                 single effect  = add - base
    drop-<key>    VARIANT with <key> set back to BASE's value      leave-one-out  = variant - drop

Each effect is ``difference_interval`` of ``evdet.experiments.statistics.intervals`` (Welch t over seeds when both
arms have >= 2 seeds, else a paired bootstrap over evaluation sequences / frame blocks, else no
interval), read as in ``exp verdict``: an effect is real only when its interval excludes 0.
Interaction: I = (variant - base) - sum_k (add_k - base). With seeds in every arm its interval is a
Welch-Satterthwaite t-interval of that contrast of arm means (the shared base counted K - 1 times);
with one seed, a normal approximation from the single differences' intervals (treated as independent).
The effects "add up" when the interval of I contains 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional, Sequence

from evdet.experiments.designs.arms import (Arm, DesignError, RecordIndex, apply_keys, arm_values, changed_keys,
                                            check_loggable_metric, config_of, effect, with_overrides,
                                            write_design_summary)
from evdet.experiments.records.hypotheses import hypothesis_document
from evdet.experiments.records.record import Experiment, load_experiment
from evdet.experiments.running.executors import Executor, LocalExecutor, record_state
from evdet.experiments.statistics.intervals import CONFIDENCE, METHOD_NONE, Difference, IntervalError

METHOD_CONTRAST = "welch-t over seeds (contrast of arm means)"
METHOD_NORMAL = "normal approx. from the single intervals"


def contrast_interval(samples: Sequence[Sequence[float]], coefs: Sequence[float],
                      confidence: float = CONFIDENCE) -> tuple[float, float, float, float]:
    """t-interval of sum_j c_j * mean(samples_j) for independent samples (Welch-Satterthwaite dof).

    Returns (estimate, low, high, dof). Every sample needs >= 2 values.
    """
    from scipy.stats import t as student_t

    est, se2, dof_den = 0.0, 0.0, 0.0
    for xs, c in zip(samples, coefs):
        n = len(xs)
        if n < 2:
            raise IntervalError(f"contrast interval needs >= 2 values per arm, got {n}")
        mean = sum(xs) / n
        var = sum((x - mean) ** 2 for x in xs) / (n - 1)
        est += c * mean
        term = c * c * var / n
        se2 += term
        dof_den += term * term / (n - 1)
    if se2 == 0.0:
        return est, est, est, math.inf
    dof = se2 * se2 / dof_den
    half = float(student_t.ppf(0.5 + confidence / 2, dof)) * math.sqrt(se2)
    return est, est - half, est + half, dof


def interaction(full: Difference, singles: Sequence[Difference], arms: dict[str, Experiment], keys: Sequence[str],
                metric: str) -> Difference:
    """Interval of I = full - sum(singles) (see module doc)."""
    if full.mean is None or any(s.mean is None for s in singles):
        return Difference(None, None, None, METHOD_NONE, 0, 0, CONFIDENCE, "an arm has no value")
    est = full.mean - sum(s.mean for s in singles)
    samples = [arm_values(arms["variant"], metric), arm_values(arms["base"], metric),
               *[arm_values(arms[f"add:{k}"], metric) for k in keys]]
    if all(len(s) >= 2 for s in samples):
        coefs = [1.0, float(len(keys) - 1), *[-1.0] * len(keys)]
        est, low, high, dof = contrast_interval(samples, coefs)
        return Difference(est, low, high, METHOD_CONTRAST, 0, min(len(s) for s in samples), CONFIDENCE,
                          f"{dof:.1f} degrees of freedom", dof=dof, covers_training_noise=True)
    if not full.has_interval or not all(s.has_interval for s in singles):
        return Difference(est, None, None, METHOD_NONE, 0, 0, CONFIDENCE, "a single effect has no interval")
    from scipy.stats import norm

    z = float(norm.ppf(0.5 + CONFIDENCE / 2))
    se = math.sqrt(sum(((d.high - d.low) / (2 * z)) ** 2 for d in [full, *singles]))
    return Difference(est, est - z * se, est + z * se, METHOD_NORMAL, 0, 0, CONFIDENCE,
                      "shares the base run: correlation ignored",
                      covers_training_noise=all(d.covers_training_noise for d in [full, *singles]))


def effect_word(d: Difference) -> str:
    """``raises`` / ``lowers`` (an interval covering training noise wholly above / below 0), ``within
    noise``, ``beyond evaluation noise (...)`` or ``no interval`` (``statistics.policy.effect_word``)."""
    from evdet.experiments.statistics.policy import effect_word as policy_word

    return policy_word(d, "raises", "lowers")


@dataclass
class MetricEffects:
    metric: str
    full: Difference
    single: dict[str, Difference]
    leave_one_out: dict[str, Difference]
    interaction: Difference

    @property
    def adds_up(self) -> Optional[bool]:
        """True when the interaction interval contains 0, False when it excludes it, None without interval."""
        side = self.interaction.side(0.0)
        return None if side == "unknown" else side == "straddles"

    def single_holm(self) -> dict:
        """Holm over the family of single effects (each key alone vs the shared base)."""
        from evdet.experiments.statistics.multiplicity import holm_family

        return holm_family(self.single)

    def to_dict(self) -> dict:
        return {"metric": self.metric, "full": self.full.to_dict(),
                "single": {k: d.to_dict() for k, d in self.single.items()},
                "single_holm": {k: h.to_dict() for k, h in self.single_holm().items()},
                "leave_one_out": {k: d.to_dict() for k, d in self.leave_one_out.items()},
                "interaction": self.interaction.to_dict(), "adds_up": self.adds_up}


@dataclass
class AblationResult:
    base: str
    variant: str
    keys: list[str]
    arms: dict[str, str]                      # role -> record id
    effects: list[MetricEffects] = field(default_factory=list)
    trained: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)     # arms whose run failed (diverged, NaN, crash)

    def to_dict(self) -> dict:
        return {"kind": "ablate", "base": self.base, "variant": self.variant, "keys": self.keys, "arms": self.arms,
                "effects": [e.to_dict() for e in self.effects], "trained": self.trained, "failed": self.failed}


def _hypothesis(exp_id: str, name: str, role: str, key: Optional[str], base: str, variant: str, old, new,
                metrics: Sequence[str]) -> str:
    if role == "add":
        what = f"`{base}` with only `{key}` changed to {new!r} (as in `{variant}`; was {old!r})"
        question = f"What does `{key}` alone do to {', '.join(metrics)}, applied to `{base}`?"
    elif role == "drop":
        what = f"`{variant}` with `{key}` set back to {old!r} (as in `{base}`; was {new!r})"
        question = f"What does `{variant}` lose without `{key}`?"
    else:
        what = f"`{base if role == 'base' else variant}` re-run with the ablation's seeds"
        question = f"Reference arm ({role}) of the ablation `{name}`."
    return hypothesis_document(
        exp_id, question=f"{question} (ablation `{name}`: `{base}` -> `{variant}`)", hypothesis=what,
        rationale=f"Designed by `evdet exp ablate {base} {variant}`: one-key-added and leave-one-out arms of "
                  "every changed key.",
        criteria="\n".join(f"- {m} >= base" for m in metrics),
        risks="Effects within the interval of run-to-run noise are not effects; keys that interact do not add up.")


def default_metrics(root: Path, variant: str) -> list[str]:
    """The metrics of VARIANT's success criteria, else the headline AP."""
    from evdet.experiments.analysis.verdict import CriteriaError, parse_criteria

    exp = load_experiment(root, variant)
    try:
        metrics = list(dict.fromkeys(c.metric for c in parse_criteria(exp.hypothesis)))
    except CriteriaError:
        metrics = []
    return metrics or ["AP"]


def ablate_experiments(root: Path, base: str, variant: str, *, metrics: Optional[Sequence[str]] = None,
                       seeds: Optional[Sequence[int]] = None, name: Optional[str] = None,
                       executor: Optional[Executor] = None, echo: Callable[[str], None] = print) -> AblationResult:
    """Run the ablation of VARIANT vs BASE (see module doc) and estimate every effect.

    Args:
        metrics: metric keys (default: VARIANT's criteria metrics, else AP).
        seeds: seeds of every arm (recorded as the config's ``seeds``); None keeps each config's own.
        name: prefix of the records it creates (default ``ablate_<BASE>_<VARIANT>``).
    Raises:
        DesignError: nothing changed, or a metric no run logs (before any training).
    """
    from evdet.experiments.analysis.config_diff import flatten

    root = Path(root)
    name = name or f"ablate_{base}_{variant}"
    base_cfg, var_cfg = config_of(root, base), config_of(root, variant)
    keys = changed_keys(base_cfg, var_cfg)
    if not keys:
        raise DesignError(f"{base} and {variant} have the same config (seeds and name aside): nothing to ablate")
    metrics = list(metrics or default_metrics(root, variant))
    finished = [e for e in (load_experiment(root, base), load_experiment(root, variant)) if e.state == "completed"]
    for m in metrics:
        check_loggable_metric(m, var_cfg, finished)
    if seeds:
        base_cfg, var_cfg = (with_overrides(c, {"seeds": [int(s) for s in seeds]}) for c in (base_cfg, var_cfg))
    fb, fv = flatten(base_cfg), flatten(var_cfg)
    plan: dict[str, Arm] = {
        "base": Arm(f"{name}-base", base_cfg, _hypothesis(f"{name}-base", name, "base", None, base, variant, None,
                                                          None, metrics), base=base),
        "variant": Arm(f"{name}-variant", var_cfg, _hypothesis(f"{name}-variant", name, "variant", None, base,
                                                               variant, None, None, metrics), base=base)}
    for k in keys:
        plan[f"add:{k}"] = Arm(f"{name}-add-{k}", apply_keys(base_cfg, var_cfg, [k]),
                               _hypothesis(f"{name}-add-{k}", name, "add", k, base, variant, fb.get(k), fv.get(k),
                                           metrics), base=base)
        plan[f"drop:{k}"] = Arm(f"{name}-drop-{k}", apply_keys(var_cfg, base_cfg, [k]),
                                _hypothesis(f"{name}-drop-{k}", name, "drop", k, base, variant, fb.get(k), fv.get(k),
                                            metrics), base=base)
    index = RecordIndex(root)
    command = f"evdet exp ablate {base} {variant}" + (f" --seeds {','.join(map(str, seeds))}" if seeds else "")
    ids = {role: index.ensure(Arm(a.exp_id, a.config, a.hypothesis, a.base, command)) for role, a in plan.items()}
    echo(f"ablate {base} -> {variant}: {len(keys)} changed keys, {len(set(ids.values()))} records "
         f"({sum(record_state(root, i) not in ('completed', 'failed') for i in set(ids.values()))} to train)")
    before = {i for i in ids.values() if record_state(root, i) in ("completed", "failed")}
    executor = executor or LocalExecutor(root, echo=echo)
    executor.run(list(dict.fromkeys(ids.values())))
    arms = {role: load_experiment(root, i) for role, i in ids.items()}
    result = AblationResult(base=base, variant=variant, keys=keys, arms=ids,
                            trained=[i for i in dict.fromkeys(ids.values()) if i not in before],
                            failed=sorted({e.id for e in arms.values() if e.state == "failed"}))
    for m in metrics:
        full = effect(arms["base"], arms["variant"], m)
        single = {k: effect(arms["base"], arms[f"add:{k}"], m) for k in keys}
        loo = {k: effect(arms[f"drop:{k}"], arms["variant"], m) for k in keys}
        result.effects.append(MetricEffects(m, full, single, loo,
                                            interaction(full, list(single.values()), arms, keys, m)))
    write_design_summary(root, name, result.to_dict())
    return result
