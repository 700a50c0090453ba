import json
import math
from pathlib import Path

import numpy as np
import pytest

from evdet.data.labels import BBOX_DTYPE
from evdet.evaluation import evaluate
from evdet.experiments.statistics.intervals import (METHOD_BOOT_SEQ, METHOD_NONE, METHOD_WELCH, Difference,
                                         save_validation_detections)
from evdet.experiments.records.record import load_experiment
from evdet.experiments.analysis.verdict import (CriteriaError, decide, judge, overall_verdict, parse_criteria,
                                       verdict_lines)

from exp_fixtures import make_experiment, make_seeded_experiment

EVAL_KWARGS = {"height": 360, "width": 640, "class_names": ["pedestrian", "car", "bicycle"], "class_groups": {},
               "source_hw": [360, 640], "groups": None, "pr_confidence": 0.5, "confusion_iou": 0.5,
               "label_rate_hz": 10.0}

HYP = """# x

## Hypothesis
AP >= 0.9 here is prose, not a criterion

## Success criteria
- prophesee/AP >= 0.30
- full/small_AP >= base + 0.02
- `prophesee/per_class.car.AP > base`  (car must not lose)
* AP_S <= base * 1.5 # size bucket
- monitors.loss_cv < 0.5

## Risks
- lr >= 3 is a risk, not a criterion
"""


def test_parse_criteria_fields():
    cs = parse_criteria(HYP)
    assert [c.text for c in cs] == ["prophesee/AP >= 0.30", "full/small_AP >= base + 0.02",
                                    "prophesee/per_class.car.AP > base", "AP_S <= base * 1.5",
                                    "monitors.loss_cv < 0.5"]
    assert cs[0].value == 0.30 and not cs[0].relative_to_base
    assert cs[1].relative_to_base and cs[1].base_op == "+" and cs[1].base_offset == 0.02
    assert cs[1].threshold(0.15) == pytest.approx(0.17)
    assert cs[2].threshold(0.5) == 0.5
    assert cs[3].threshold(0.1) == pytest.approx(0.15)
    assert cs[1].threshold(None) is None


def test_bad_criterion_names_line():
    with pytest.raises(CriteriaError, match=r"hypothesis.md:3: cannot parse"):
        parse_criteria("## Success criteria\n- AP >= 0.3\n- AP is better\n")


def test_single_seed_records_without_detections_are_inconclusive(three_runs: Path):
    """Point values alone (0.33 vs 0.30, one seed, no saved detections) decide nothing."""
    exp = load_experiment(three_runs, "sizeaware")
    base = load_experiment(three_runs, "baseline")
    res = judge(parse_criteria(exp.hypothesis), exp, base)
    assert [r.decision for r in res] == ["inconclusive"] * 3
    assert res[1].threshold == pytest.approx(0.15) and res[1].value == 0.16 and res[1].base_value == 0.10
    assert all("no interval" in r.reason and "no saved validation detections" in r.reason for r in res)
    assert overall_verdict(res) == "inconclusive"


@pytest.mark.parametrize("op,low,high,margin,decision", [
    (">=", 0.01, 0.03, 0.0, "supported"), (">=", -0.03, -0.01, 0.0, "rejected"),
    (">=", -0.01, 0.03, 0.0, "inconclusive"), (">=", 0.0, 0.03, 0.0, "inconclusive"),
    (">", 0.03, 0.05, 0.02, "supported"), ("<=", -0.03, -0.01, 0.0, "supported"),
    ("<", 0.01, 0.03, 0.0, "rejected"), ("<=", -0.01, 0.01, 0.0, "inconclusive"),
    ("==", 0.01, 0.03, 0.0, "rejected"), ("==", -0.01, 0.01, 0.0, "inconclusive"),
    ("==", 0.0, 0.0, 0.0, "supported")])
def test_decide_three_ways_by_hand(op, low, high, margin, decision):
    assert decide(op, Difference((low + high) / 2, low, high, METHOD_WELCH, 3, 3), margin) == decision
    assert decide(op, Difference(0.5, None, None, METHOD_NONE, 1, 1), margin) == "inconclusive"


def test_verdict_over_seeds_by_hand(tmp_path: Path):
    root = tmp_path / "exps"
    make_seeded_experiment(root, "base", {0: (0.30, 0.10), 1: (0.32, 0.12), 2: (0.31, 0.11)})
    make_seeded_experiment(root, "var", {3: (0.40, 0.20), 4: (0.42, 0.22), 5: (0.41, 0.21)}, base="base")
    exp, base = load_experiment(root, "var"), load_experiment(root, "base")
    # difference of means 0.10; both samples have std 0.01, so Welch: se = sqrt(2 * 0.01^2 / 3), dof = 4
    half = 2.7764451051977987 * math.sqrt(2 * 0.01 ** 2 / 3)            # t table, 4 dof, 97.5 %
    cs = parse_criteria("## Success criteria\n- AP >= base + 0.05\n- AP >= base + 0.2\n- AP > base + 0.1\n"
                        "- AP_S <= base * 1.5\n- AP >= 0.3\n- AP <= 0.41\n")
    res = judge(cs, exp, base)
    # AP_S: 0.21 - 1.5 * 0.11 = +0.045, interval about +-0.03 -> wholly above 0, so "<=" is rejected
    assert [r.decision for r in res] == ["supported", "rejected", "inconclusive", "rejected",
                                         "supported", "inconclusive"]
    assert (res[0].interval.low, res[0].interval.high) == pytest.approx((0.1 - half, 0.1 + half))
    assert res[0].margin == 0.05 and "welch-t over seeds" in res[0].reason and "wholly above" in res[0].reason
    assert res[3].margin == 0.0 and res[3].interval.mean == pytest.approx(0.21 - 1.5 * 0.11)
    assert res[4].interval.method == "t-interval over seeds"
    assert overall_verdict(res) == "rejected" and overall_verdict(res[:1] + res[4:5]) == "supported"
    lines = verdict_lines(res, "var")
    assert lines[0] == "var: rejected" and len(lines) == 7
    assert all("[" in line and "]" in line for line in lines[1:])        # every line shows its interval


def test_inconclusive_without_base_or_metric(three_runs: Path):
    exp = load_experiment(three_runs, "sizeaware")
    cs = parse_criteria("## Success criteria\n- AP >= base\n- full/AP >= 0.1\n- monitors.loss_cv < 0.5\n")
    res = judge(cs, exp, None)
    assert [r.decision for r in res] == ["inconclusive", "inconclusive", "supported"]
    assert "no base" in res[0].reason and "no value" in res[1].reason
    assert "judged on its value" in res[2].interval.detail          # a monitor of one run: no noise estimate
    assert overall_verdict(res) == "inconclusive"
    assert overall_verdict([]) == "no criteria"


# ---------------------------------------------------------------- A/A tests on real evaluation data


def _gt(rng, n_seq=12, n_frames=6):
    out = []
    for _ in range(n_seq):
        ts = 600_000 + 100_000 * np.arange(n_frames)
        g = np.zeros(2 * n_frames, BBOX_DTYPE)
        g["t"] = np.repeat(ts, 2)
        g["x"], g["y"] = rng.uniform(0, 500, g.size), rng.uniform(0, 250, g.size)
        g["w"], g["h"] = rng.uniform(30, 90, g.size), rng.uniform(30, 90, g.size)
        g["class_id"] = rng.integers(0, 3, g.size)
        out.append(g)
    return out


def _detector(gts, seed: int, quality: float = 0.6):
    """One 'training seed' of a detector recipe: finds each GT box with probability ``quality``."""
    rng = np.random.default_rng(seed)
    out = []
    for g in gts:
        found = g[rng.random(g.size) < quality].copy()
        found["x"] += rng.normal(0, 4, found.size)
        found["class_confidence"] = rng.uniform(0.3, 1.0, found.size)
        fp = g[rng.random(g.size) < 0.5].copy()
        fp["x"] = rng.uniform(0, 500, fp.size)
        fp["class_confidence"] = rng.uniform(0.0, 0.7, fp.size)
        d = np.concatenate([found, fp])
        out.append(d[np.argsort(d["t"], kind="stable")])
    return out


def _record(root: Path, exp_id: str, gts, seeds, base=None) -> None:
    """A schema-2 record of the given seeds, each evaluated with evaluate (detections saved per run)."""
    kw = {k: v for k, v in EVAL_KWARGS.items() if k != "class_groups"}
    d = make_experiment(root, exp_id, base=base)
    runs = {}
    for i, s in enumerate(seeds):
        dts = _detector(gts, s)
        run_dir = d if i == 0 else d / "seeds" / f"seed_{s}"
        save_validation_detections(run_dir / "validation" / "detections.npz", [f"s{k}" for k in range(len(gts))],
                                   gts, dts, EVAL_KWARGS)
        runs[str(s)] = {"seed": s, "dir": "." if i == 0 else f"seeds/seed_{s}", "status": "completed",
                        "protocols": {"prophesee": evaluate(gts, dts, protocol="prophesee", **kw).to_dict()}}
    doc = json.loads((d / "results.json").read_text())
    doc.update(schema_version=2, seeds=list(seeds), runs=runs, protocols=runs[str(seeds[0])]["protocols"])
    (d / "results.json").write_text(json.dumps(doc))


AA_CRITERIA = "## Success criteria\n- AP >= base\n- AP50 <= base\n"


def test_aa_over_seeds_is_inconclusive(tmp_path: Path):
    """Same recipe, different seeds (3 each, Welch): inconclusive; over 20 A/A pairs at most 2 decide."""
    gts = _gt(np.random.default_rng(0))
    decided = 0
    for k in range(20):
        root = tmp_path / f"aa{k}"
        _record(root, "a", gts, [6 * k, 6 * k + 1, 6 * k + 2])
        _record(root, "b", gts, [6 * k + 3, 6 * k + 4, 6 * k + 5], base="a")
        res = judge(parse_criteria(AA_CRITERIA), load_experiment(root, "b"), load_experiment(root, "a"))
        assert all(r.interval.method == METHOD_WELCH for r in res)
        decided += sum(r.decision != "inconclusive" for r in res)
        if k == 0:
            assert overall_verdict(res) == "inconclusive"
    assert decided <= 2 * 2


def test_aa_with_one_seed_each_is_inconclusive_by_paired_bootstrap(tmp_path: Path):
    gts = _gt(np.random.default_rng(1))
    _record(tmp_path, "a", gts, [100])
    _record(tmp_path, "b", gts, [101], base="a")
    res = judge(parse_criteria(AA_CRITERIA), load_experiment(tmp_path, "b"), load_experiment(tmp_path, "a"),
                n_boot=100)
    assert [r.decision for r in res] == ["inconclusive", "inconclusive"]
    assert all(r.interval.method == METHOD_BOOT_SEQ and "paired bootstrap over sequences" in r.reason for r in res)
