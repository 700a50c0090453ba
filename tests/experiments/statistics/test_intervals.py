"""Interval math against scipy / hand values; the paired bootstrap on real evaluation data."""

import json
import math
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from evdet.data.labels import BBOX_DTYPE
from evdet.evaluation import evaluate
from evdet.experiments.statistics.intervals import (METHOD_BOOT_BLOCK, METHOD_BOOT_SEQ, METHOD_NONE, METHOD_SEED_T,
                                         METHOD_WELCH, Difference, IntervalError, ValidationData, bootstrap_bounds,
                                         difference_interval, evaluation_units, expanded_tail, pooled_interval,
                                         save_validation_detections, seed_summary, seed_values, value_interval,
                                         welch_interval)
from evdet.experiments.records.record import load_experiment

from exp_fixtures import make_experiment, make_seeded_experiment

CLASSES = ["pedestrian", "car", "bicycle"]
EVAL_KWARGS = {"height": 360, "width": 640, "class_names": CLASSES, "class_groups": {}, "source_hw": [360, 640],
               "groups": None, "pr_confidence": 0.5, "confusion_iou": 0.5, "label_rate_hz": 10.0}


# ---------------------------------------------------------------- math


def test_seed_summary_hand_values():
    s = seed_summary([0.1, 0.2, 0.3])
    t_975_2 = 4.302652729911275                  # t table, 2 degrees of freedom, 97.5 %
    assert s.n == 3 and s.mean == pytest.approx(0.2) and s.std == pytest.approx(0.1)
    assert s.low == pytest.approx(0.2 - t_975_2 * 0.1 / math.sqrt(3))
    assert s.high == pytest.approx(0.2 + t_975_2 * 0.1 / math.sqrt(3))
    one = seed_summary([0.4, None])
    assert (one.n, one.mean, one.std, one.low, one.high) == (1, 0.4, None, None, None)
    assert seed_summary([]).mean is None


def test_seed_summary_matches_scipy_t_interval():
    vals = [0.31, 0.27, 0.35, 0.29, 0.33]
    low, high = stats.t.interval(0.9, len(vals) - 1, loc=np.mean(vals), scale=stats.sem(vals))
    s = seed_summary(vals, confidence=0.9)
    assert (s.low, s.high) == pytest.approx((low, high))


@pytest.mark.parametrize("scale", [1.0, 1.5])
def test_welch_interval_matches_scipy_ttest(scale):
    base, other = [0.30, 0.34, 0.29], [0.36, 0.41, 0.33, 0.38]
    ci = stats.ttest_ind(other, [scale * v for v in base], equal_var=False).confidence_interval(0.95)
    mean, low, high, dof = welch_interval(base, other, 0.95, scale)
    assert mean == pytest.approx(np.mean(other) - scale * np.mean(base))
    assert (low, high) == pytest.approx((ci.low, ci.high))
    with pytest.raises(IntervalError, match=">= 2 values"):
        welch_interval([0.3], other)


def test_pooled_interval_of_two_records_is_students_t():
    base, other = [0.30, 0.34, 0.29], [0.36, 0.41, 0.33, 0.38]
    ci = stats.ttest_ind(other, base, equal_var=True).confidence_interval(0.95)
    mean, low, high, dof = pooled_interval(base, other, [base, other])
    assert (mean, low, high, dof) == pytest.approx((np.mean(other) - np.mean(base), ci.low, ci.high, 5))


def test_pooled_interval_by_hand_with_a_one_seed_record():
    # base 0.10, 0.14 (SS 0.0008); other 0.05 (one seed, no SS); third 0.20, 0.22, 0.27 (mean 0.23, SS 0.0026)
    # pooled variance (0.0008 + 0.0026) / (1 + 2) with 3 dof; se = sqrt(var * (1/2 + 1/1))
    groups = [[0.10, 0.14], [0.05], [0.20, 0.22, 0.27]]
    half = 3.182446305284263 * math.sqrt(0.0034 / 3 * 1.5)          # t table, 3 degrees of freedom
    mean, low, high, dof = pooled_interval(groups[0], groups[1], groups)
    assert (mean, low, high, dof) == pytest.approx((-0.07, -0.07 - half, -0.07 + half, 3))
    # one record's own value: mean +- t * s_p / sqrt(n)
    half = 3.182446305284263 * math.sqrt(0.0034 / 3 / 3)
    assert pooled_interval(None, groups[2], groups) == pytest.approx((0.23, 0.23 - half, 0.23 + half, 3))
    with pytest.raises(IntervalError, match=">= 2 seeds"):
        pooled_interval([0.1], [0.2], [[0.1], [0.2]])
    with pytest.raises(IntervalError, match="a value on each side"):
        pooled_interval([], [0.2], groups)


def test_expanded_percentile_tail_by_hand():
    t_975_11 = 2.200985160082949                                     # t table, 11 degrees of freedom
    z = math.sqrt(12 / 11) * t_975_11
    assert expanded_tail(12) == pytest.approx(0.5 * math.erfc(z / math.sqrt(2)))   # about 0.0108 < 0.025
    assert 0.024 < expanded_tail(5000) < 0.025                      # many units: the plain percentile interval


def test_bias_corrected_bounds_by_hand():
    from statistics import NormalDist

    phi = NormalDist()
    reps = np.arange(100, dtype=float)
    n = 10 ** 6                                                      # tail -> 0.025 (plain percentiles)
    z_tail = phi.inv_cdf(expanded_tail(n))
    # replicates centred on the point: z0 = 0, the expanded percentile interval itself
    assert bootstrap_bounds(reps, 49.5, n) == pytest.approx(tuple(np.quantile(reps, [phi.cdf(z_tail),
                                                                                    phi.cdf(-z_tail)])))
    # 30% of the replicates below the point: both percentiles shift down by 2 * z0
    z0 = phi.inv_cdf(0.3)
    lo, hi = phi.cdf(2 * z0 + z_tail), phi.cdf(2 * z0 - z_tail)
    assert lo == pytest.approx(0.00131, abs=1e-5) and hi == pytest.approx(0.8189, abs=1e-4)
    assert bootstrap_bounds(reps, 29.5, n) == pytest.approx((lo * 99, hi * 99))   # linear quantiles of 0..99
    assert bootstrap_bounds([0.0] * 50, 0.0, 12) == (0.0, 0.0)


def test_welch_interval_of_constant_samples_is_a_point():
    assert welch_interval([0.2, 0.2], [0.3, 0.3])[:3] == pytest.approx((0.1, 0.1, 0.1))


@pytest.mark.parametrize("low,high,threshold,side", [
    (0.01, 0.05, 0.0, "above"), (-0.05, -0.01, 0.0, "below"), (-0.01, 0.05, 0.0, "straddles"),
    (0.0, 0.05, 0.0, "straddles"),            # a bound on the threshold is not wholly on a side
    (0.03, 0.05, 0.02, "above"), (None, None, 0.0, "unknown")])
def test_difference_side(low, high, threshold, side):
    d = Difference(0.02, low, high, METHOD_WELCH, 3, 3)
    assert d.side(threshold) == side
    assert d.within_noise(threshold) == (side in ("straddles", "unknown"))


def test_difference_text_names_interval_and_method():
    d = Difference(0.0123, -0.004, 0.029, METHOD_WELCH, 3, 3)
    assert d.text() == "+0.0123 [-0.0040, +0.0290] 95% welch-t over seeds (n=3/3)"


# ---------------------------------------------------------------- over seeds (hand-made records)


def test_difference_over_seeds_is_welch(tmp_path: Path):
    root = tmp_path / "exps"
    make_seeded_experiment(root, "a", {0: (0.30, 0.1), 1: (0.34, 0.1), 2: (0.29, 0.1)})
    make_seeded_experiment(root, "b", {3: (0.36, 0.1), 4: (0.41, 0.1), 5: (0.33, 0.1)}, base="a")
    a, b = load_experiment(root, "a"), load_experiment(root, "b")
    assert seed_values(b, "AP") == [0.36, 0.41, 0.33]
    d = difference_interval(a, b, "prophesee/AP")
    ci = stats.ttest_ind([0.36, 0.41, 0.33], [0.30, 0.34, 0.29], equal_var=False).confidence_interval(0.95)
    assert d.method == METHOD_WELCH and (d.n_a, d.n_b) == (3, 3)
    assert (d.low, d.high) == pytest.approx((ci.low, ci.high))
    v = value_interval(b, "AP")
    assert v.method == METHOD_SEED_T and v.mean == pytest.approx(np.mean([0.36, 0.41, 0.33]))


def test_schema1_record_without_detections_has_no_interval(three_runs: Path):
    a, b = load_experiment(three_runs, "baseline"), load_experiment(three_runs, "sizeaware")
    d = difference_interval(a, b, "AP")
    assert d.method == METHOD_NONE and not d.has_interval
    assert d.mean == pytest.approx(0.03) and "no saved validation detections" in d.detail


# ---------------------------------------------------------------- paired bootstrap (real evaluation)


def _ground_truth(rng, n_frames: int, t0_us: int = 600_000) -> np.ndarray:
    """Two boxes per 100 ms label frame (all after the 0.5 s the prophesee protocol skips)."""
    ts = t0_us + 100_000 * np.arange(n_frames)
    gt = np.zeros(2 * n_frames, BBOX_DTYPE)
    gt["t"] = np.repeat(ts, 2)
    gt["x"], gt["y"] = rng.uniform(0, 500, gt.size), rng.uniform(0, 250, gt.size)
    gt["w"], gt["h"] = rng.uniform(30, 90, gt.size), rng.uniform(30, 90, gt.size)
    gt["class_id"] = rng.integers(0, 3, gt.size)
    return gt


def _detections(rng, gt: np.ndarray, quality: float) -> np.ndarray:
    """Each GT box found with probability ``quality`` (jittered, score ~ U(0.5, 1)) plus one false
    positive per frame (score ~ U(0, 0.6))."""
    found = gt[rng.random(gt.size) < quality].copy()
    found["x"] += rng.normal(0, 3, found.size)
    found["class_confidence"] = rng.uniform(0.5, 1.0, found.size)
    ts = np.unique(gt["t"])
    fp = np.zeros(ts.size, BBOX_DTYPE)
    fp["t"], fp["x"], fp["y"], fp["w"], fp["h"] = ts, 600, 300, 30, 30
    fp["class_id"], fp["class_confidence"] = rng.integers(0, 3, ts.size), rng.uniform(0, 0.6, ts.size)
    dt = np.concatenate([found, fp])
    return dt[np.argsort(dt["t"], kind="stable")]


def _record_with_detections(root: Path, exp_id: str, gts, dts, base=None) -> Path:
    """A one-seed record whose saved validation detections give its results (evaluated here)."""
    names = [f"seq{i}" for i in range(len(gts))]
    d = make_experiment(root, exp_id, base=base)
    save_validation_detections(d / "validation" / "detections.npz", names, gts, dts, EVAL_KWARGS)
    kw = {k: v for k, v in EVAL_KWARGS.items() if k != "class_groups"}
    res = evaluate(gts, dts, protocol="prophesee", **kw).to_dict()
    doc = json.loads((d / "results.json").read_text())
    doc.update(schema_version=2, seeds=[0], protocols={"prophesee": res},
               runs={"0": {"seed": 0, "dir": ".", "status": "completed", "protocols": {"prophesee": res}}})
    (d / "results.json").write_text(json.dumps(doc))
    return d


@pytest.fixture(scope="module")
def paired_root(tmp_path_factory):
    """12 sequences of 6 frames; 'weak' finds 40% of the GT, 'strong' 90%, 'same' has weak's detections."""
    root = tmp_path_factory.mktemp("boot")
    rng = np.random.default_rng(7)
    gts = [_ground_truth(rng, 6) for _ in range(12)]
    weak = [_detections(rng, g, 0.4) for g in gts]
    strong = [_detections(rng, g, 0.9) for g in gts]
    _record_with_detections(root, "weak", gts, weak)
    _record_with_detections(root, "strong", gts, strong, base="weak")
    _record_with_detections(root, "same", gts, weak, base="weak")
    _record_with_detections(root, "short", gts[:3], weak[:3])
    return root


def test_bootstrap_detects_a_real_difference_and_covers_it(paired_root: Path):
    weak, strong = load_experiment(paired_root, "weak"), load_experiment(paired_root, "strong")
    d = difference_interval(weak, strong, "AP", n_boot=60)
    observed = strong.results["protocols"]["prophesee"]["metrics"]["AP"] - \
        weak.results["protocols"]["prophesee"]["metrics"]["AP"]
    assert d.method == METHOD_BOOT_SEQ and (d.n_a, d.n_b) == (12, 12)
    assert d.mean == pytest.approx(observed)          # point = whole-data difference of the recorded results
    assert d.low <= observed <= d.high and d.side(0.0) == "above"
    assert "60 resamples of 12 sequences" in d.detail


def test_bootstrap_is_deterministic_and_seeded(paired_root: Path):
    weak, strong = load_experiment(paired_root, "weak"), load_experiment(paired_root, "strong")
    a = difference_interval(weak, strong, "AP50", n_boot=40)
    b = difference_interval(weak, strong, "AP50", n_boot=40)
    c = difference_interval(weak, strong, "AP50", n_boot=40, rng_seed=1)
    assert a == b and (c.low, c.high) != (a.low, a.high)


def test_identical_detections_give_a_zero_interval_within_noise(paired_root: Path):
    weak, same = load_experiment(paired_root, "weak"), load_experiment(paired_root, "same")
    d = difference_interval(weak, same, "AP", n_boot=30)
    assert (d.mean, d.low, d.high) == (0.0, 0.0, 0.0) and d.within_noise()


def test_value_interval_by_bootstrap_contains_the_recorded_value(paired_root: Path):
    weak = load_experiment(paired_root, "weak")
    v = value_interval(weak, "AP", n_boot=40)
    assert v.method == "bootstrap over sequences" and v.n_a == 0 and v.n_b == 12
    assert v.low <= weak.results["protocols"]["prophesee"]["metrics"]["AP"] <= v.high


def test_few_sequences_are_cut_into_frame_blocks_that_evaluate_exactly(paired_root: Path):
    rng = np.random.default_rng(3)
    gts = [_ground_truth(rng, 25), _ground_truth(rng, 14, t0_us=2_000_000)]
    dts = [_detections(rng, g, 0.6) for g in gts]
    data = ValidationData(("a", "b"), tuple(gts), tuple(dts), EVAL_KWARGS)
    ugt, udt, kind = evaluation_units(data, 50_000, block_frames=10)
    assert kind == "blocks" and len(ugt) == 3 + 2                 # 25 frames -> 10+10+5, 14 -> 10+4
    assert sum(len(g) for g in ugt) == sum(len(g) for g in gts)
    kw = {k: v for k, v in EVAL_KWARGS.items() if k != "class_groups"}
    for proto in ("prophesee", "full"):
        whole = evaluate(gts, dts, protocol=proto, **kw).to_dict()
        blocks = evaluate(ugt, udt, protocol=proto, **kw).to_dict()
        assert blocks["metrics"] == whole["metrics"] and blocks["per_class"] == whole["per_class"]


def test_block_bootstrap_method_is_stated(paired_root: Path):
    short = load_experiment(paired_root, "short")              # 3 sequences of 6 frames: 3 blocks < 4 units
    assert value_interval(short, "AP", n_boot=10).method == METHOD_NONE
    weak = load_experiment(paired_root, "weak")
    d = value_interval(weak, "AP", n_boot=10, min_sequences=20, block_frames=3)
    assert d.method == METHOD_BOOT_BLOCK.replace("paired ", "") and d.n_b == 24
    assert "blocks of 3 label frames" in d.detail


def test_different_ground_truth_is_refused(paired_root: Path, tmp_path: Path):
    rng = np.random.default_rng(11)
    gts = [_ground_truth(rng, 6) for _ in range(12)]
    _record_with_detections(tmp_path, "other", gts, [_detections(rng, g, 0.5) for g in gts])
    make_experiment(tmp_path, "weak")
    (tmp_path / "weak" / "results.json").write_text((paired_root / "weak" / "results.json").read_text())
    (tmp_path / "weak" / "validation" / "detections.npz").write_bytes(
        (paired_root / "weak" / "validation" / "detections.npz").read_bytes())
    with pytest.raises(IntervalError, match="different ground truth"):
        difference_interval(load_experiment(tmp_path, "weak"), load_experiment(tmp_path, "other"), "AP", n_boot=5)
