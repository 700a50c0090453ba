import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from evdet.experiments.records.record import (RecordError, atomic_write_json, create_experiment, heartbeat,
                                       list_experiments, load_experiment, load_results, read_metrics_csv,
                                       read_status, write_status)


def _new(root: Path, exp_id: str = "exp1", **kw) -> Path:
    return create_experiment(root, exp_id, "model: {preset: tiny}\n", "Size-aware loss helps bicycles.", **kw)


def test_create_writes_full_layout(tmp_path: Path):
    d = _new(tmp_path, base="baseline", command="evdet exp new exp1", class_names=("a", "b"))
    for name in ("hypothesis.md", "config.yaml", "command.txt", "status.json", "results.json"):
        assert (d / name).is_file(), name
    for sub in ("checkpoints", "logs", "confusion_matrices", "validation"):
        assert (d / sub).is_dir(), sub
    res = json.loads((d / "results.json").read_text())
    assert res == {"schema_version": 2, "id": "exp1", "status": "created", "base": "baseline",
                   "class_names": ["a", "b"], "step": 0, "seeds": [], "runs": {}, "seed_stats": {},
                   "protocols": {}, "curves": {}, "monitors": {}}
    hyp = (d / "hypothesis.md").read_text()
    for section in ("## Question", "## Hypothesis", "## Rationale", "## Success criteria", "## Risks"):
        assert section in hyp
    assert "Size-aware loss helps bicycles." in hyp
    assert read_status(d)["state"] == "created"
    assert not [p for p in d.rglob("*.tmp")]


def test_hypothesis_with_sections_kept_verbatim(tmp_path: Path):
    text = "# x\n\n## Success criteria\n- prophesee/AP >= 0.3\n"
    d = create_experiment(tmp_path, "x", "{}\n", text)
    assert (d / "hypothesis.md").read_text() == text


def test_duplicate_and_bad_ids_refused(tmp_path: Path):
    _new(tmp_path)
    with pytest.raises(RecordError, match="already exists"):
        _new(tmp_path)
    for bad in ("", "../up", "a b", "-x"):
        with pytest.raises(RecordError, match="experiment id"):
            _new(tmp_path, bad)


def test_running_with_dead_pid_is_killed(tmp_path: Path):
    d = _new(tmp_path)
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    write_status(d, "running", "training", pid=proc.pid)
    st = read_status(d)
    assert st["state"] == "killed" and str(proc.pid) in st["detected"]
    # reading does not rewrite the record
    assert json.loads((d / "status.json").read_text())["state"] == "running"


def test_running_with_stale_heartbeat_is_killed(tmp_path: Path):
    d = _new(tmp_path)
    write_status(d, "running", "training", host="another-host")  # pid cannot be checked from here
    t0 = json.loads((d / "status.json").read_text())["heartbeat_at"]
    assert read_status(d, stale_after_s=60, now=t0 + 59)["state"] == "running"
    st = read_status(d, stale_after_s=60, now=t0 + 61)
    assert st["state"] == "killed" and "heartbeat" in st["detected"]
    write_status(d, "running", "training")  # this host, live pid: running however old the heartbeat
    assert read_status(d, stale_after_s=60, now=t0 + 1e6)["state"] == "running"
    heartbeat(d, step=5)
    doc = json.loads((d / "status.json").read_text())
    assert doc["step"] == 5 and doc["heartbeat_at"] >= t0


def test_running_alive_and_finished_states_untouched(tmp_path: Path):
    d = _new(tmp_path)
    write_status(d, "running", "training")
    assert read_status(d)["state"] == "running"
    write_status(d, "completed", "done", stop_reason=None)
    st = read_status(d, now=time.time() + 1e6)
    assert st["state"] == "completed" and st["started_at"] is not None
    with pytest.raises(RecordError, match="state"):
        write_status(d, "exploded")


def test_status_with_bad_state_names_file(tmp_path: Path):
    d = _new(tmp_path)
    (d / "status.json").write_text('{"state": "weird"}')
    with pytest.raises(RecordError, match="status.json.*state"):
        read_status(d)


def test_load_results_validates_schema(tmp_path: Path):
    p = tmp_path / "results.json"
    p.write_text(json.dumps({"schema_version": 3, "id": "x", "protocols": {}}))
    with pytest.raises(RecordError, match="schema_version"):
        load_results(p)
    p.write_text(json.dumps({"schema_version": 2, "id": "x", "protocols": {}, "runs": []}))
    with pytest.raises(RecordError, match="'runs' must be an object"):
        load_results(p)
    p.write_text(json.dumps({"schema_version": 1, "id": "x", "protocols": {"full": {}}}))
    with pytest.raises(RecordError, match="protocols.full.metrics"):
        load_results(p)
    p.write_text("{not json")
    with pytest.raises(RecordError, match="invalid JSON"):
        load_results(p)


def test_atomic_json_nan_as_null(tmp_path: Path):
    p = atomic_write_json(tmp_path / "a.json", {"x": float("nan"), "y": [1.5, float("inf")]})
    assert json.loads(p.read_text()) == {"x": None, "y": [1.5, None]}


def test_read_metrics_csv_sparse_rows(tmp_path: Path):
    p = tmp_path / "metrics.csv"
    p.write_text("epoch,step,train/loss,val/prophesee/AP\n0,9,2.5,\n0,19,2.0,\n0,19,,0.125\n")
    curves = read_metrics_csv(p)
    assert curves["train/loss"] == ([9, 19], [2.5, 2.0])
    assert curves["val/prophesee/AP"] == ([19], [0.125])
    assert "epoch" not in curves
    p.write_text("epoch,train/loss\n0,1\n")
    with pytest.raises(RecordError, match="step"):
        read_metrics_csv(p)


def test_list_and_load(tmp_path: Path):
    _new(tmp_path, "b")
    _new(tmp_path, "a")
    (tmp_path / "not_an_experiment").mkdir()
    ids = [e.id for e in list_experiments(tmp_path)]
    assert ids == ["a", "b"]
    with pytest.raises(RecordError, match="no such experiment"):
        load_experiment(tmp_path, "zzz")
    assert list_experiments(tmp_path / "missing") == []
    assert os.getpid() == load_experiment(tmp_path, "a").status["pid"]


def test_schema1_results_still_read(tmp_path: Path):
    p = tmp_path / "results.json"
    p.write_text(json.dumps({"schema_version": 1, "id": "x", "protocols": {"full": {"metrics": {"AP": 0.2}}}}))
    doc = load_results(p)
    assert doc["protocols"]["full"]["metrics"]["AP"] == 0.2
    assert (doc["seeds"], doc["runs"], doc["seed_stats"]) == ([], {}, {})


@pytest.mark.parametrize("name,content,needle", [
    ("results.json", "{truncated", "invalid JSON"),
    ("results.json", '{"schema_version": 1, "id": "b", "protocols": []}', "'protocols' must be an object"),
    ("status.json", '{"state": "exploded"}', "field 'state'"),
    ("status.json", "[1, 2]", "top level must be an object"),
    ("config.yaml", "model: [unclosed", "invalid YAML"),
    ("config.yaml", b"model: \xff\xfe", "not UTF-8"),
    ("config.yaml", "- a list", "top level must be a mapping")])
def test_one_corrupt_record_is_listed_as_broken(tmp_path: Path, name, content, needle):
    for exp_id in ("a", "b", "c"):
        _new(tmp_path, exp_id)
    target = tmp_path / "b" / name
    target.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(RecordError, match=needle):
        list_experiments(tmp_path)
    exps = list_experiments(tmp_path, on_error="mark")
    assert [(e.id, e.state) for e in exps] == [("a", "created"), ("b", "broken"), ("c", "created")]
    assert str(target) in exps[1].error and needle in exps[1].error
