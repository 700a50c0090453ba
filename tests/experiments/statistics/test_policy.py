"""The one interval policy: Holm, noise profiles, and the same interval for the same Δ at every door."""

import json
import math
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from evdet.experiments.analysis.compare import compare_experiments
from evdet.experiments.analysis.rank import rank_experiments
from evdet.experiments.analysis.verdict import judge, parse_criteria
from evdet.experiments.records.record import load_experiment
from evdet.experiments.statistics.intervals import (METHOD_BOOT_BLOCK, METHOD_BOOT_SEQ, METHOD_POOLED, Difference,
                                                    save_validation_detections, welch_interval)
from evdet.experiments.statistics.multiplicity import holm_adjust, holm_family, p_value
from evdet.experiments.statistics.noise_profile import (NoiseProfile, build_profile, config_differences,
                                                        data_fingerprint, flat_config, flat_metrics)
from evdet.experiments.statistics.policy import (METHOD_PROFILE, IntervalPolicy, _with_profile, difference,
                                                 effect_word, noise_word, write_pool)
from tests.experiments.exp_fixtures import make_experiment, protocol_block
from tests.experiments.statistics.test_intervals import (EVAL_KWARGS, _detections, _ground_truth,
                                                         _record_with_detections)

CRITERION = "## Success criteria\n- prophesee/AP >= base + 0.0\n"


# ---------------------------------------------------------------- Holm


def test_holm_hand_case():
    # sorted: 0.005 x4 = 0.02, 0.01 x3 = 0.03, 0.03 x2 = 0.06, 0.04 x1 = 0.04 -> max(0.06, 0.04) = 0.06
    assert holm_adjust([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    # a comparison without interval counts in the family (as p = 1) and stays None
    assert holm_adjust([0.02, None]) == [pytest.approx(0.04), None]
    assert holm_adjust([0.6, 0.5]) == pytest.approx([1.0, 1.0])          # capped at 1


def test_p_value_of_a_welch_interval_is_welchs_t_test():
    a, b = [0.10, 0.12, 0.09, 0.11], [0.15, 0.16, 0.12, 0.14]
    mean, low, high, dof = welch_interval(a, b)
    d = Difference(mean, low, high, "welch-t over seeds", 4, 4, dof=dof)
    assert p_value(d) == pytest.approx(stats.ttest_ind(b, a, equal_var=False).pvalue, rel=1e-6)


def test_holm_family_decides_at_the_adjusted_level():
    def at(p):  # a normal-approximation interval whose two-sided p-value is p
        z = stats.norm.isf(p / 2)
        return Difference(1.0, 1.0 - 1.96 / z, 1.0 + 1.96 / z, "paired bootstrap over sequences", 10, 10)

    fam = holm_family({"a": at(0.01), "b": at(0.04), "c": at(0.03)})
    # Holm: 0.01 x3 = 0.03 survives; 0.03 x2 = 0.06 does not, and so neither does 0.04
    assert [fam[k].survives for k in "abc"] == [True, False, False]
    assert fam["a"].p == pytest.approx(0.01, rel=1e-3) and fam["b"].p_holm == pytest.approx(0.06, rel=1e-3)


# ---------------------------------------------------------------- profile arithmetic


def test_profile_widens_the_bootstrap_in_quadrature():
    boot = Difference(0.010, 0.004, 0.020, METHOD_BOOT_BLOCK, 30, 30, detail="200 resamples")
    prof = NoiseProfile("demo", (0, 1, 2, 3, 4, 5), "r", "d", {}, {"full/AP": {"sd": 0.005}})
    d = _with_profile(boot, prof, "AP", "full", 1, 1)
    h_seed = stats.t.ppf(0.975, 5) * 0.005 * math.sqrt(2)        # two one-seed runs
    assert d.low == pytest.approx(0.010 - math.sqrt(0.006 ** 2 + h_seed ** 2))
    assert d.high == pytest.approx(0.010 + math.sqrt(0.010 ** 2 + h_seed ** 2))
    assert d.method == METHOD_PROFILE and d.covers_training_noise and "profile 'demo'" in d.detail
    assert _with_profile(boot, prof, "AP50", "full", 1, 1) is None   # metric not profiled


def test_words_keep_helps_for_intervals_that_cover_training_noise():
    boot = Difference(0.02, 0.01, 0.03, METHOD_BOOT_SEQ, 12, 12)
    welch = Difference(0.02, 0.01, 0.03, "welch-t over seeds", 3, 3)
    assert (effect_word(boot), noise_word(boot)) == ("beyond evaluation noise (up; training noise not measured)",
                                                    "beyond evaluation noise")
    assert (effect_word(welch), noise_word(welch)) == ("helps", "beyond noise")
    assert noise_word(Difference(0.0, -0.01, 0.01, METHOD_BOOT_SEQ, 12, 12)) == "within noise"


def test_config_match_ignores_run_keys_and_fills_new_switches_with_defaults():
    a = flat_config({"name": "x", "seeds": [0, 1], "training": {"seed": 3, "lr": 0.002}, "data": {"root": "/a"}})
    assert a == {"training.lr": 0.002}
    b = flat_config({"name": "y", "training": {"seed": 0, "lr": 0.002}, "model": {"new_switch": "off"},
                     "data": {"root": "/b"}})
    assert config_differences(a, b, defaults={"model.new_switch": "off"}) == []
    assert config_differences(a, b, defaults={"model.new_switch": "on"}) == ["model.new_switch"]
    assert config_differences(a, {"training.lr": 0.001}, defaults={}) == ["training.lr"]
    removed = {**a, "data.class_merge": "none"}          # a key the current code no longer has
    assert config_differences(removed, a, defaults={"training.lr": 0.002}) == []
    assert config_differences(removed, {**a, "data.class_merge": "3"}, defaults={}) == ["data.class_merge"]


def test_flat_metrics_reads_metrics_groups_and_classes():
    doc = {"protocols": {"full": {"metrics": {"AP": 0.1, "AP50": float("nan")},
                                  "groups": {"small_road_users": {"AP": 0.05, "classes": ["pedestrian"]}},
                                  "per_class": {"car": {"AP": 0.2, "support": 3}}}}}
    assert flat_metrics(doc) == {"full/AP": 0.1, "full/groups.small_road_users.AP": 0.05,
                                 "full/per_class.car.AP": 0.2, "full/per_class.car.support": 3.0}


# ---------------------------------------------------------------- records: one seed, profiles, verdicts


@pytest.fixture(scope="module")
def one_seed_root(tmp_path_factory):
    """'weak' (40% of the GT found) and 'strong' (90%) on the same 12 sequences, one seed each."""
    root = tmp_path_factory.mktemp("policy")
    rng = np.random.default_rng(11)
    gts = [_ground_truth(rng, 6) for _ in range(12)]
    _record_with_detections(root, "weak", gts, [_detections(rng, g, 0.4) for g in gts])
    d = _record_with_detections(root, "strong", gts, [_detections(rng, g, 0.9) for g in gts], base="weak")
    (d / "hypothesis.md").write_text(CRITERION)
    return root


def _write_profile(root: Path, exp, sd: float, config=None) -> None:
    doc = {"schema": 1, "name": "weak-recipe", "record": "noise", "seeds": [0, 1, 2, 3],
           "recipe_fingerprint": "x", "data_fingerprint": data_fingerprint(exp),
           "config": flat_config(exp.config) if config is None else config,
           "metrics": {"prophesee/AP": {"sd": sd, "mean": 0.3, "values": []}}}
    (root / "_noise").mkdir(exist_ok=True)
    (root / "_noise" / "weak.json").write_text(json.dumps(doc))


def test_one_seed_difference_beyond_evaluation_noise_is_inconclusive(one_seed_root):
    weak, strong = load_experiment(one_seed_root, "weak"), load_experiment(one_seed_root, "strong")
    (res,) = judge(parse_criteria(strong.hypothesis), strong, weak, n_boot=40)
    assert res.interval.method == METHOD_BOOT_SEQ and res.interval.side(0.0) == "above"
    assert res.decision == "inconclusive" and "beyond evaluation noise only" in res.reason


def test_a_matching_profile_adds_training_noise(one_seed_root, tmp_path):
    weak, strong = load_experiment(one_seed_root, "weak"), load_experiment(one_seed_root, "strong")
    boot = difference(weak, strong, "prophesee/AP", policy=IntervalPolicy(n_boot=40, profiles=()))
    try:
        _write_profile(one_seed_root, weak, sd=0.001)            # small training noise: the call is made
        (res,) = judge(parse_criteria(strong.hypothesis), strong, weak, n_boot=40)
        assert res.decision == "supported" and res.interval.method == METHOD_PROFILE
        assert res.interval.low < boot.low and res.interval.high > boot.high and res.interval.mean == boot.mean
        _write_profile(one_seed_root, weak, sd=1.0)              # huge training noise: it is not
        (res,) = judge(parse_criteria(strong.hypothesis), strong, weak, n_boot=40)
        assert res.decision == "inconclusive" and res.interval.side(0.0) == "straddles"
        other_recipe = {**flat_config(weak.config), "training.lr": 123.0}
        _write_profile(one_seed_root, weak, sd=0.001, config=other_recipe)   # another recipe: not used
        assert difference(weak, strong, "prophesee/AP", policy=IntervalPolicy(n_boot=40)).method == METHOD_BOOT_SEQ
    finally:
        (one_seed_root / "_noise" / "weak.json").unlink(missing_ok=True)


def test_profile_of_a_seeded_record_is_the_seed_sd(tmp_path):
    rng = np.random.default_rng(3)
    gts = [_ground_truth(rng, 4) for _ in range(3)]
    d = make_experiment(tmp_path, "aa")
    aps = {0: 0.10, 1: 0.13, 2: 0.07}
    runs = {}
    for i, (seed, ap) in enumerate(aps.items()):
        run_dir = d if i == 0 else d / "seeds" / f"seed_{seed}"
        save_validation_detections(run_dir / "validation" / "detections.npz", ["a", "b", "c"], gts,
                                   [_detections(rng, g, 0.5) for g in gts], EVAL_KWARGS)
        runs[str(seed)] = {"seed": seed, "dir": "." if i == 0 else f"seeds/seed_{seed}", "status": "completed",
                           "protocols": {"full": protocol_block(ap, ap, {"car": ap}, small_ap=ap / 2)}}
    doc = json.loads((d / "results.json").read_text())
    doc.update(schema_version=2, seeds=list(aps), runs=runs)
    (d / "results.json").write_text(json.dumps(doc))
    prof = build_profile(load_experiment(tmp_path, "aa"), "aa")
    assert prof["seeds"] == [0, 1, 2]
    assert prof["metrics"]["full/AP"]["sd"] == pytest.approx(np.std([0.10, 0.13, 0.07], ddof=1))
    assert prof["metrics"]["full/groups.small_road_users.AP"]["sd"] == pytest.approx(
        np.std([0.05, 0.065, 0.035], ddof=1))
    assert prof["provenance"]["commit"] is not None or prof["provenance"]["machine"]


# ---------------------------------------------------------------- one Δ, one interval, every door


def _two_protocol_record(root: Path, exp_id: str, seed_values: dict, base=None) -> None:
    """A record with per-seed prophesee and full blocks (AP = small AP = the seed's value)."""
    def blocks(v):
        return {p: {**protocol_block(v, v, {"pedestrian": v, "car": v}, small_ap=v), "protocol": p}
                for p in ("prophesee", "full")}

    mean = float(np.mean(list(seed_values.values())))
    d = make_experiment(root, exp_id, base=base, protocols=blocks(mean), hypothesis=CRITERION if base else "")
    doc = json.loads((d / "results.json").read_text())
    doc.update(schema_version=2, seeds=list(seed_values),
               runs={str(s): {"seed": s, "dir": "." if i == 0 else f"seeds/seed_{s}", "status": "completed",
                              "protocols": blocks(v)} for i, (s, v) in enumerate(seed_values.items())})
    (d / "results.json").write_text(json.dumps(doc))


def test_the_same_delta_has_the_same_interval_at_every_door(tmp_path):
    from evdet.studies.matrix_results import summarize_records

    _two_protocol_record(tmp_path, "base", {0: 0.10, 1: 0.12})
    _two_protocol_record(tmp_path, "variant", {0: 0.15, 1: 0.14}, base="base")
    _two_protocol_record(tmp_path, "third", {0: 0.09, 1: 0.13}, base="base")
    write_pool(tmp_path, "design", ["base", "variant", "third"])
    base, variant = load_experiment(tmp_path, "base"), load_experiment(tmp_path, "variant")
    (verdict,) = judge(parse_criteria(variant.hypothesis), variant, base)
    ranked = {r.id: r for r in rank_experiments([base, variant], "prophesee/AP", baseline="base")}
    comparison = compare_experiments([base, variant], protocol="prophesee")
    compared = next(r for r in comparison.metrics if r.name == "AP").intervals[1]
    summary = summarize_records(tmp_path, {"base": "-", "variant": "+x", "third": "+y"}, "base", None)
    row = next(r for r in summary["rows"] if r["id"] == "variant")
    table = Difference.from_dict(row["protocols"]["prophesee"]["delta_small"])   # small AP = AP here
    doors = [verdict.interval, ranked["variant"].delta_interval, compared, table]
    assert {(d.mean, d.low, d.high, d.method) for d in doors} == {(doors[0].mean, doors[0].low, doors[0].high,
                                                                   METHOD_POOLED)}
    # pooled over the three records of two seeds: 3 degrees of freedom, Student's formula written out
    groups = [[0.10, 0.12], [0.15, 0.14], [0.09, 0.13]]
    sp2 = sum(np.var(g, ddof=1) for g in groups) / 3
    half = stats.t.ppf(0.975, 3) * math.sqrt(sp2 * (1 / 2 + 1 / 2))
    assert (doors[0].low, doors[0].high) == pytest.approx((0.035 - half, 0.035 + half))
    holm = row["protocols"]["prophesee"]["delta_small_holm"]
    assert holm["family_size"] == 2 and holm["p_holm"] >= holm["p"]
