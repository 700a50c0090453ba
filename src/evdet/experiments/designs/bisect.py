"""Config bisection: the smallest set of changed keys that turns a GOOD run into a BAD one.

``ddmin`` is Zeller's delta debugging (minimising variant) over the changed keys of BAD vs GOOD:
split the current failing set into n parts, keep a failing part (n = 2) or a failing complement
(n - 1), else double n; it ends with a set C that fails while every C minus one key passes
(1-minimal). With one culprit among K keys it halves the set each round, about 1.5 runs per round.

``bisect_experiments`` runs each probed subset as an ordinary record (GOOD's config with those keys
taken from BAD; equal configs are reused, so a re-run or a resumed bisection trains nothing twice).
A probe is bad when its run failed (diverged, NaN stop, crash), logged no value, or its value is on
the wrong side of the threshold (default: midway between GOOD and BAD). The proof it prints: GOOD
(good), BAD (bad), GOOD + C (bad), GOOD + C minus each key (good), and BAD minus C (does removing
the culprit restore GOOD's value, or do other keys contribute too).
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable, Literal, Optional, Sequence

from evdet.experiments.designs.arms import (Arm, DesignError, RecordIndex, apply_keys, changed_keys,
                                            check_loggable_metric, config_of, effect, read_metric, write_design_summary)
from evdet.experiments.records.hypotheses import hypothesis_document
from evdet.experiments.records.record import load_experiment
from evdet.experiments.running.executors import Executor, LocalExecutor, record_state

Mode = Literal["max", "min"]


def split_parts(items: Sequence[str], n: int) -> list[list[str]]:
    """``items`` cut into ``n`` contiguous parts of near-equal size (the first ones one longer)."""
    size, extra = divmod(len(items), n)
    out, start = [], 0
    for i in range(n):
        stop = start + size + (1 if i < extra else 0)
        out.append(list(items[start:stop]))
        start = stop
    return [p for p in out if p]


def ddmin(changes: Sequence[str], first_bad: Callable[[list[list[str]]], Optional[int]]) -> list[str]:
    """1-minimal failing subset of ``changes`` (the whole set must fail, the empty set pass).

    Args:
        first_bad: given candidate subsets in order, the index of the first one that fails, or None.
            It may evaluate them one by one and stop early, or all at once (parallel workers).
    """
    current, n = list(changes), 2
    while len(current) > 1:
        parts = split_parts(current, min(n, len(current)))
        idx = first_bad(parts)
        if idx is not None:
            current, n = parts[idx], 2
            continue
        if len(parts) > 2:   # with two parts the complements are the parts themselves
            complements = [[k for k in current if k not in set(p)] for p in parts]
            idx = first_bad(complements)
            if idx is not None:
                current, n = complements[idx], max(len(parts) - 1, 2)
                continue
        if len(parts) >= len(current):
            break
        n = min(len(current), 2 * len(parts))
    return current


@dataclass
class Probe:
    """One probed configuration: GOOD plus ``keys`` from BAD."""

    keys: list[str]
    exp_id: str
    state: str
    value: Optional[float]
    bad: bool
    role: str = "probe"


@dataclass
class BisectResult:
    good: str
    bad: str
    metric: str
    mode: str
    threshold: Optional[float]
    keys: list[str]
    culprit: list[str]
    probes: list[Probe] = field(default_factory=list)      # every configuration looked at, in order
    proof: list[Probe] = field(default_factory=list)
    trained: list[str] = field(default_factory=list)       # records trained by this call
    culprit_explains_all: Optional[bool] = None            # BAD minus the culprit is good
    regression: Optional[dict] = None                      # BAD - GOOD with its interval (Difference.to_dict)
    regression_within_noise: Optional[bool] = None         # that interval contains 0 (or there is none)

    def to_dict(self) -> dict:
        return asdict(self)


def suspects_first(good_cfg: dict, bad_cfg: dict) -> list[str]:
    """Changed keys in the order ``exp diff`` ranks them (likely cause first), so the first half that
    delta debugging tries holds the top suspects: when one of them is the culprit, each round costs one run."""
    from evdet.experiments.analysis.config_diff import diff_configs

    keys = changed_keys(good_cfg, bad_cfg)
    ranked = [c.key for c in diff_configs(good_cfg, bad_cfg).changes if c.key in keys]
    return ranked + [k for k in keys if k not in ranked]


def default_threshold(good_value: float, bad_value: Optional[float]) -> Optional[float]:
    """Midway between GOOD and BAD; None (only failed runs count as bad) when BAD has no value."""
    return None if bad_value is None else (good_value + bad_value) / 2.0


def is_bad_value(state: str, value: Optional[float], mode: Mode, threshold: Optional[float]) -> bool:
    """Bad: the run failed (diverged / NaN / crash), has no value, or lies past the threshold."""
    if state == "failed" or value is None:
        return True
    if threshold is None:
        return False
    return value < threshold if mode == "max" else value > threshold


def _arm_hypothesis(exp_id: str, name: str, keys: Sequence[str], good_cfg: dict, bad_cfg: dict, good: str,
                    bad: str, metric: str, mode: Mode, threshold: Optional[float], n_keys: int) -> str:
    from evdet.experiments.analysis.config_diff import flatten

    fg, fb = flatten(good_cfg), flatten(bad_cfg)
    lines = "\n".join(f"- `{k}`: {fg.get(k, '<absent>')!r} -> {fb.get(k, '<absent>')!r}" for k in keys)
    op = ">=" if mode == "max" else "<="
    crit = f"- {metric} {op} {threshold:.6g}" if threshold is not None else f"- {metric} {op} base"
    return hypothesis_document(
        exp_id, question=f"Do these {len(keys)} of the {n_keys} changes from `{good}` to `{bad}` turn the good run "
                         f"bad on {metric}?\n(bisection `{name}`)",
        hypothesis=f"`{good}` with only these keys taken from `{bad}` stays good:\n{lines}",
        rationale=f"Designed by `evdet exp bisect {good} {bad} --metric {metric} --mode {mode}` (delta debugging "
                  "over the changed\nkeys; a failed / diverged run counts as bad).",
        criteria=crit,
        risks="One run per probe: a difference within run-to-run noise can mislead the search; check the culprit "
              "with seeds.")


def bisect_experiments(root: Path, good: str, bad: str, metric: str, mode: Mode, *,
                       threshold: Optional[float] = None, name: Optional[str] = None,
                       executor: Optional[Executor] = None, confirm: bool = True,
                       echo: Callable[[str], None] = print) -> BisectResult:
    """Find the smallest set of keys that turns GOOD into BAD on ``metric`` (see module doc).

    Args:
        mode: "max" (higher is better) or "min" (lower is better, e.g. train/loss).
        threshold: values worse than this are bad (default: midway between GOOD and BAD).
        name: prefix of the records it creates (default ``bisect_<GOOD>_<BAD>``).
        executor: how records are trained (default: one after another in this process).
        confirm: also run BAD minus the culprit (does the culprit explain the whole regression?).
    Raises:
        DesignError: nothing changed, unknown metric, GOOD not good / BAD not bad.
    """
    root = Path(root)
    if mode not in ("max", "min"):
        raise DesignError(f"--mode {mode!r}: use max or min")
    name = name or f"bisect_{good}_{bad}"
    good_cfg, bad_cfg = config_of(root, good), config_of(root, bad)
    keys = suspects_first(good_cfg, bad_cfg)
    if not keys:
        raise DesignError(f"{good} and {bad} have the same config (seed and name aside): nothing to bisect")
    finished = [e for e in (load_experiment(root, good), load_experiment(root, bad)) if e.state == "completed"]
    check_loggable_metric(metric, bad_cfg, finished)
    b = _Bisection(root, name, good_cfg, bad_cfg, executor or LocalExecutor(root, echo=echo),
                   BisectResult(good=good, bad=bad, metric=metric, mode=mode, threshold=threshold, keys=keys,
                                culprit=[]))
    echo(f"bisect {good} -> {bad}: {len(keys)} changed keys, metric {metric} ({mode})")
    ends = b.run_ends(echo)
    b.result.culprit = ddmin(keys, b.first_bad)
    b.result.proof = b.proof(ends, confirm)
    write_design_summary(root, name, {"kind": "bisect", **b.result.to_dict()})
    return b.result


class _Bisection:
    """The state of one bisection: the probes looked at (each subset of keys once) and its result."""

    def __init__(self, root: Path, name: str, good_cfg: dict, bad_cfg: dict, executor: Executor,
                 result: BisectResult) -> None:
        self.root, self.name, self.good_cfg, self.bad_cfg = root, name, good_cfg, bad_cfg
        self.executor, self.result = executor, result
        self.index = RecordIndex(root)
        self.cache: dict[frozenset, Probe] = {}

    def probe_of(self, exp_id: str, subset: Sequence[str], role: str) -> Probe:
        r = self.result
        exp = load_experiment(self.root, exp_id)
        value = read_metric(exp, r.metric)
        return Probe(keys=sorted(subset), exp_id=exp_id, state=exp.state, value=value,
                     bad=is_bad_value(exp.state, value, r.mode, r.threshold), role=role)

    def arm_id(self, subset: Sequence[str]) -> str:
        """The record of GOOD + ``subset`` from BAD (GOOD / BAD themselves for none / all keys), created once."""
        r = self.result
        if not subset:
            return r.good
        if set(subset) == set(r.keys):
            return r.bad
        digest = hashlib.sha1("\n".join(sorted(subset)).encode()).hexdigest()[:8]
        exp_id = f"{self.name}-{len(subset)}k-{digest}"
        return self.index.ensure(Arm(
            exp_id=exp_id, config=apply_keys(self.good_cfg, self.bad_cfg, subset), base=r.good,
            hypothesis=_arm_hypothesis(exp_id, self.name, sorted(subset), self.good_cfg, self.bad_cfg, r.good, r.bad,
                                       r.metric, r.mode, r.threshold, len(r.keys)),
            command=f"evdet exp bisect {r.good} {r.bad} --metric {r.metric} --mode {r.mode}"))

    def evaluate(self, subsets: list[list[str]], role: str = "probe", lazy: bool = False) -> list[Probe]:
        """Probes of ``subsets`` in order; ``lazy``: a sequential executor stops at the first bad one."""
        ids = [self.arm_id(s) for s in subsets]
        before = {i for i in ids if record_state(self.root, i) in ("completed", "failed")}

        def stop(exp_id: str) -> bool:
            return self.probe_of(exp_id, subsets[ids.index(exp_id)], role).bad

        self.executor.run(ids, stop_at_first=stop if lazy else None)
        out = []
        for s, i in zip(subsets, ids):
            key = frozenset(s)
            if key not in self.cache:
                if record_state(self.root, i) not in ("completed", "failed"):
                    break          # a sequential executor stopped before this one
                self.cache[key] = self.probe_of(i, s, role)
                self.result.probes.append(self.cache[key])
                if i not in before:
                    self.result.trained.append(i)
            out.append(replace(self.cache[key], role=role))
        return out

    def first_bad(self, subsets: list[list[str]]) -> Optional[int]:
        """``ddmin``'s question: the index of the first bad subset, or None."""
        return next((i for i, p in enumerate(self.evaluate(subsets, lazy=True)) if p.bad), None)

    def run_ends(self, echo: Callable[[str], None]) -> tuple[Probe, Probe]:
        """Train (or reuse) GOOD and BAD, set the threshold and the regression; their probes.

        Raises DesignError when GOOD has no value, is not better than BAD, or the two are not good / bad."""
        r, root = self.result, self.root
        pre_done = {i for i in (r.good, r.bad) if record_state(root, i) in ("completed", "failed")}
        self.executor.run([r.good, r.bad])
        r.trained += [i for i in (r.good, r.bad) if i not in pre_done]
        g_exp, b_exp = load_experiment(root, r.good), load_experiment(root, r.bad)
        g_val, b_val = read_metric(g_exp, r.metric), read_metric(b_exp, r.metric)
        if g_exp.state != "completed" or g_val is None:
            raise DesignError(f"{r.good}: GOOD must complete with a value of {r.metric} (state {g_exp.state}, "
                              f"value {g_val})")
        if b_val is not None and (b_val >= g_val if r.mode == "max" else b_val <= g_val):
            raise DesignError(f"{r.good} is not better than {r.bad} on {r.metric} with --mode {r.mode} "
                              f"(GOOD {g_val:.6g}, BAD {b_val:.6g}): nothing regressed; check --mode")
        if r.threshold is None:
            r.threshold = default_threshold(g_val, b_val)
        if b_exp.state == "completed":
            diff = effect(g_exp, b_exp, r.metric)
            r.regression, r.regression_within_noise = diff.to_dict(), diff.within_noise(0.0)
            if diff.has_interval and diff.within_noise(0.0):
                echo(f"warning: BAD - GOOD on {r.metric} is {diff.text()}: within noise, the bisection may chase noise")
        g_probe, b_probe = self.evaluate([[]], "GOOD")[0], self.evaluate([list(r.keys)], "BAD")[0]
        if g_probe.bad:
            raise DesignError(f"{r.good}: GOOD is bad on {r.metric} ({g_val:.6g} vs threshold {r.threshold})")
        if not b_probe.bad:
            raise DesignError(f"{r.bad}: BAD is not bad on {r.metric} ({b_val} vs threshold {r.threshold}; "
                              f"GOOD {g_val:.6g}); pass --threshold")
        return g_probe, b_probe

    def proof(self, ends: tuple[Probe, Probe], confirm: bool) -> list[Probe]:
        """GOOD, BAD, the culprit alone on GOOD, the culprit minus each key, and (``confirm``) BAD without it."""
        r, culprit = self.result, self.result.culprit
        proof = [*ends, self.evaluate([culprit], "culprit alone on GOOD")[0]]
        if len(culprit) > 1:
            proof += self.evaluate([[k for k in culprit if k != drop] for drop in culprit], "culprit minus one key")
        if confirm and len(culprit) < len(r.keys):
            rest = self.evaluate([[k for k in r.keys if k not in culprit]], "BAD without the culprit")[0]
            proof.append(rest)
            r.culprit_explains_all = not rest.bad
        return proof
