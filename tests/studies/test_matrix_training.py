"""The matrix's training pass: a record that needs another's checkpoint waits for it, a failed record
is not retried, the others train (training replaced by a stand-in that marks the record completed)."""

from evdet.experiments.records.record import write_status


def _stand_in(trained):
    def run(root, vid, **kw):
        trained.append(vid)
        write_status(root / vid, "completed", "stand-in")
        return {"status": "completed"}
    return run


def test_a_student_waits_for_its_teachers_checkpoint_and_a_failed_record_is_skipped(tmp_path, monkeypatch):
    import evdet.experiments.running.runner as runner
    from evdet.studies.matrix import create_records
    from evdet.studies.matrix_training import train_records
    from evdet.studies.study_plan import make_plan

    plan = make_plan("cpu", study="roadmap", seeds=[0], variants=["distill", "4scale"])
    assert set(plan.variants) == {plan.baseline, "resolution_first", "distill", "4scale"}
    create_records(plan, tmp_path)
    root = tmp_path / "experiments"
    write_status(root / "4scale", "failed", "diverged at step 3")
    trained, said = [], []
    monkeypatch.setattr(runner, "run_experiment", _stand_in(trained))
    outcome = train_records(plan, tmp_path, echo=said.append, progress=False)

    # the stand-in writes no checkpoint, so the teacher never gets one: the student waits in every pass
    assert outcome["distill"] == "waiting for resolution_first"
    assert outcome["4scale"] == "failed: diverged at step 3"
    assert outcome[plan.baseline] == outcome["resolution_first"] == "completed"
    assert sorted(trained) == sorted([plan.baseline, "resolution_first"])       # each once, costliest first
    assert trained[0] == "resolution_first"
    assert "distill: waiting for resolution_first; skipped for now" in said
    assert "4scale: failed: diverged at step 3; skipped" in said
