"""The paired bootstrap over evaluation units of the saved validation data (see ``intervals``):
resampled evaluations (memoised per run file), the bias-corrected expanded percentile bounds, and the
bootstrap ``Difference`` of two experiments or the interval of one."""

from __future__ import annotations

import hashlib
import math
from collections import OrderedDict
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from evdet.experiments.records.metric_keys import metric_value
from evdet.experiments.records.record import Experiment
from evdet.experiments.statistics.difference import (CONFIDENCE, METHOD_BOOT_BLOCK, METHOD_BOOT_SEQ, METHOD_NONE,
                                                     Difference, IntervalError)
from evdet.experiments.statistics.seed_runs import detection_files
from evdet.experiments.statistics.validation_data import evaluate_saved, evaluation_units, load_validation_detections

N_BOOT = 200
RNG_SEED = 0
MIN_UNITS = 4


def _evaluate_units(units: tuple[list, list], idx: np.ndarray, protocol: str, eval_kwargs: dict) -> dict:
    """``{"protocols": {protocol: EvalResult dict}}`` of the units picked by ``idx``."""
    d = evaluate_saved([units[0][i] for i in idx], [units[1][i] for i in idx], protocol, eval_kwargs)
    return {"protocols": {protocol: {k: d[k] for k in ("metrics", "per_class", "groups")}}}


_MEMO: OrderedDict = OrderedDict()     # bootstrap evaluations per (run file, protocol, resamples); LRU
_MEMO_SIZE = 64


def _replicates(paths: Sequence[Path], protocol: str, idx: np.ndarray, *, min_sequences: int,
                block_frames: int, progress: bool) -> tuple[list[list[dict]], list[dict], str]:
    """Per run: the documents of every resample and of the whole data; the ground-truth digest.

    Raises:
        IntervalError: the runs of one experiment were validated on different ground truth.
    """
    from evdet.evaluation.protocols import get_protocol

    tol = get_protocol(protocol).time_tolerance_us
    per_run, full, signature = [], [], None
    for path in paths:
        stat = path.stat()
        key = (str(path), stat.st_mtime_ns, stat.st_size, protocol, idx.shape, hash(idx.tobytes()),
               min_sequences, block_frames)
        if key not in _MEMO:
            data = load_validation_detections(path)
            units = evaluation_units(data, tol, min_sequences=min_sequences, block_frames=block_frames)
            units_sig = _ground_truth_digest(units[0])
            if len(units[0]) != idx.shape[1]:
                raise IntervalError(f"{path}: {len(units[0])} evaluation units, expected {idx.shape[1]}")
            rows = range(idx.shape[0])
            if progress:
                from rich.progress import track

                rows = track(rows, description=f"bootstrap {path.parent.parent.name} {protocol}", transient=True)
            boots = [_evaluate_units(units[:2], idx[r], protocol, data.eval_kwargs) for r in rows]
            whole = _evaluate_units(units[:2], np.arange(idx.shape[1]), protocol, data.eval_kwargs)
            _MEMO[key] = (boots, whole, units_sig)
            if len(_MEMO) > _MEMO_SIZE:
                _MEMO.popitem(last=False)
        _MEMO.move_to_end(key)
        boots, whole, sig = _MEMO[key]
        if signature is not None and sig != signature:
            raise IntervalError(f"{path}: validated on different ground truth than {paths[0]}")
        signature = sig
        per_run.append(boots)
        full.append(whole)
    return per_run, full, signature


def expanded_tail(n: int, confidence: float = CONFIDENCE) -> float:
    """Tail probability of the expanded percentile interval (Hesterberg 2015) for ``n`` resampled units.

    Plain percentile intervals from few units are too narrow (the bootstrap spread is that of a
    ``1/n`` variance, not ``1/(n-1)``, and ignores the t tail); the expanded interval takes the
    percentiles at ``Phi(-sqrt(n / (n-1)) * t_{(1+c)/2, n-1})`` and ``1 -`` that.
    """
    from scipy.stats import norm, t as student_t

    if n < 2:
        return 0.5 - confidence / 2
    return float(norm.sf(math.sqrt(n / (n - 1)) * student_t.ppf(0.5 + confidence / 2, n - 1)))


def bootstrap_bounds(replicates: Sequence[float], point: float, n_units: int,
                     confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Bias-corrected, expanded percentile interval of bootstrap replicates around ``point``.

    AP of a resample with duplicated units is biased (its precision envelope gains from the
    duplicates), so the replicates are not centred on the point estimate. The bias correction
    (Efron's BC) shifts the percentiles by ``z0 = Phi^-1(share of replicates below the point)``:
    ``Phi(2 z0 +- z_tail)`` with the expanded tail of ``expanded_tail(n_units, confidence)``.
    """
    from scipy.stats import norm

    reps = np.asarray(replicates, dtype=np.float64)
    below = (np.sum(reps < point) + 0.5 * np.sum(reps == point)) / reps.size
    below = min(max(below, 0.5 / reps.size), 1.0 - 0.5 / reps.size)
    z0, z_tail = float(norm.ppf(below)), float(norm.ppf(expanded_tail(n_units, confidence)))
    low, high = np.quantile(reps, [norm.cdf(2 * z0 + z_tail), norm.cdf(2 * z0 - z_tail)])
    return float(low), float(high)


def _ground_truth_digest(unit_gts: Sequence[np.ndarray]) -> str:
    """sha1 over the units' GT arrays: equal digests = the same ground truth, cut the same way."""
    h = hashlib.sha1()
    for g in unit_gts:
        h.update(np.ascontiguousarray(g).tobytes())
        h.update(b"|")
    return h.hexdigest()


def _unit_count(path: Path, protocol: str, min_sequences: int, block_frames: int) -> tuple[int, str]:
    from evdet.evaluation.protocols import get_protocol

    data = load_validation_detections(path)
    units = evaluation_units(data, get_protocol(protocol).time_tolerance_us, min_sequences=min_sequences,
                             block_frames=block_frames)
    return len(units[0]), units[2]


def _mean_over_runs(docs: Sequence[dict], metric: str, protocol: str) -> Optional[float]:
    vals = [metric_value(d, metric, protocol) for d in docs]
    if not vals or any(v is None for v in vals):
        return None
    return float(np.mean(vals))


def bootstrap_interval(exps: Sequence[Experiment], metric: str, protocol: str, *, scale: float, confidence: float,
               n_boot: int, rng_seed: int, min_sequences: int, block_frames: int,
               progress: bool) -> Difference:
    """Paired bootstrap of ``other - scale * base`` (two experiments) or of one experiment's value."""
    files = [detection_files(e) for e in exps]
    missing = [e.id for e, f in zip(exps, files) if not f]
    if missing:
        return Difference(None, None, None, METHOD_NONE, 0, 0, confidence,
                          f"{', '.join(missing)}: one seed and no saved validation detections")
    n_units, kind = _unit_count(files[0][0], protocol, min_sequences, block_frames)
    if n_units < MIN_UNITS:
        return Difference(None, None, None, METHOD_NONE, 0, 0, confidence,
                          f"only {n_units} evaluation units (< {MIN_UNITS}) to resample")
    idx = np.random.default_rng(rng_seed).integers(0, n_units, size=(n_boot, n_units))
    stats, points, sigs = [], [], []
    for f in files:
        per_run, full, sig = _replicates(f, protocol, idx, min_sequences=min_sequences,
                                         block_frames=block_frames, progress=progress)
        sigs.append(sig)
        stats.append([_mean_over_runs([run[r] for run in per_run], metric, protocol) for r in range(n_boot)])
        points.append(_mean_over_runs(full, metric, protocol))
    if len(sigs) == 2 and sigs[0] != sigs[1]:
        raise IntervalError(f"{exps[0].id} and {exps[1].id} were validated on different ground truth; "
                            "no paired bootstrap")
    if len(exps) == 2:
        reps = [b - scale * a for a, b in zip(*stats) if a is not None and b is not None]
        point = None if None in points else points[1] - scale * points[0]
    else:
        reps = [v for v in stats[0] if v is not None]
        point = points[0]
    method = METHOD_BOOT_SEQ if kind == "sequences" else METHOD_BOOT_BLOCK
    if len(exps) == 1:
        method = method.replace("paired ", "")
    unit_words = "sequences" if kind == "sequences" else f"blocks of {block_frames} label frames"
    detail = f"{n_boot} resamples of {n_units} {unit_words}, bias-corrected expanded percentile interval"
    if len(reps) < 0.9 * n_boot or point is None:
        return Difference(point, None, None, METHOD_NONE, n_units, n_units, confidence,
                          f"{metric} undefined in {n_boot - len(reps)} of {n_boot} resamples")
    low, high = bootstrap_bounds(reps, point, n_units, confidence)
    n_a = n_units if len(exps) == 2 else 0
    return Difference(point, float(low), float(high), method, n_a, n_units, confidence, detail)
