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
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import warnings
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from evdet.experiments.records.metric_keys import metric_value, split_metric_key
from evdet.experiments.records.record import Experiment, run_dirs
from evdet.utils.atomic import write_bytes_atomic

CONFIDENCE = 0.95
N_BOOT = 200
RNG_SEED = 0
MIN_SEQUENCES = 10
BLOCK_FRAMES = 10
MIN_UNITS = 4
DETECTIONS_FILE = "detections.npz"   # inside <run dir>/validation/

METHOD_SEED_T = "t-interval over seeds"
METHOD_WELCH = "welch-t over seeds"
METHOD_POOLED = "t over seeds, variance pooled over records"
METHOD_BOOT_SEQ = "paired bootstrap over sequences"
METHOD_BOOT_BLOCK = "paired bootstrap over blocks of label frames"
METHOD_NONE = "no interval"
TRAINING_NOISE_METHODS = (METHOD_SEED_T, METHOD_WELCH, METHOD_POOLED)


class IntervalError(ValueError):
    """An interval cannot be computed (e.g. the experiments were validated on different ground truth)."""


@dataclass(frozen=True)
class SeedSummary:
    """Mean, sample std (ddof 1) and two-sided t-interval of one metric over ``n`` seeds (None when n < 2)."""

    n: int
    mean: Optional[float]
    std: Optional[float]
    low: Optional[float]
    high: Optional[float]
    confidence: float = CONFIDENCE

    def to_dict(self) -> dict:
        return {"n": self.n, "mean": self.mean, "std": self.std, "low": self.low, "high": self.high,
                "confidence": self.confidence, "method": METHOD_SEED_T}


def seed_summary(values: Sequence[float], confidence: float = CONFIDENCE) -> SeedSummary:
    """Mean, std and t-interval ``mean +- t_{(1+c)/2, n-1} * std / sqrt(n)`` of per-seed values.

    None values are left out; with one value std / low / high are None, with none everything is.
    """
    from scipy.stats import t as student_t

    vals = np.asarray([float(v) for v in values if v is not None and math.isfinite(float(v))])
    n = int(vals.size)
    if n == 0:
        return SeedSummary(0, None, None, None, None, confidence)
    mean = float(vals.mean())
    if n == 1:
        return SeedSummary(1, mean, None, None, None, confidence)
    std = float(vals.std(ddof=1))
    half = float(student_t.ppf(0.5 + confidence / 2, n - 1)) * std / math.sqrt(n)
    return SeedSummary(n, mean, std, mean - half, mean + half, confidence)


@dataclass(frozen=True)
class Difference:
    """Interval of ``other - scale * base`` for one metric (for one experiment: of its value).

    Attributes:
        mean: the point estimate (difference of the seed means); None when a value is missing.
        low, high: interval bounds at ``confidence``; None when no interval could be computed.
        method: one of the METHOD_* strings (the text to show next to the interval).
        n_a, n_b: seeds (Welch / t) or evaluation units (bootstrap) of the base and the other.
        detail: more words for the method (resamples, unit size, why there is no interval).
        dof: degrees of freedom of a t-interval (None: bootstrap or none).
        covers_training_noise: the interval includes seed-to-seed training noise (t over seeds, Welch,
            pooled, or a bootstrap widened by a noise profile); False for a bootstrap alone, which
            sees the evaluation data's noise only (see ``statistics.policy``). None: from the method.
    """

    mean: Optional[float]
    low: Optional[float]
    high: Optional[float]
    method: str
    n_a: int
    n_b: int
    confidence: float = CONFIDENCE
    detail: str = ""
    dof: Optional[float] = None
    covers_training_noise: Optional[bool] = None

    def __post_init__(self) -> None:   # None: from the method (t over seeds, Welch and pooled cover it)
        if self.covers_training_noise is None:
            object.__setattr__(self, "covers_training_noise", self.method in TRAINING_NOISE_METHODS)

    @property
    def has_interval(self) -> bool:
        return self.low is not None and self.high is not None

    def within_noise(self, threshold: float = 0.0) -> bool:
        """True unless the interval lies wholly above or wholly below ``threshold`` (no interval: True)."""
        return self.side(threshold) in ("straddles", "unknown")

    def side(self, threshold: float = 0.0) -> str:
        """``above`` (low > threshold), ``below`` (high < threshold), ``straddles`` or ``unknown``."""
        if not self.has_interval:
            return "unknown"
        if self.low > threshold:
            return "above"
        if self.high < threshold:
            return "below"
        return "straddles"

    def text(self, signed: bool = True) -> str:
        """``+0.0123 [-0.0040, +0.0290] 95% welch-t over seeds (n=3/3)``; bootstraps add that they see
        evaluation noise only."""
        fmt = (lambda v: f"{v:+.4f}") if signed else (lambda v: f"{v:.4f}")  # noqa: E731
        if self.mean is None:
            return f"- ({self.method}{': ' + self.detail if self.detail else ''})"
        if not self.has_interval:
            return f"{fmt(self.mean)} ({self.method}{': ' + self.detail if self.detail else ''})"
        n = f"n={self.n_a}/{self.n_b}" if self.n_a else f"n={self.n_b}"
        only = "; evaluation noise only, seeds not measured" if not self.covers_training_noise else ""
        return f"{fmt(self.mean)} [{fmt(self.low)}, {fmt(self.high)}] {self.confidence:.0%} {self.method} ({n}{only})"

    def to_dict(self) -> dict:
        return {"mean": self.mean, "low": self.low, "high": self.high, "method": self.method, "n_a": self.n_a,
                "n_b": self.n_b, "confidence": self.confidence, "detail": self.detail, "dof": self.dof,
                "covers_training_noise": self.covers_training_noise}

    @classmethod
    def from_dict(cls, d: Optional[dict]) -> Optional["Difference"]:
        """The inverse of :meth:`to_dict` (None stays None; files written before ``dof`` and
        ``covers_training_noise`` existed read them from the method)."""
        if d is None:
            return None
        return cls(**{k: d[k] for k in ("mean", "low", "high", "method", "n_a", "n_b", "confidence", "detail")},
                   dof=d.get("dof"), covers_training_noise=d.get("covers_training_noise"))


def welch_interval(base: Sequence[float], other: Sequence[float], confidence: float = CONFIDENCE,
                   scale: float = 1.0) -> tuple[float, float, float, float]:
    """Welch t-interval of ``mean(other) - scale * mean(base)``; returns (mean, low, high, dof).

    Both samples need at least two values. Zero spread in both gives the degenerate interval.
    """
    from scipy.stats import t as student_t

    a, b = np.asarray(base, dtype=np.float64), np.asarray(other, dtype=np.float64)
    if a.size < 2 or b.size < 2:
        raise IntervalError(f"Welch interval needs >= 2 values per side, got {a.size} and {b.size}")
    diff = float(b.mean() - scale * a.mean())
    va, vb = scale ** 2 * a.var(ddof=1) / a.size, b.var(ddof=1) / b.size
    se2 = va + vb
    if se2 == 0.0:
        return diff, diff, diff, math.inf
    dof = se2 ** 2 / (va ** 2 / (a.size - 1) + vb ** 2 / (b.size - 1))
    half = float(student_t.ppf(0.5 + confidence / 2, dof)) * math.sqrt(se2)
    return diff, diff - half, diff + half, float(dof)


def pooled_variance(groups: Sequence[Sequence[float]]) -> tuple[float, int]:
    """Seed variance pooled over ``groups`` (per-seed values of each record of a design):
    ``sum((n_i - 1) * s_i^2) / sum(n_i - 1)`` and its degrees of freedom ``sum(n_i - 1)``.

    Raises:
        IntervalError: no group with two values (no degree of freedom).
    """
    arrays = [np.asarray(g, dtype=np.float64) for g in groups if len(g) >= 2]
    dof = int(sum(g.size - 1 for g in arrays))
    if dof == 0:
        raise IntervalError("pooled interval needs a record with >= 2 seeds")
    return sum(float(((g - g.mean()) ** 2).sum()) for g in arrays) / dof, dof


def pooled_interval(base: Optional[Sequence[float]], other: Sequence[float], groups: Sequence[Sequence[float]],
                    confidence: float = CONFIDENCE) -> tuple[float, float, float, int]:
    """t-interval of ``mean(other) - mean(base)`` (of ``mean(other)`` when ``base`` is None) with the
    seed variance pooled over ``groups`` (:func:`pooled_variance`; ``base`` and ``other`` among them).

    The standard error is ``s_p * sqrt(1/n_base + 1/n_other)`` (``s_p / sqrt(n_other)`` for one
    record). With two groups this is Student's two-sample t-interval. Returns (mean, low, high, dof).

    Raises:
        IntervalError: an empty side, or no group with two values.
    """
    from scipy.stats import t as student_t

    b = np.asarray(other, dtype=np.float64)
    a = None if base is None else np.asarray(base, dtype=np.float64)
    if b.size == 0 or (a is not None and a.size == 0):
        raise IntervalError(f"pooled interval needs a value on each side, got {0 if a is None else a.size} "
                            f"and {b.size}")
    var, dof = pooled_variance(groups)
    mean = float(b.mean() - (0.0 if a is None else a.mean()))
    inv_n = 1 / b.size + (0.0 if a is None else 1 / a.size)
    half = float(student_t.ppf(0.5 + confidence / 2, dof)) * math.sqrt(var * inv_n)
    return mean, mean - half, mean + half, dof


def pooled_contrast(samples: Sequence[Sequence[float]], coefs: Sequence[float], groups: Sequence[Sequence[float]],
                    confidence: float = CONFIDENCE) -> tuple[float, float, float, int]:
    """t-interval of the contrast ``sum_j c_j * mean(samples_j)`` with the seed variance pooled over
    ``groups`` (:func:`pooled_variance`): standard error ``s_p * sqrt(sum_j c_j^2 / n_j)``.

    E.g. the interaction of a combination of k single changes, ``I = m_combo - sum_i m_i + (k - 1) m_base``
    (coefficients 1, -1 x k, k - 1). Returns (estimate, low, high, dof).

    Raises:
        IntervalError: an empty sample, or no group with two values.
    """
    from scipy.stats import t as student_t

    arrays = [np.asarray(x, dtype=np.float64) for x in samples]
    if any(a.size == 0 for a in arrays) or len(arrays) != len(coefs):
        raise IntervalError("pooled contrast needs one non-empty sample per coefficient")
    var, dof = pooled_variance(groups)
    est = float(sum(c * a.mean() for c, a in zip(coefs, arrays)))
    half = float(student_t.ppf(0.5 + confidence / 2, dof)) * math.sqrt(var * sum(c * c / a.size
                                                                                for c, a in zip(coefs, arrays)))
    return est, est - half, est + half, dof


# ---------------------------------------------------------------- per-seed values


def run_results(exp: Experiment) -> list[tuple[str, dict, Path]]:
    """(seed, results-like document, run dir) of every evaluated seed run, in seed order.

    Completed runs count; while none is completed, every run with results does. A schema-1 record
    (no ``runs``) is one run: the record itself.
    """
    runs = exp.results.get("runs") or {}
    dirs = run_dirs(exp)
    evaluated = [(s, r) for s, r in runs.items() if isinstance(r, dict) and r.get("protocols")]
    done = [(s, r) for s, r in evaluated if r.get("status") == "completed"]
    chosen = done or evaluated
    if not runs:
        return [("", exp.results, exp.path)]
    return [(s, {"protocols": r.get("protocols", {}), "monitors": r.get("monitors", {}),
                 "step": r.get("step", 0)}, dirs.get(s, exp.path)) for s, r in chosen]


def seed_values(exp: Experiment, metric: str, protocol: Optional[str] = None) -> list[Optional[float]]:
    """The metric of each evaluated seed run, in seed order (None where a run lacks it)."""
    proto = split_metric_key(metric)[0] or protocol
    return [metric_value(doc, metric, proto or _headline(exp)) for _, doc, _ in run_results(exp)]


def _headline(exp: Experiment) -> Optional[str]:
    protos = list(exp.results.get("protocols", {}))
    return protos[0] if protos else None


# ---------------------------------------------------------------- saved validation data


def save_validation_detections(path: Path, names: Sequence[str], gts: Sequence[np.ndarray],
                               dts: Sequence[np.ndarray], eval_kwargs: dict) -> Path:
    """Write one validation's per-sequence ground truth and detections (BBOX arrays) atomically.

    Layout (npz, no pickles): ``meta`` (JSON text: sequence names, step, and the keyword arguments
    of ``evaluate`` other than the protocol), ``gt_<i>`` and ``dt_<i>`` for sequence ``i``.
    """
    buf = io.BytesIO()
    arrays = {"meta": np.array(json.dumps({"sequences": list(names), "evaluate": eval_kwargs}))}
    for i, (g, d) in enumerate(zip(gts, dts)):
        arrays[f"gt_{i}"], arrays[f"dt_{i}"] = np.asarray(g), np.asarray(d)
    np.savez_compressed(buf, **arrays)
    return write_bytes_atomic(path, buf.getvalue())


@dataclass(frozen=True)
class ValidationData:
    """What ``save_validation_detections`` wrote."""

    names: tuple[str, ...]
    gts: tuple[np.ndarray, ...]
    dts: tuple[np.ndarray, ...]
    eval_kwargs: dict


def load_validation_detections(path: Path) -> ValidationData:
    """Read a ``detections.npz``; errors (truncated, a plain array, missing or malformed entries) name the file."""
    import zipfile

    try:
        loaded = np.load(path, allow_pickle=False)
        if not isinstance(loaded, np.lib.npyio.NpzFile):
            raise ValueError(f"a plain {type(loaded).__name__}, not an .npz archive of evdet's detections")
        with loaded as z:
            meta = json.loads(str(z["meta"]))
            n = len(meta["sequences"])
            gts = tuple(z[f"gt_{i}"] for i in range(n))
            dts = tuple(z[f"dt_{i}"] for i in range(n))
        return ValidationData(tuple(meta["sequences"]), gts, dts, dict(meta["evaluate"]))
    except (OSError, KeyError, ValueError, TypeError, EOFError, zipfile.BadZipFile) as err:
        what = f"missing entry {err}" if isinstance(err, KeyError) else str(err) or type(err).__name__
        raise IntervalError(f"{path}: cannot read saved validation detections ({what})") from None


def evaluation_units(data: ValidationData, time_tolerance_us: int, *, min_sequences: int = MIN_SEQUENCES,
                     block_frames: int = BLOCK_FRAMES) -> tuple[list[np.ndarray], list[np.ndarray], str]:
    """Split the validation data into resampling units: (unit GT arrays, unit detection arrays, kind).

    Kind ``sequences``: one unit per sequence (when there are at least ``min_sequences``). Kind
    ``blocks``: each sequence cut into blocks of ``block_frames`` consecutive GT timestamps; a block
    holds the GT of its timestamps and the detections within the matching tolerance of them, so
    evaluating all blocks gives the same images (and metrics) as evaluating the sequences.
    """
    if len(data.names) >= min_sequences:
        return list(data.gts), list(data.dts), "sequences"
    unit_gts, unit_dts = [], []
    for gt, dt in zip(data.gts, data.dts):
        gt = gt[np.argsort(gt["t"], kind="stable")]
        dt = dt[np.argsort(dt["t"], kind="stable")]
        ts = np.unique(gt["t"])
        for k in range(0, len(ts), block_frames):
            first, last = ts[k], ts[min(k + block_frames, len(ts)) - 1]
            g_lo = np.searchsorted(gt["t"], first, side="left")
            g_hi = np.searchsorted(gt["t"], last, side="right")
            d_lo = np.searchsorted(dt["t"], first - time_tolerance_us, side="left")
            d_hi = np.searchsorted(dt["t"], last + time_tolerance_us, side="right")
            unit_gts.append(gt[g_lo:g_hi])
            unit_dts.append(dt[d_lo:d_hi])
    return unit_gts, unit_dts, "blocks"


def evaluate_saved(gts: Sequence[np.ndarray], dts: Sequence[np.ndarray], protocol: str, eval_kwargs: dict) -> dict:
    """``evaluate(...).to_dict()`` of saved ground truth and detections with the saved keyword arguments."""
    from evdet.data.classes import ClassMap
    from evdet.evaluation import evaluate

    kwargs = dict(eval_kwargs)
    kwargs["class_names"] = ClassMap(tuple(kwargs["class_names"]),
                                     {g: tuple(m) for g, m in (kwargs.pop("class_groups", None) or {}).items()})
    if kwargs.get("source_hw") is not None:
        kwargs["source_hw"] = tuple(kwargs["source_hw"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return evaluate(list(gts), list(dts), protocol=protocol, **kwargs).to_dict()


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


def detection_files(exp: Experiment) -> list[Path]:
    """Saved validation detections of the evaluated seed runs (only when every run has them)."""
    files = [d / "validation" / DETECTIONS_FILE for _, _, d in run_results(exp)]
    return files if files and all(f.exists() for f in files) else []


def _mean_over_runs(docs: Sequence[dict], metric: str, protocol: str) -> Optional[float]:
    vals = [metric_value(d, metric, protocol) for d in docs]
    if not vals or any(v is None for v in vals):
        return None
    return float(np.mean(vals))


def _bootstrap(exps: Sequence[Experiment], metric: str, protocol: str, *, scale: float, confidence: float,
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


# ---------------------------------------------------------------- public entry points


def _protocol_of(exp: Experiment, metric: str, protocol: Optional[str]) -> Optional[str]:
    return split_metric_key(metric)[0] or protocol or _headline(exp)


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
    d = _bootstrap([exp], metric, proto, scale=1.0, confidence=confidence, n_boot=n_boot,
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
    diff = _bootstrap([base, other], metric, proto, scale=scale, confidence=confidence, n_boot=n_boot,
                      rng_seed=rng_seed, min_sequences=min_sequences, block_frames=block_frames,
                      progress=progress)
    if diff.mean is None:   # no bootstrap possible: keep the point estimate, say why there is no interval
        return Difference(point, None, None, METHOD_NONE, len(a), len(b), confidence, diff.detail)
    return diff


__all__ = ["CONFIDENCE", "N_BOOT", "METHOD_WELCH", "METHOD_POOLED", "METHOD_SEED_T", "METHOD_BOOT_SEQ",
           "METHOD_BOOT_BLOCK", "METHOD_NONE", "Difference", "IntervalError", "SeedSummary", "ValidationData",
           "difference_interval", "evaluation_units", "load_validation_detections", "pooled_interval", "pooled_variance",
           "save_validation_detections", "seed_summary", "seed_values", "value_interval", "welch_interval",
           "detection_files", "evaluate_saved", "run_results"]
