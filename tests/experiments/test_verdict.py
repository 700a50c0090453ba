from pathlib import Path

import pytest

from evdet.experiments.records import load_experiment
from evdet.experiments.verdict import CriteriaError, judge, overall_verdict, parse_criteria

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


def test_verdict_on_hand_made_runs(three_runs: Path):
    exp = load_experiment(three_runs, "sizeaware")
    base = load_experiment(three_runs, "baseline")
    res = judge(parse_criteria(exp.hypothesis), exp, base)
    # AP .33 >= .32 ; AP_S .16 >= .10 + .05 ; car .49 >= .50 is false
    assert [r.met for r in res] == [True, True, False]
    assert res[1].threshold == pytest.approx(0.15) and res[1].value == 0.16 and res[1].base_value == 0.10
    assert "is false" in res[2].reason
    assert overall_verdict(res) == "rejected"
    assert overall_verdict(res[:2]) == "supported"


def test_undecided_without_base_or_metric(three_runs: Path):
    exp = load_experiment(three_runs, "sizeaware")
    cs = parse_criteria("## Success criteria\n- AP >= base\n- full/AP >= 0.1\n- AP >= 0.1\n")
    res = judge(cs, exp, None)
    assert [r.met for r in res] == [None, None, True]
    assert "no base" in res[0].reason and "no value" in res[1].reason
    assert overall_verdict(res) == "undecided"
    assert overall_verdict([]) == "no criteria"
