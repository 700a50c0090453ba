"""Sweeps: infinite or out-of-range spaces, a reused sweep name with another storage, a missing database."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "experiments"))

from design_fixtures import fake_train, make_record  # noqa: E402

from evdet.experiments.designs.arms import DesignError  # noqa: E402
from evdet.experiments.designs.sweep import SweepSettings, run_sweep  # noqa: E402
from evdet.experiments.designs.sweep_space import SpaceError, load_space  # noqa: E402
from hostile_files import one_line_error  # noqa: E402

BASE = {"training": {"lr": 0.002}, "loss": {"focal": {"gamma": 0.0}}}


@pytest.mark.parametrize("text, message", [
    ("params:\n  training.lr: {low: 1.0e-4, high: .inf}\n", "params.training.lr.high is inf, expected a finite number"),
    ("params:\n  training.lr: {low: .nan, high: 1.0}\n", "params.training.lr.low is nan, expected a finite number"),
    ("params:\n  training.lr: {low: -5.0, high: 1.0e-3}\n",
     "value -5.0 rejected by the config (training.lr: must be a finite number > 0, got -5.0)"),
])
def test_space_bounds_must_be_finite_and_valid(tmp_path, text, message):
    path = tmp_path / "space.yaml"
    path.write_text(text)
    with pytest.raises(SpaceError) as err:
        load_space(path, BASE)
    assert str(err.value).startswith(f"{path}: ") and message in str(err.value)


def sweep(root: Path, space_text: str, db: str, trials: int = 1) -> dict:
    space = root.parent / f"space_{abs(hash(space_text))}.yaml"
    space.write_text(space_text)
    s = SweepSettings(name="s1", base="base", space_file=space, trials=trials, metric="full/AP",
                      storage=f"sqlite:///{root.parent / db}", poll_s=0.2, sampler_seed=0)
    return run_sweep(root, s, run_fn=fake_train, echo=lambda m: None)


def test_second_sweep_of_a_name_with_new_storage_and_space_is_refused(tmp_path):
    root = tmp_path / "experiments"
    make_record(root, "base")
    sweep(root, "params:\n  training.lr: {low: 1.0e-3, high: 5.0e-3}\npruner: none\n", "a.db")
    summary = (root / "_designs" / "s1.json").read_bytes()
    config = (root / "s1-t000" / "config.yaml").read_bytes()
    with pytest.raises(DesignError, match="_designs/s1.json: sweep 's1' was run here with another definition"):
        sweep(root, "params:\n  loss.focal.gamma: {choices: [0.5, 2.0]}\npruner: none\n", "b.db")
    assert (root / "_designs" / "s1.json").read_bytes() == summary
    assert (root / "s1-t000" / "config.yaml").read_bytes() == config


def test_an_existing_trial_record_of_another_config_is_not_reused(tmp_path):
    root = tmp_path / "experiments"
    make_record(root, "base")
    space = "params:\n  training.lr: {low: 1.0e-3, high: 5.0e-3}\npruner: none\n"
    sweep(root, space, "a.db")
    (root / "_designs" / "s1.json").unlink()            # as if the first sweep had not finished its summary
    config = (root / "s1-t000" / "config.yaml").read_bytes()
    with pytest.raises(DesignError, match="s1-t000: exists with another config than this trial's"):
        sweep(root, space.replace("5.0e-3", "9.0e-3"), "b.db")
    assert (root / "s1-t000" / "config.yaml").read_bytes() == config


def test_sweep_status_on_a_missing_database_creates_nothing(tmp_path):
    db = tmp_path / "missing.db"
    line = one_line_error(["exp", "sweep-status", "s1", "--storage", f"sqlite:///{db}"])
    assert f"no such database file {db}" in line
    assert not db.exists()
