"""Sweeps: space checks, bad input before training, budget shared by worker processes, killed workers."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from types import SimpleNamespace

import optuna
import pytest
from design_fixtures import fake_train, make_record, quadratic_ap

from evdet.experiments.designs.arms import DesignError
from evdet.experiments.designs.queue import QueueError, open_storage
from evdet.experiments.designs.sweep import SweepSettings, logged_key, pruning_callback, run_sweep
from evdet.experiments.designs.sweep_results import plot_sweep
from evdet.experiments.designs.sweep_space import SpaceError, load_space

TESTS_DIR = Path(__file__).parents[1]
SPACE = """\
params:
  training.lr: {low: 1.0e-3, high: 5.0e-3, log: true}
  loss.focal.gamma: {choices: [0.0, 0.5, 2.0]}
  model.in_stages: {choices: [[2, 3, 4], [1, 2, 3, 4]]}
sampler: tpe
pruner: none      # the fake trainer has no validation to prune on
"""


@pytest.fixture
def sweep_root(tmp_path: Path) -> Path:
    root = tmp_path / "experiments"
    make_record(root, "base")
    (tmp_path / "space.yaml").write_text(SPACE)
    return root


def settings(root: Path, name="s1", trials=4, storage=None, **kw) -> SweepSettings:
    storage = storage or f"sqlite:///{root.parent / 'sweeps.db'}"
    return SweepSettings(name=name, base="base", space_file=root.parent / "space.yaml", trials=trials,
                         metric="full/AP", storage=storage, poll_s=0.2, **kw)


def write_space(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "bad_space.yaml"
    p.write_text(textwrap.dedent(text))
    return p


@pytest.mark.parametrize("text, message", [
    ("params:\n  training.lrr: {low: 0.1, high: 0.2}\n",
     "params.training.lrr: unknown config key; did you mean training.lr"),
    ("params:\n  training.lr: {low: 0.2, high: 0.1}\n", "impossible range, low 0.2 must be below high 0.1"),
    ("params:\n  training.lr: {low: 0.0, high: 0.1, log: true}\n", "log range needs low > 0"),
    ("params:\n  data.batch_size: {low: 2, high: 4, step: 8}\n", "step 8: must be > 0 and at most high - low"),
    ("params:\n  data.batch_size: {low: 2.0, high: 4.5}\n", "holds an integer"),
    ("params:\n  model.preset: {choices: [nano, huge]}\n", "value 'huge' rejected by the config"),
    ("params:\n  training.lr: {low: 1e-4, high: abc}\n", "params.training.lr.high is 'abc', expected a number"),
    ("params: {}\n", "non-empty 'params'"),
    ("params:\n  training.lr: {low: 0.1, high: 0.2}\nsampler: grid\n", "sampler 'grid'"),
    ("params: [\n", "invalid YAML"),
])
def test_space_errors_name_file_key_and_problem(tmp_path: Path, text, message):
    base = {"training": {"lr": 0.002}, "data": {"batch_size": 4}, "model": {"preset": "nano"}}
    path = write_space(tmp_path, text)
    with pytest.raises(SpaceError) as err:
        load_space(path, base)
    assert str(path) in str(err.value) and message in str(err.value) and "\n" not in str(err.value)


def test_space_reads_ranges_and_choices(tmp_path: Path):
    path = write_space(tmp_path, SPACE)
    space = load_space(path, {"training": {"lr": 0.002}, "loss": {"focal": {"gamma": 0.0}},
                              "model": {"in_stages": [2, 3, 4]}})
    lr, gamma, stages = space.params
    assert (lr.kind, lr.low, lr.high, lr.log) == ("float", 1e-3, 5e-3, True)
    assert gamma.choices == (0.0, 0.5, 2.0) and stages.choices == ((2, 3, 4), (1, 2, 3, 4))
    assert space.pruner == "none"


def test_bad_metric_storage_and_reused_name_fail_before_training(sweep_root: Path, tmp_path: Path):
    calls = []

    def never(*a, **k):
        calls.append(a)
        raise AssertionError("must not train")

    with pytest.raises(DesignError, match="unknown metric 'APx'"):
        run_sweep(sweep_root, SweepSettings(name="x", base="base", space_file=tmp_path / "space.yaml", trials=2,
                                            metric="full/APx", storage=f"sqlite:///{tmp_path}/s.db"), run_fn=never)
    with pytest.raises(QueueError, match="does not exist"):
        run_sweep(sweep_root, settings(sweep_root, storage=f"sqlite:///{tmp_path}/nowhere/s.db"), run_fn=never)
    with pytest.raises(QueueError, match=r"postgresql://evdet:\*\*\*@127.0.0.1:1/db: cannot connect"):
        open_storage("postgresql://evdet:secret@127.0.0.1:1/db")
    run_sweep(sweep_root, settings(sweep_root, trials=1), run_fn=fake_train, echo=lambda m: None)
    (tmp_path / "space.yaml").write_text(SPACE.replace("5.0e-3", "6.0e-3"))
    with pytest.raises(QueueError, match="'s1' already exists with a different space"):
        run_sweep(sweep_root, settings(sweep_root, trials=2), run_fn=never)
    assert calls == []


def test_sweep_in_process_makes_records_and_summary(sweep_root: Path, tmp_path: Path):
    summary = run_sweep(sweep_root, settings(sweep_root, trials=5, sampler_seed=0), run_fn=fake_train,
                        echo=lambda m: None)
    assert summary["counts"] == {"COMPLETE": 5}
    best = summary["best"][0]
    rec = json.loads((sweep_root / best["exp_id"] / "results.json").read_text())
    cfg = (sweep_root / best["exp_id"] / "config.yaml").read_text()
    assert rec["base"] == "base" and f"lr: {best['params']['training.lr']}" in cfg
    expected = quadratic_ap({"training.lr": best["params"]["training.lr"],
                             "loss.focal.gamma": best["params"]["loss.focal.gamma"]})
    assert best["value"] == pytest.approx(expected)
    assert [b["value"] for b in summary["best"]] == sorted((b["value"] for b in summary["best"]), reverse=True)
    assert set(summary["importances"]) == {"training.lr", "loss.focal.gamma", "model.in_stages"}
    assert sum(summary["importances"].values()) == pytest.approx(1.0)
    # running the same command again: the budget is spent, nothing more is trained
    again = run_sweep(sweep_root, settings(sweep_root, trials=5), run_fn=fake_train, echo=lambda m: None)
    assert again["counts"] == {"COMPLETE": 5}
    study = optuna.load_study(study_name="s1", storage=f"sqlite:///{tmp_path / 'sweeps.db'}")
    pngs = plot_sweep(study, tmp_path / "plots")
    assert set(pngs) == {"history", "importances"}
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in pngs.values())
    # the workers leave the summary and plots beside the records: the report needs no database
    from evdet.experiments.report.designs import designs_report_html

    saved = json.loads((sweep_root / "_designs" / "s1.json").read_text())
    assert saved["kind"] == "sweep" and saved["best"][0]["exp_id"] == best["exp_id"]
    page = designs_report_html(sweep_root)
    assert "Sweep s1" in page and best["exp_id"] in page and page.count("data:image/png;base64,") == 2


WORKER = """
import sys
sys.path.insert(0, {tests!r})
from functools import partial
from pathlib import Path
from design_fixtures import fake_train
from evdet.experiments.designs.sweep import SweepSettings, run_sweep
root = Path({root!r})
s = SweepSettings(name="multi", base="base", space_file=root.parent / "space.yaml", trials={trials},
                  metric="full/AP", storage={storage!r}, poll_s=0.1, heartbeat_s={hb})
run_sweep(root, s, run_fn=partial(fake_train, sleep_s={sleep}), echo=lambda m: print(m, flush=True),
          save_summary=False)
print("WORKER DONE", flush=True)
"""


def start_worker(root: Path, storage: str, trials: int, sleep: float, hb: int = 30) -> subprocess.Popen:
    code = WORKER.format(tests=str(TESTS_DIR), root=str(root), trials=trials, storage=storage, sleep=sleep, hb=hb)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, env=env)


def check_shared_budget(root: Path, storage: str, trials: int = 6) -> None:
    """Two worker processes with the same command: exactly ``trials`` trials, both worked, both stopped."""
    workers = [start_worker(root, storage, trials, sleep=0.4) for _ in range(2)]
    outs = [w.communicate(timeout=120)[0] for w in workers]
    assert all(w.returncode == 0 for w in workers), outs
    assert all("WORKER DONE" in o for o in outs)
    study = optuna.load_study(study_name="multi", storage=open_storage(storage))
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(complete) == trials
    assert all(t.user_attrs.get("surplus") for t in study.trials if t.state != optuna.trial.TrialState.COMPLETE)
    ids = [t.user_attrs["exp_id"] for t in complete]
    assert len(set(ids)) == trials and all((root / i / "results.json").exists() for i in ids)
    pids = {json.loads((root / i / "results.json").read_text())["worker_pid"] for i in ids}
    assert pids == {w.pid for w in workers}      # the work was shared


def test_two_worker_processes_share_the_budget_sqlite(sweep_root: Path, tmp_path: Path):
    check_shared_budget(sweep_root, f"sqlite:///{tmp_path / 'multi.db'}")


def _postgres_url() -> str:
    url = os.environ.get("EVDET_TEST_POSTGRES_URL")
    if not url:
        pytest.skip("EVDET_TEST_POSTGRES_URL is not set (.ci/run starts a PostgreSQL server and sets it)")
    try:
        open_storage(url)
    except QueueError as err:
        pytest.skip(f"PostgreSQL server not reachable: {err}")
    return url


def test_two_worker_processes_share_the_budget_postgresql(sweep_root: Path):
    url = _postgres_url()
    storage = open_storage(url)
    for s in optuna.get_all_study_summaries(storage):   # a fresh study on a shared test database
        if s.study_name == "multi":
            optuna.delete_study(study_name="multi", storage=storage)
    check_shared_budget(sweep_root, url)


def test_a_killed_worker_trial_is_retried_and_its_record_reused(sweep_root: Path, tmp_path: Path):
    storage = f"sqlite:///{tmp_path / 'killed.db'}"
    victim = start_worker(sweep_root, storage, trials=2, sleep=60, hb=1)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not list(sweep_root.glob("multi-t*/status.json")):
        time.sleep(0.2)
    killed_id = next(sweep_root.glob("multi-t*")).name
    time.sleep(0.5)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    helper = start_worker(sweep_root, storage, trials=2, sleep=0.0, hb=1)
    out = helper.communicate(timeout=90)[0]
    assert helper.returncode == 0, out
    study = optuna.load_study(study_name="multi", storage=open_storage(storage))
    states = {t.number: t.state.name for t in study.trials}
    failed = [t for t in study.trials if t.state == optuna.trial.TrialState.FAIL]
    assert len(failed) == 1 and failed[0].user_attrs["exp_id"] == killed_id       # marked, not lost
    retry = [t for t in study.trials if failed[0].number in t.system_attrs.get("retry_history", [])]
    assert len(retry) == 1 and retry[0].state.name == "COMPLETE", states
    assert retry[0].user_attrs["exp_id"] == killed_id and retry[0].params == failed[0].params
    assert sum(t.state.name == "COMPLETE" for t in study.trials) == 2
    assert json.loads((sweep_root / killed_id / "status.json").read_text())["state"] == "completed"


def test_pruning_callback_reports_and_stops():
    study = optuna.create_study(direction="maximize",
                                pruner=optuna.pruners.ThresholdPruner(lower=0.2))
    trial = study.ask()
    cb = pruning_callback(trial, "val/full/AP")
    trainer = SimpleNamespace(sanity_checking=False, callback_metrics={"val/full/AP": 0.5}, global_step=10,
                              should_stop=False)
    cb.on_validation_end(trainer, None)
    assert trial.storage.get_trial(trial._trial_id).intermediate_values == {10: 0.5} and not trainer.should_stop
    trainer.callback_metrics["val/full/AP"], trainer.global_step = 0.1, 20
    cb.on_validation_end(trainer, None)
    assert trainer.should_stop and cb.pruned_at_step == 20


def test_logged_key_maps_metrics_to_training_logs():
    assert logged_key("full/AP") == "val/full/AP"
    assert logged_key("prophesee/small_AP") == "val/prophesee/small_AP"
    assert logged_key("train/loss") == "train/loss"
    assert logged_key("full/per_class.car.AP") is None

