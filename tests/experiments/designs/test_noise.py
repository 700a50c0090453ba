"""evdet exp noise: the A/A record of one recipe and the noise profile it leaves."""

import json

import numpy as np
import pytest

from evdet.experiments.designs.noise import measure_noise
from evdet.experiments.records.record import RecordError, atomic_write_json, load_experiment, write_status
from evdet.experiments.statistics.intervals import save_validation_detections
from evdet.experiments.statistics.noise_profile import load_profile
from tests.experiments.statistics.test_intervals import EVAL_KWARGS, _detections, _ground_truth

SEED_AP = {0: 0.11, 1: 0.14, 2: 0.08, 3: 0.12}


def fake_run(root, exp_id, **kwargs):
    """Fills every seed run as the runner would: per-seed results and saved validation detections."""
    exp = load_experiment(root, exp_id)
    rng = np.random.default_rng(0)
    gts = [_ground_truth(rng, 4) for _ in range(2)]
    runs = {}
    for i, seed in enumerate(exp.config["seeds"]):
        rel = "." if i == 0 else f"seeds/seed_{seed}"
        save_validation_detections(exp.path / rel / "validation" / "detections.npz", ["a", "b"], gts,
                                   [_detections(rng, g, 0.5) for g in gts], EVAL_KWARGS)
        runs[str(seed)] = {"seed": seed, "dir": rel, "status": "completed",
                           "protocols": {"full": {"metrics": {"AP": SEED_AP[seed]},
                                                  "groups": {"small_road_users": {"AP": SEED_AP[seed] / 2}}}}}
    atomic_write_json(exp.path / "results.json", dict(exp.results, schema_version=2, runs=runs, status="completed"))
    write_status(exp.path, "completed", "fake")


def test_measure_noise_writes_the_seed_sd_of_every_metric(tmp_path, monkeypatch):
    import evdet.experiments.running.runner as runner

    monkeypatch.setattr(runner, "run_experiment", fake_run)
    path = measure_noise(tmp_path, "demo", ["demo"], ["data.root=/nowhere"], [0, 1, 2, 3])
    assert path == tmp_path / "_noise" / "demo.json"
    prof = load_profile(path)
    assert prof.seeds == (0, 1, 2, 3) and prof.n == 4
    assert prof.sd("full/AP", None) == pytest.approx(np.std(list(SEED_AP.values()), ddof=1))
    assert prof.sd("small_AP", "full") == pytest.approx(np.std([v / 2 for v in SEED_AP.values()], ddof=1))
    cfg = json.loads(path.read_text())["config"]
    assert "data.root" not in cfg and "seeds" not in cfg and cfg["model.preset"] == "nano"
    with pytest.raises(RecordError, match="not \\[0, 1\\]"):     # the record holds other seeds
        measure_noise(tmp_path, "demo", ["demo"], ["data.root=/nowhere"], [0, 1])


def test_a_profile_over_several_records_counts_each_seed_once(tmp_path, monkeypatch):
    import evdet.experiments.running.runner as runner
    from evdet.experiments.statistics.noise_profile import ProfileError, build_profile

    monkeypatch.setattr(runner, "run_experiment", fake_run)
    measure_noise(tmp_path, "demo", ["demo"], ["data.root=/nowhere"], [0, 1, 2, 3])
    exp = load_experiment(tmp_path, "noise_demo")
    with pytest.raises(ProfileError, match="a seed appears twice"):
        build_profile([exp, exp], "twice")
