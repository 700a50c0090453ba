"""How large is the noise? Seed summaries, and intervals of the difference between two experiments.

A result of one seed is one draw. Two sources of noise are measured:

- training noise, over seeds: when both experiments hold at least two seeds, the difference of the
  seed means gets a Welch t-interval (unequal variances, Welch-Satterthwaite degrees of freedom);
- training noise of a design (several records of one recipe, e.g. the experiment matrix): the seed
  variance is pooled over every record with at least two seeds (one-way ANOVA contrast, assuming the
  records share one seed variance), so records with few seeds, even one, get a t-interval;
- evaluation noise, otherwise: a paired bootstrap over the evaluation data. The last validation's
  ground truth and detections of every seed run are saved (``validation/detections.npz``); each
  resample draws evaluation units with replacement (the same draws for both experiments) and the
  metric is computed again with ``evdet.evaluation.evaluate``, with the arguments of the validation.
  Units are whole sequences when there are at least ``MIN_SEQUENCES`` of them, else blocks of
  ``BLOCK_FRAMES`` consecutive label frames (frames of one sequence are correlated, so a block
  interval is a lower bound of the evaluation noise). The interval is the bias-corrected (Efron's
  BC: AP of resamples with duplicated units is biased) and expanded (percentiles widened for few
  units, Hesterberg 2015) percentile interval of the resampled statistic. A one-seed bootstrap
  sees evaluation noise only, not training noise.

Everything is deterministic: the resamples come from ``numpy.random.default_rng(rng_seed)``.

This module holds the two entry points (``value_interval``, ``difference_interval``) and gives the
statistics room's public names in one place; the parts live in ``difference`` (the ``Difference``
value, method names, ``IntervalError``), ``seed_intervals`` (t over seeds, Welch, pooled),
``seed_runs`` (a record's evaluated seed runs and values), ``validation_data`` (the saved
``detections.npz``, resampling units) and ``bootstrap`` (the paired bootstrap).
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from evdet.experiments.records.metric_keys import headline_protocol, split_metric_key
from evdet.experiments.records.record import Experiment
from evdet.experiments.statistics.bootstrap import N_BOOT, RNG_SEED, bootstrap_bounds, bootstrap_interval, expanded_tail
from evdet.experiments.statistics.difference import (CONFIDENCE, METHOD_BOOT_BLOCK, METHOD_BOOT_SEQ, METHOD_NONE,
                                                     METHOD_POOLED, METHOD_SEED_T, METHOD_WELCH, Difference,
                                                     IntervalError)
from evdet.experiments.statistics.seed_intervals import (SeedSummary, pooled_contrast, pooled_interval,
                                                         pooled_variance, seed_summary, welch_interval)
from evdet.experiments.statistics.seed_runs import detection_files, run_results, seed_values
from evdet.experiments.statistics.validation_data import (BLOCK_FRAMES, DETECTIONS_FILE, MIN_SEQUENCES, ValidationData,
                                                          evaluate_saved, evaluation_units, load_validation_detections,
                                                          save_validation_detections)


def _protocol_of(exp: Experiment, metric: str, protocol: Optional[str]) -> Optional[str]:
    return split_metric_key(metric)[0] or protocol or headline_protocol(exp.results)


def value_interval(exp: Experiment, metric: str, protocol: Optional[str] = None, *,
                   confidence: float = CONFIDENCE, n_boot: int = N_BOOT, rng_seed: int = RNG_SEED,
                   min_sequences: int = MIN_SEQUENCES, block_frames: int = BLOCK_FRAMES,
                   progress: bool = False) -> Difference:
    """Interval of one experiment's metric: t over seeds (>= 2 seeds), else bootstrap over evaluation units.

    ``n_a`` is 0; ``n_b`` counts the seeds or units. Monitors (``monitors.*``) of a single run have
    no noise estimate: the value comes back with ``METHOD_NONE``.
    """
    proto = _protocol_of(exp, metric, protocol)
    values = [v for v in seed_values(exp, metric, proto) if v is not None]
    if len(values) >= 2:
        s = seed_summary(values, confidence)
        return Difference(s.mean, s.low, s.high, METHOD_SEED_T, 0, s.n, confidence, f"{s.n} seeds",
                          dof=float(s.n - 1), covers_training_noise=True)
    if not values:
        return Difference(None, None, None, METHOD_NONE, 0, 0, confidence, f"{exp.id} has no value for {metric}")
    if split_metric_key(metric)[1].startswith("monitors.") or proto is None:
        return Difference(values[0], None, None, METHOD_NONE, 0, 1, confidence, "one run")
    d = bootstrap_interval([exp], metric, proto, scale=1.0, confidence=confidence, n_boot=n_boot,
                   rng_seed=rng_seed, min_sequences=min_sequences, block_frames=block_frames, progress=progress)
    if d.mean is None:   # no bootstrap possible: keep the value, say why there is no interval
        return Difference(values[0], None, None, METHOD_NONE, 0, 1, confidence, d.detail)
    return d


def difference_interval(base: Experiment, other: Experiment, metric: str, protocol: Optional[str] = None, *,
                        confidence: float = CONFIDENCE, n_boot: int = N_BOOT, rng_seed: int = RNG_SEED,
                        scale: float = 1.0, min_sequences: int = MIN_SEQUENCES,
                        block_frames: int = BLOCK_FRAMES, progress: bool = False) -> Difference:
    """Interval of ``other - scale * base`` for ``metric`` under ``protocol``.

    Over seeds (Welch t) when both experiments hold >= 2 evaluated seeds; else a paired bootstrap over
    evaluation units of the saved validation detections (each side's statistic is the mean over its
    seed runs); else no interval (``METHOD_NONE``, ``detail`` says why) with the point difference.

    Raises:
        IntervalError: the saved validation data of the two differ in ground truth.
    """
    proto = _protocol_of(base, metric, protocol)
    a = [v for v in seed_values(base, metric, proto) if v is not None]
    b = [v for v in seed_values(other, metric, proto) if v is not None]
    if not a or not b:
        return Difference(None, None, None, METHOD_NONE, len(a), len(b), confidence,
                          f"{base.id if not a else other.id} has no value for {metric}")
    if len(a) >= 2 and len(b) >= 2:
        mean, low, high, dof = welch_interval(a, b, confidence, scale)
        return Difference(mean, low, high, METHOD_WELCH, len(a), len(b), confidence,
                          f"{len(a)} and {len(b)} seeds, {dof:.1f} degrees of freedom", dof=dof,
                          covers_training_noise=True)
    point = float(np.mean(b) - scale * np.mean(a))
    if split_metric_key(metric)[1].startswith("monitors.") or proto is None:
        return Difference(point, None, None, METHOD_NONE, len(a), len(b), confidence,
                          "training monitor of single runs: no noise estimate")
    diff = bootstrap_interval([base, other], metric, proto, scale=scale, confidence=confidence, n_boot=n_boot,
                      rng_seed=rng_seed, min_sequences=min_sequences, block_frames=block_frames,
                      progress=progress)
    if diff.mean is None:   # no bootstrap possible: keep the point estimate, say why there is no interval
        return Difference(point, None, None, METHOD_NONE, len(a), len(b), confidence, diff.detail)
    return diff


__all__ = ["BLOCK_FRAMES", "CONFIDENCE", "DETECTIONS_FILE", "MIN_SEQUENCES", "N_BOOT", "RNG_SEED", "METHOD_WELCH",
           "METHOD_POOLED", "METHOD_SEED_T", "METHOD_BOOT_SEQ", "METHOD_BOOT_BLOCK", "METHOD_NONE", "Difference",
           "IntervalError", "SeedSummary", "ValidationData", "bootstrap_bounds", "difference_interval",
           "evaluation_units", "expanded_tail", "load_validation_detections", "pooled_contrast", "pooled_interval",
           "pooled_variance", "save_validation_detections", "seed_summary", "seed_values", "value_interval",
           "welch_interval", "detection_files", "evaluate_saved", "run_results"]
