"""One run lock per record: the runner, the matrix and the designs exclude each other on one record."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from design_fixtures import make_record

from evdet.experiments.records.record import load_experiment, write_status
from evdet.experiments.records.record_lock import RUN_LOCK, RecordBusy

# A process that waits for <go>, then starts `evdet exp run <id>`; its training is a 2 s stand-in
# that leaves a mark named by its pid (so the test counts who trained).
STARTER = """
import os, sys, time
from pathlib import Path
import evdet.experiments.running.runner as runner
from evdet.cli import app
from evdet.experiments.records.record import atomic_write_json, write_status
root, exp_id, go, marks = sys.argv[1:5]

def stand_in(exp_dir, cfg, seeds, results, **kw):
    (Path(marks) / str(os.getpid())).touch()
    time.sleep(2.0)
    results.update(status="completed", step=1)
    atomic_write_json(exp_dir / "results.json", results)
    write_status(exp_dir, "completed", "stand-in")
    return results

runner._train_seeds = stand_in
while not Path(go).exists():
    time.sleep(0.005)
app(["exp", "run", exp_id, "--root", root], prog_name="evdet")
"""


@pytest.mark.slow
def test_two_simultaneous_starts_exactly_one_trains(tmp_path: Path):
    root, go, marks = tmp_path / "exps", tmp_path / "go", tmp_path / "marks"
    marks.mkdir()
    make_record(root, "same")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    procs = [subprocess.Popen([sys.executable, "-c", STARTER, str(root), "same", str(go), str(marks)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
             for _ in range(2)]
    time.sleep(4.0)                                    # both imported and waiting
    go.touch()
    outs = [p.communicate(timeout=60) for p in procs]
    trained = [int(m.name) for m in marks.iterdir()]
    assert len(trained) == 1
    winner = next(i for i, p in enumerate(procs) if p.pid == trained[0])
    loser = 1 - winner
    assert procs[winner].returncode == 0 and "same: completed" in outs[winner][0]
    assert procs[loser].returncode == 1
    message = outs[loser][1].strip()
    assert "\n" not in message and f"record same is held by process {trained[0]}" in message
    assert load_experiment(root, "same").state == "completed"
    assert not (root / "same" / RUN_LOCK).exists()


HOLDER = """
import sys, time
from pathlib import Path
from evdet.experiments.records.record_lock import RecordLock
lock = RecordLock(Path(sys.argv[1])).acquire()
print("held", flush=True)
while not Path(sys.argv[2]).exists():
    time.sleep(0.01)
lock.release()
"""


def _hold(exp_dir: Path, release: Path) -> subprocess.Popen:
    p = subprocess.Popen([sys.executable, "-c", HOLDER, str(exp_dir), str(release)], stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "held"
    return p


def test_a_record_held_elsewhere_is_refused_by_the_runner_and_skipped_by_the_matrix(tmp_path, monkeypatch):
    import evdet.experiments.running.runner as runner
    from evdet.studies.matrix import create_records
    from evdet.studies.matrix_training import train_records
    from evdet.studies.study_plan import make_plan

    plan = make_plan("cpu", seeds=[0], variants=["4scale"])
    BASELINE_ID = plan.baseline
    create_records(plan, tmp_path)
    root = tmp_path / "experiments"
    trained = []

    def stand_in(root_, vid, **kw):
        trained.append(vid)
        write_status(root_ / vid, "completed", "stand-in")
        return {"status": "completed"}

    holder = _hold(root / BASELINE_ID, tmp_path / "release")             # e.g. a design worker
    try:
        with pytest.raises(RecordBusy, match=rf"record {BASELINE_ID} is held by process {holder.pid}"):
            runner.run_experiment(root, BASELINE_ID)
        before = json.loads((root / BASELINE_ID / "results.json").read_text())
        monkeypatch.setattr(runner, "run_experiment", stand_in)
        outcome = train_records(plan, tmp_path, echo=lambda m: None, progress=False)
        assert outcome[BASELINE_ID] == "running in another process" and trained == ["4scale"]
        assert json.loads((root / BASELINE_ID / "results.json").read_text()) == before   # nothing written
    finally:
        (tmp_path / "release").touch()
        holder.wait(timeout=30)
    train_records(plan, tmp_path, echo=lambda m: None, progress=False)   # released: now it trains
    assert trained == ["4scale", BASELINE_ID]


def test_a_design_worker_waits_for_the_record_a_matrix_worker_holds(tmp_path, monkeypatch):
    import threading

    import evdet.experiments.running.runner as runner
    from evdet.experiments.running.executors import run_record

    exp_dir = make_record(tmp_path, "r")
    calls = []
    monkeypatch.setattr(runner, "run_experiment", lambda *a, **k: calls.append(a))
    holder = _hold(exp_dir, tmp_path / "release")      # another process holds it, as a matrix worker does
    done = threading.Event()

    def design_worker():
        run_record(tmp_path, "r", poll_s=0.05)
        done.set()

    t = threading.Thread(target=design_worker, daemon=True)
    t.start()
    time.sleep(0.5)
    assert not done.is_set() and calls == []           # waiting: it did not start the record
    write_status(exp_dir, "completed", "trained by the holder")
    (tmp_path / "release").touch()
    holder.wait(timeout=30)
    t.join(timeout=10)
    assert done.is_set() and calls == []               # finished elsewhere: not trained again
