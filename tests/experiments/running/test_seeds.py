"""Multi-seed experiments with real (tiny) training: per-seed runs, aggregation, resume, determinism."""

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import stats
from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "training"))

from tiny_dataset import REPR_NAME, make_tiny_dataset  # noqa: E402

from evdet.cli import app  # noqa: E402
from evdet.experiments.statistics.intervals import load_validation_detections  # noqa: E402
from evdet.experiments.records.new import new_experiment  # noqa: E402
from evdet.experiments.records.record import read_metrics_csv, read_status, write_status  # noqa: E402
from evdet.experiments.running.runner import AlreadyCompleted, run_experiment  # noqa: E402


def _overrides(data_root: Path) -> list[str]:
    return [f"data.root={data_root}", f"data.representation={REPR_NAME}", "data.sampling=mixed", "data.seq_len=2",
            "data.batch_size=2", "data.eval_batch_size=2", "data.num_workers=0", "model.preset=nano",
            "model.partition_split=1", "model.head.conf_threshold=0.01", "model.head.max_detections=20",
            "training.max_steps=2", "training.val_every_n_steps=2", "training.log_every_n_steps=1",
            "training.loggers=[csv]", "training.accelerator=cpu"]


@pytest.fixture(scope="module")
def seeded(tmp_path_factory):
    """Record 'two' trained with seeds [0, 1] (2 steps each) on a tiny RVT-layout dataset."""
    tmp = tmp_path_factory.mktemp("seeds")
    data = make_tiny_dataset(tmp / "data", lengths={"train": [11, 7, 9], "val": [24, 16]})
    root = tmp / "exps"
    new_experiment(root, "two", "h", overrides=[*_overrides(data), "seeds=[0,1]"])
    run_experiment(root, "two", progress=False)
    return root


def _read(path: Path) -> dict:
    return json.loads(path.read_text())


def test_multi_seed_record_keeps_every_seed_and_the_statistics(seeded: Path):
    d = seeded / "two"
    res = _read(d / "results.json")
    assert res["schema_version"] == 2 and res["status"] == "completed" and res["seeds"] == [0, 1]
    assert [res["runs"][k]["dir"] for k in ("0", "1")] == [".", "seeds/seed_1"]
    for run_dir in (d, d / "seeds" / "seed_1"):
        assert (run_dir / "checkpoints" / "last.ckpt").exists() and (run_dir / "logs" / "metrics.csv").exists()
        data = load_validation_detections(run_dir / "validation" / "detections.npz")
        assert data.names == ("seq_val_0", "seq_val_1") and data.eval_kwargs["height"] == 64
    assert _read(d / "seeds" / "seed_1" / "environment.json")["seed"] == 1
    for proto in ("prophesee", "full"):
        assert set(res["seed_stats"]["protocols"][proto]) >= {"AP", "AP50", "per_class.car.AP"}
    # monitors: mean, std and t-interval over the two seeds, from the per-seed values
    cv = [res["runs"][k]["monitors"]["loss_cv"] for k in ("0", "1")]
    st = res["seed_stats"]["monitors"]["loss_cv"]
    assert st["values"] == cv and st["mean"] == pytest.approx(np.mean(cv)) == res["monitors"]["loss_cv"]
    low, high = stats.t.interval(0.95, 1, loc=np.mean(cv), scale=stats.sem(cv))
    assert (st["low"], st["high"]) == pytest.approx((low, high)) and st["std"] == pytest.approx(np.std(cv, ddof=1))


def test_completed_resume_leaves_the_record_byte_identical(seeded: Path):
    d = seeded / "two"
    before = {n: (d / n).read_bytes() for n in ("results.json", "status.json", "command.txt")}
    with pytest.raises(AlreadyCompleted, match="nothing to resume, results.json left unchanged"):
        run_experiment(seeded, "two", resume=True)
    r = CliRunner().invoke(app, ["exp", "run", "two", "--resume", "--root", str(seeded)])
    assert r.exit_code == 0 and "already completed" in r.output
    r = CliRunner().invoke(app, ["train", "--name", "two", "--resume", "--root", str(seeded)])
    assert "results.json left unchanged" in r.output
    assert {n: (d / n).read_bytes() for n in before} == before


@pytest.fixture(scope="module")
def resumed(seeded: Path, tmp_path_factory):
    """A copy of 'two' as a kill during seed 1 leaves it, resumed; returns (root, run dirs fit was called on)."""
    root = tmp_path_factory.mktemp("killed")
    shutil.copytree(seeded / "two", root / "two")
    d = root / "two"
    shutil.rmtree(d / "seeds")
    res = _read(d / "results.json")
    res["runs"]["1"] = {"seed": 1, "dir": "seeds/seed_1", "status": "running"}
    res["status"] = "running"
    (d / "results.json").write_text(json.dumps(res))
    write_status(d, "killed", "simulated kill during seed 1")
    calls = []
    from evdet.training import fit as fit_mod   # run_experiment imports fit from here at call time

    original = fit_mod.fit

    def spy(*args, **kwargs):
        calls.append(Path(args[4]))
        return original(*args, **kwargs)

    fit_mod.fit = spy
    try:
        with pytest.raises(Exception, match="pass --resume"):
            run_experiment(root, "two")
        partial = run_experiment(root, "two", resume=True, max_new_seeds=0)      # seed-major matrices
        assert partial["status"] == "partial" and read_status(d)["state"] == "partial" and not calls
        assert _read(d / "results.json")["runs"]["1"] == res["runs"]["1"]      # nothing added for seed 1
        run_experiment(root, "two", resume=True, progress=False)
    finally:
        fit_mod.fit = original
    return root, calls


def test_a_record_whose_seeds_all_finished_is_completed_on_resume(seeded: Path, tmp_path: Path):
    """Killed after the last seed finished but before status.json said so: resume only closes the record."""
    shutil.copytree(seeded / "two", tmp_path / "two")
    write_status(tmp_path / "two", "killed", "simulated kill after the last seed")
    res = run_experiment(tmp_path, "two", resume=True)
    assert res["status"] == "completed" and read_status(tmp_path / "two")["state"] == "completed"
    assert res["protocols"] == _read(seeded / "two" / "results.json")["protocols"]


def test_killed_multi_seed_run_resumes_at_the_unfinished_seed(seeded: Path, resumed):
    root, calls = resumed
    d = root / "two"
    assert calls == [d / "seeds" / "seed_1"]                  # seed 0 was not trained again
    assert (d / "checkpoints" / "last.ckpt").read_bytes() == (seeded / "two" / "checkpoints" / "last.ckpt").read_bytes()
    res = _read(d / "results.json")
    assert res["status"] == "completed" and read_status(d)["state"] == "completed"
    assert [res["runs"][k]["status"] for k in ("0", "1")] == ["completed", "completed"]


def test_same_seed_on_the_same_machine_gives_identical_losses_and_metrics(seeded: Path, resumed):
    """Seed 1 trained again (after the simulated kill) repeats the uninterrupted run exactly."""
    root, _ = resumed
    first = read_metrics_csv(seeded / "two" / "seeds" / "seed_1" / "logs" / "metrics.csv")
    again = read_metrics_csv(root / "two" / "seeds" / "seed_1" / "logs" / "metrics.csv")
    assert first["train/loss"][1] and first["train/loss"] == again["train/loss"]
    a, b = _read(seeded / "two" / "results.json"), _read(root / "two" / "results.json")
    for proto in ("prophesee", "full"):
        assert a["runs"]["1"]["protocols"][proto]["metrics"] == b["runs"]["1"]["protocols"][proto]["metrics"]
        assert a["runs"]["1"]["protocols"][proto]["counts"] == b["runs"]["1"]["protocols"][proto]["counts"]
    assert a["seed_stats"]["protocols"] == b["seed_stats"]["protocols"]
    da = load_validation_detections(seeded / "two" / "seeds" / "seed_1" / "validation" / "detections.npz")
    db = load_validation_detections(root / "two" / "seeds" / "seed_1" / "validation" / "detections.npz")
    for x, y in zip(da.dts + da.gts, db.dts + db.gts):
        np.testing.assert_array_equal(x, y)


def test_sigterm_leaves_a_killed_record_that_resumes(tmp_path):
    # Lightning turns SIGTERM into SIGTERMException at the next step: an interruption, not a failure
    import lightning as L
    from lightning.pytorch.utilities.exceptions import SIGTERMException

    class Term(L.Callback):
        def on_train_batch_end(self, trainer, *args):
            if trainer.global_step == 3:             # after the step-2 validation and checkpoint
                raise SIGTERMException()

    data = make_tiny_dataset(tmp_path / "data", lengths={"train": [11, 7, 9], "val": [24, 16]})
    new_experiment(tmp_path / "exps", "t", "h", overrides=[*_overrides(data), "training.max_steps=4"])
    with pytest.raises(SIGTERMException):
        run_experiment(tmp_path / "exps", "t", progress=False, extra_callbacks=[Term()])
    st = read_status(tmp_path / "exps" / "t")
    assert st["state"] == "killed" and "SIGTERM" in st["message"]
    assert run_experiment(tmp_path / "exps", "t", resume=True, progress=False)["status"] == "completed"
