"""Bisection: delta debugging against deterministic oracles of which keys break the metric."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from design_fixtures import OracleExecutor, make_record
from hypothesis import given, settings
from hypothesis import strategies as st

from evdet.experiments.designs.bisect import bisect_experiments, ddmin, split_parts
from evdet.experiments.designs.arms import DesignError


def counting_oracle(is_bad):
    """first_bad over candidates one by one (stops at the first bad), counting the distinct sets tested."""
    tested: set[frozenset] = set()

    def first_bad(subsets):
        for i, s in enumerate(subsets):
            tested.add(frozenset(s))
            if is_bad(set(s)):
                return i
        return None

    return first_bad, tested


def test_split_parts_covers_in_order():
    assert split_parts(list("abcde"), 2) == [list("abc"), list("de")]
    assert split_parts(list("abcde"), 5) == [[c] for c in "abcde"]
    assert split_parts(list("ab"), 3) == [["a"], ["b"]]


@settings(max_examples=60, deadline=None)
@given(n_keys=st.integers(1, 30), data=st.data())
def test_single_culprit_found_within_two_runs_per_halving(n_keys, data):
    keys = [f"k{i:02d}" for i in range(n_keys)]
    culprit = data.draw(st.sampled_from(keys))
    first_bad, tested = counting_oracle(lambda s: culprit in s)
    assert ddmin(keys, first_bad) == [culprit]
    # each halving costs at most two probes (first half good -> second half must be bad)
    assert len(tested) <= 2 * math.ceil(math.log2(n_keys)) if n_keys > 1 else len(tested) == 0


@settings(max_examples=60, deadline=None)
@given(n_keys=st.integers(2, 16), data=st.data())
def test_interacting_keys_are_found_together(n_keys, data):
    keys = [f"k{i:02d}" for i in range(n_keys)]
    culprit = set(data.draw(st.lists(st.sampled_from(keys), min_size=2, max_size=3, unique=True)))
    first_bad, _ = counting_oracle(lambda s: culprit <= s)   # bad only when all of them are applied
    assert set(ddmin(keys, first_bad)) == culprit


@settings(max_examples=40, deadline=None)
@given(n_keys=st.integers(2, 16), data=st.data())
def test_either_of_two_culprits_gives_a_one_minimal_set(n_keys, data):
    keys = [f"k{i:02d}" for i in range(n_keys)]
    culprits = set(data.draw(st.lists(st.sampled_from(keys), min_size=2, max_size=2, unique=True)))
    first_bad, _ = counting_oracle(lambda s: bool(culprits & s))
    found = ddmin(keys, first_bad)
    assert len(found) == 1 and found[0] in culprits


BAD_OVERRIDES = ["loss.iou_weight=50.0", "eval.pr_confidence=0.3", "model.head.conf_threshold=0.05",
                 "data.augment.flip_prob=0.4", "training.weight_decay=0.01"]


def loss_oracle(flat: dict):
    """train/loss 0.4, or 0.6 when the IoU weight is raised (the one culprit); NaN weight decay fails.

    (Also written as full/AP, so values stay in [0, 1].)
    """
    if flat["training.weight_decay"] == 0.5:
        return None
    return 0.6 if flat["loss.iou_weight"] > 5.0 else 0.4


@pytest.fixture
def good_bad(tmp_path: Path) -> Path:
    root = tmp_path / "experiments"
    make_record(root, "good")
    make_record(root, "bad", BAD_OVERRIDES + ["training.seed=3"])   # the seed is not a change
    return root


def test_bisect_names_the_culprit_with_its_proof_and_resumes(good_bad: Path):
    root = good_bad
    ex = OracleExecutor(root, loss_oracle)
    res = bisect_experiments(root, "good", "bad", "train/loss", "min", executor=ex, echo=lambda m: None)
    assert sorted(res.keys) == sorted(k.split("=")[0] for k in BAD_OVERRIDES)
    # exp diff's high-risk changes first: an evaluation setting, regularisation switched on
    assert set(res.keys[:2]) == {"eval.pr_confidence", "training.weight_decay"}
    assert res.culprit == ["loss.iou_weight"] and res.threshold == pytest.approx(0.5)
    roles = {p.role: p for p in res.proof}
    alone = roles["culprit alone on GOOD"]
    assert alone.keys == ["loss.iou_weight"] and alone.bad and alone.value == 0.6
    assert not roles["GOOD"].bad and roles["BAD"].bad and not roles["BAD without the culprit"].bad
    assert res.culprit_explains_all is True
    # the culprit-alone record is an ordinary record: GOOD's config with only that key changed, base GOOD
    rec = json.loads((root / alone.exp_id / "results.json").read_text())
    assert rec["base"] == "good"
    assert "loss.iou_weight" in (root / alone.exp_id / "hypothesis.md").read_text()
    assert len(ex.trained) <= 2 + 2 * 3 + 1        # GOOD, BAD, <= 2 per halving of 5 keys, the confirmation
    assert sorted(res.trained) == sorted(ex.trained)
    summary = json.loads((root / "_designs" / "bisect_good_bad.json").read_text())
    assert summary["culprit"] == ["loss.iou_weight"]
    # resume: the same bisection again trains nothing and finds the same culprit
    again = OracleExecutor(root, loss_oracle)
    res2 = bisect_experiments(root, "good", "bad", "train/loss", "min", executor=again, echo=lambda m: None)
    assert again.trained == [] and res2.culprit == res.culprit


def test_a_failed_run_counts_as_bad(tmp_path: Path):
    root = tmp_path / "experiments"
    make_record(root, "good")
    make_record(root, "bad", ["training.weight_decay=0.5", "eval.pr_confidence=0.3", "data.augment.flip_prob=0.4"])
    res = bisect_experiments(root, "good", "bad", "full/AP", "max", executor=OracleExecutor(root, loss_oracle),
                             echo=lambda m: None)
    assert res.culprit == ["training.weight_decay"] and res.threshold is None
    assert {p.role: p.state for p in res.proof}["culprit alone on GOOD"] == "failed"


def test_bisect_refuses_bad_input(good_bad: Path, tmp_path: Path):
    root = good_bad
    ex = OracleExecutor(root, loss_oracle)
    with pytest.raises(DesignError, match="no_such_metric"):
        bisect_experiments(root, "good", "bad", "full/no_such_metric", "max", executor=ex)
    with pytest.raises(DesignError, match="protocol 'coco'"):
        bisect_experiments(root, "good", "bad", "coco/AP", "max", executor=ex)
    with pytest.raises(DesignError, match="--mode"):
        bisect_experiments(root, "good", "bad", "train/loss", "maximise", executor=ex)
    make_record(root, "good_again", ["training.seed=9"])
    with pytest.raises(DesignError, match="nothing to bisect"):
        bisect_experiments(root, "good", "good_again", "train/loss", "min", executor=ex)
    # wrong direction: with max, the higher loss of BAD is not bad
    with pytest.raises(DesignError, match="not better than bad .* --mode max"):
        bisect_experiments(root, "good", "bad", "train/loss", "max", executor=ex, echo=lambda m: None)
    with pytest.raises(DesignError, match="BAD is not bad"):
        bisect_experiments(root, "good", "bad", "train/loss", "min", threshold=1.0, executor=ex,
                           echo=lambda m: None)
    assert ex.trained == ["good", "bad"]           # every error before any probe was trained


def test_bisect_through_the_queue_finds_the_same_culprit(good_bad: Path, tmp_path: Path):
    from evdet.experiments.designs.queue import QueueExecutor
    from evdet.experiments.records.record import load_experiment

    def train_one(root, exp_id):
        OracleExecutor(root, loss_oracle).run([exp_id])
        return load_experiment(root, exp_id)

    ex = QueueExecutor(good_bad, f"sqlite:///{tmp_path / 'q.db'}", "evdet-bisect", {"design": "bisect"},
                       metric="train/loss", poll_s=0.05, echo=lambda m: None, run_fn=train_one)
    res = bisect_experiments(good_bad, "good", "bad", "train/loss", "min", executor=ex, echo=lambda m: None)
    assert res.culprit == ["loss.iou_weight"]
    # every probe of a round is a fixed trial (parallel delta debugging), each record trained once
    done = [t.user_attrs["exp_id"] for t in ex.study.trials if t.state.name == "COMPLETE"]
    assert len(done) == len(set(done)) == len(res.trained)


@pytest.mark.parametrize("noise, within", [(0.001, False), (0.12, True)])   # seed sd = noise; effect 0.2
def test_bisect_states_whether_the_regression_is_within_noise(tmp_path: Path, noise, within):
    root = tmp_path / "experiments"
    make_record(root, "good", ["seeds=[0,1,2]"])
    make_record(root, "bad", ["seeds=[0,1,2]", "loss.iou_weight=50.0", "eval.pr_confidence=0.3"])
    messages = []
    jitter = {0: -noise, 1: 0.0, 2: noise}
    ex = OracleExecutor(root, loss_oracle, jitter.get)
    res = bisect_experiments(root, "good", "bad", "full/AP", "min", executor=ex, echo=messages.append)
    assert res.regression["mean"] == pytest.approx(0.2) and res.regression["method"] == "welch-t over seeds"
    assert res.regression_within_noise is within
    assert any("within noise" in m for m in messages) is within


def test_generated_hypotheses_hold_criteria_that_verdict_parses(good_bad: Path):
    from evdet.experiments.analysis.verdict import parse_criteria

    res = bisect_experiments(good_bad, "good", "bad", "train/loss", "min",
                             executor=OracleExecutor(good_bad, loss_oracle), echo=lambda m: None)
    alone = next(p for p in res.proof if p.role == "culprit alone on GOOD")
    crit = parse_criteria((good_bad / alone.exp_id / "hypothesis.md").read_text())
    assert [(c.metric, c.op, c.value) for c in crit] == [("train/loss", "<=", 0.5)]


@pytest.mark.parametrize("metric, message", [
    ("train/los", "no run logs it"),
    ("val/coco/AP", "no run logs it"),
    ("val/full/APX", "no run logs it"),
    ("monitors.nope", "unknown monitor"),
    ("coco/AP", "protocol 'coco' is not evaluated"),
    ("full/per_class.car", "unknown metric"),
])
def test_check_metric_rejects_what_no_run_logs(metric, message):
    from evdet.experiments.designs.arms import check_loggable_metric

    config = {"eval": {"protocols": ["prophesee", "full"]}}
    with pytest.raises(DesignError, match=message):
        check_loggable_metric(metric, config)


@pytest.mark.parametrize("metric", ["train/loss", "val/loss", "val/full/small_AP", "monitor/loss_cv", "AP",
                                    "prophesee/AP50", "full/per_class.car.AP", "full/groups.MM.AP50",
                                    "monitors.loss_cv"])
def test_check_metric_accepts_logged_metrics(metric):
    from evdet.experiments.designs.arms import check_loggable_metric

    check_loggable_metric(metric, {"eval": {"protocols": ["prophesee", "full"]}})
