"""Ablations against oracle 'training': known single effects, leave-one-out effects and interactions."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import yaml
from design_fixtures import OracleExecutor, make_record
from scipy import stats

from evdet.experiments.designs.ablate import ablate_experiments, contrast_interval, effect_word
from evdet.experiments.designs.arms import DesignError
from evdet.experiments.statistics.intervals import welch_interval

NOISE = {0: -0.01, 1: 0.0, 2: 0.012}     # per-seed jitter of the oracle (the same for every arm)


def ap_oracle(interaction: float):
    """full/AP: 0.30, focal gamma on +0.05, lr raised -0.02, both together + ``interaction``."""
    def oracle(flat: dict) -> float:
        focal, lr = flat["loss.focal.gamma"] > 0, flat["training.lr"] > 0.002
        return 0.30 + 0.05 * focal - 0.02 * lr + interaction * (focal and lr)
    return oracle


@pytest.fixture
def pair(tmp_path: Path) -> Path:
    root = tmp_path / "experiments"
    make_record(root, "base")
    make_record(root, "variant", ["loss.focal.gamma=0.5", "training.lr=0.004", "training.seed=7"])
    return root


def test_contrast_interval_matches_welch_and_a_hand_computed_case():
    a, b = [0.30, 0.32, 0.35], [0.36, 0.41, 0.37, 0.40]
    assert contrast_interval([b, a], [1.0, -1.0]) == pytest.approx(welch_interval(a, b))
    # three arms, contrast x - 2y + z, by hand: se^2 = sum c^2 s^2 / n
    x, y, z = [1.0, 2.0, 3.0], [2.0, 2.5, 3.0], [0.0, 1.0, 5.0]
    est = np.mean(x) - 2 * np.mean(y) + np.mean(z)
    terms = [np.var(x, ddof=1) / 3, 4 * np.var(y, ddof=1) / 3, np.var(z, ddof=1) / 3]
    se2 = sum(terms)
    dof = se2 ** 2 / sum(t ** 2 / 2 for t in terms)
    half = stats.t.ppf(0.975, dof) * math.sqrt(se2)
    got = contrast_interval([x, y, z], [1.0, -2.0, 1.0])
    assert got == pytest.approx((est, est - half, est + half, dof))


def test_additive_keys_add_up(pair: Path):
    ex = OracleExecutor(pair, ap_oracle(0.0), seed_noise=NOISE.get)
    res = ablate_experiments(pair, "base", "variant", metrics=["full/AP"], seeds=[0, 1, 2], executor=ex,
                             echo=lambda m: None)
    assert res.keys == ["loss.focal.gamma", "training.lr"]
    eff = res.effects[0]
    assert eff.single["loss.focal.gamma"].mean == pytest.approx(0.05)
    assert eff.single["training.lr"].mean == pytest.approx(-0.02)
    assert eff.leave_one_out["loss.focal.gamma"].mean == pytest.approx(0.05)
    assert eff.full.mean == pytest.approx(0.03)
    assert eff.single["loss.focal.gamma"].method == "welch-t over seeds"
    assert effect_word(eff.single["loss.focal.gamma"]) == "raises"
    assert eff.interaction.mean == pytest.approx(0.0, abs=1e-12) and eff.adds_up is True
    # arms: 2 reference arms with the seeds + add/drop per key; adding focal alone to base with seeds
    # is its own record, BASE itself (no seeds) is not reused
    assert len(set(res.arms.values())) == 6 and "base" not in res.arms.values()
    cfg = yaml.safe_load((pair / res.arms["add:loss.focal.gamma"] / "config.yaml").read_text())
    assert cfg["loss"]["focal"]["gamma"] == 0.5 and cfg["training"]["lr"] == 0.002 and cfg["seeds"] == [0, 1, 2]
    summary = json.loads((pair / "_designs" / "ablate_base_variant.json").read_text())
    assert summary["effects"][0]["adds_up"] is True
    # resume: nothing is trained twice
    again = OracleExecutor(pair, ap_oracle(0.0), seed_noise=NOISE.get)
    ablate_experiments(pair, "base", "variant", metrics=["full/AP"], seeds=[0, 1, 2], executor=again,
                       echo=lambda m: None)
    assert again.trained == []


def test_interacting_keys_do_not_add_up(pair: Path):
    ex = OracleExecutor(pair, ap_oracle(0.10), seed_noise=NOISE.get)
    eff = ablate_experiments(pair, "base", "variant", metrics=["full/AP"], seeds=[0, 1, 2], executor=ex,
                             echo=lambda m: None).effects[0]
    assert eff.full.mean == pytest.approx(0.13)
    assert eff.leave_one_out["loss.focal.gamma"].mean == pytest.approx(0.15)   # focal with the lr change
    assert eff.interaction.mean == pytest.approx(0.10)
    assert eff.interaction.low > 0 and eff.adds_up is False


def test_one_seed_reuses_base_and_variant_and_says_no_interval(pair: Path):
    ex = OracleExecutor(pair, ap_oracle(0.0))
    res = ablate_experiments(pair, "base", "variant", metrics=["train/loss"], executor=ex, echo=lambda m: None)
    assert res.arms["base"] == "base" and res.arms["variant"] == "variant"
    eff = res.effects[0]
    assert eff.single["loss.focal.gamma"].mean == pytest.approx(0.05)   # the fake logs train/loss = oracle value
    assert effect_word(eff.single["loss.focal.gamma"]) == "no interval" and eff.adds_up is None


def test_ablate_refuses_bad_input(pair: Path):
    ex = OracleExecutor(pair, ap_oracle(0.0))
    with pytest.raises(DesignError, match="unknown metric 'APP'"):
        ablate_experiments(pair, "base", "variant", metrics=["full/APP"], executor=ex)
    make_record(pair, "base_seed", ["training.seed=4"])
    with pytest.raises(DesignError, match="nothing to ablate"):
        ablate_experiments(pair, "base", "base_seed", executor=ex)
    assert ex.trained == []


QUEUE_WORKER = """
import json, sys
sys.path.insert(0, {tests!r})
from functools import partial
from pathlib import Path
from design_fixtures import fake_train
from evdet.experiments.designs.ablate import ablate_experiments
from evdet.experiments.designs.queue import QueueExecutor
root = Path({root!r})
ex = QueueExecutor(root, {storage!r}, "evdet-abl", {{"design": "ablate"}}, poll_s=0.1, echo=lambda m: None,
                   run_fn=partial(fake_train, sleep_s=0.8))
res = ablate_experiments(root, "base", "variant", metrics=["full/AP"], executor=ex, echo=lambda m: None)
print("RESULT", json.dumps({{k: d.mean for k, d in res.effects[0].single.items()}}), flush=True)
"""


def test_ablation_matrix_spreads_over_queue_workers(pair: Path, tmp_path: Path):
    import os
    import subprocess
    import sys

    import optuna

    from evdet.experiments.designs.queue import open_storage

    storage = f"sqlite:///{tmp_path / 'queue.db'}"
    code = QUEUE_WORKER.format(tests=str(Path(__file__).parents[1]), root=str(pair), storage=storage)
    procs = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True, env={**os.environ, "OMP_NUM_THREADS": "1"}) for _ in range(2)]
    outs = [p.communicate(timeout=180)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    # both workers report the same effects, equal to the oracle's (quadratic_ap of the fake trainer)
    results = [json.loads(next(line for line in o.splitlines() if line.startswith("RESULT"))[7:]) for o in outs]
    assert results[0] == results[1]
    assert results[0]["loss.focal.gamma"] == pytest.approx(0.1 * 0.5 ** 2)          # gamma 0 -> 0.5
    assert results[0]["training.lr"] == pytest.approx(0.0, abs=1e-12)   # 2e-3 and 4e-3 lie symmetric to the optimum
    study = optuna.load_study(study_name="evdet-abl", storage=open_storage(storage))
    done = [t.user_attrs["exp_id"] for t in study.trials if t.state.name == "COMPLETE"]
    # base, variant, 2 add, 2 drop (drop arms keep VARIANT's seed 7, so they differ from the add arms): each once
    assert len(done) == len(set(done)) == 6
    pids = {json.loads((pair / i / "results.json").read_text())["worker_pid"] for i in done}
    assert pids == {p.pid for p in procs}                  # the matrix was shared


def test_ablate_cli_prints_effects_of_finished_arms(pair: Path):
    from typer.testing import CliRunner

    from evdet.cli import app

    ablate_experiments(pair, "base", "variant", metrics=["full/AP"], seeds=[0, 1, 2],
                       executor=OracleExecutor(pair, ap_oracle(0.10), seed_noise=NOISE.get), echo=lambda m: None)
    r = CliRunner().invoke(app, ["exp", "ablate", "base", "variant", "--seeds", "0,1,2", "-m", "full/AP",
                                 "--root", str(pair)])
    assert r.exit_code == 0, r.output
    assert "0 to train" in r.output and "training " not in r.output          # everything reused
    assert "loss.focal.gamma" in r.output and "+0.0500 [" in r.output and "raises" in r.output
    assert "the keys interact" in r.output
    r = CliRunner().invoke(app, ["exp", "ablate", "base", "variant", "--seeds", "0,x", "--root", str(pair)])
    assert r.exit_code == 1 and "--seeds '0,x'" in r.output


def test_designs_report_section_shows_effects_and_culprits(pair: Path):
    from evdet.experiments.designs.bisect import bisect_experiments
    from evdet.experiments.report.designs import designs_report_html

    assert designs_report_html(pair) == ""
    ex = OracleExecutor(pair, ap_oracle(0.10), seed_noise=NOISE.get)
    ablate_experiments(pair, "base", "variant", metrics=["full/AP"], seeds=[0, 1, 2], executor=ex,
                       echo=lambda m: None)
    bisect_experiments(pair, "base", "variant", "full/AP", "min", executor=ex, echo=lambda m: None)
    section = designs_report_html(pair)
    assert section.startswith("<section>") and "Ablation ablate_base_variant" in section
    assert "+0.0500 [" in section and "the keys interact" in section
    assert "Bisection bisect_base_variant" in section
    # mode min: 'bad' is AP above midway (0.365); focal alone 0.35, lr alone 0.28, both 0.43: both together
    assert "Culprit: <b>loss.focal.gamma, training.lr</b>" in section and "culprit alone on GOOD" in section


def test_failed_arms_are_named(pair: Path):
    def oracle(flat):   # the lr change alone diverges
        return None if flat["training.lr"] > 0.002 and flat["loss.focal.gamma"] == 0.0 else 0.3

    res = ablate_experiments(pair, "base", "variant", metrics=["full/AP"], executor=OracleExecutor(pair, oracle),
                             echo=lambda m: None)
    # the lr change without focal: lr alone on base, and the variant without focal
    assert res.failed == sorted([res.arms["add:training.lr"], res.arms["drop:loss.focal.gamma"]])


def test_record_index_reuses_equal_configs_after_resolution(pair: Path):
    from evdet.experiments.designs.arms import Arm, RecordIndex, config_of, with_overrides

    existing = make_record(pair, "weight50", ["loss.iou_weight=50.0"]).name
    index = RecordIndex(pair)
    same = with_overrides(config_of(pair, "base"), {"loss.iou_weight": 50, "name": "other"})   # int, other name
    assert index.ensure(Arm("new_id", same, "h", base="base")) == existing
    different = with_overrides(config_of(pair, "base"), {"loss.iou_weight": 51})
    assert index.ensure(Arm("new_id", different, "h", base="base")) == "new_id"
    assert (pair / "new_id" / "config.yaml").exists()
    with pytest.raises(DesignError, match="exists with a different config"):
        RecordIndex(pair).ensure(Arm("new_id", with_overrides(different, {"loss.iou_weight": 52}), "h", base=None))
