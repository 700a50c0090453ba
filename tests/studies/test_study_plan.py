"""Studies as data: the study files load, every variant's overrides are valid config, placeholders resolve."""

import json
from pathlib import Path

import pytest

from evdet.experiments.records.run_config import load_run_config
from evdet.studies.matrix import _variant_overrides, create_records
from evdet.studies.matrix_training import record_checkpoint, train_records
from evdet.studies.study_plan import STUDIES_DIR, MatrixError, make_plan


@pytest.mark.parametrize("study", sorted(p.stem for p in STUDIES_DIR.glob("*.yaml")))
@pytest.mark.parametrize("plan_name", ["cpu", "gpu"])
def test_every_variant_of_every_study_is_a_valid_config(study, plan_name, tmp_path):
    plan = make_plan(plan_name, study=study)
    assert plan.variants[0] == plan.baseline and len(set(plan.variants)) == len(plan.variants)
    base = load_run_config(plan.recipes, [f"data.root={tmp_path}"])
    for vid in plan.variants:
        overrides = _variant_overrides(plan.variant(vid), plan, tmp_path)
        assert not any("{" in o for o in overrides), (vid, overrides)
        cfg = load_run_config(plan.recipes, [f"data.root={tmp_path}", *overrides])   # unknown keys would raise
        if vid != plan.baseline:
            assert cfg != base, f"{study}/{vid} changes nothing"


def test_roadmap_baseline_keeps_rvt_semantics_at_cpu_scale(tmp_path):
    plan = make_plan("cpu", study="roadmap")
    cfg = load_run_config(plan.recipes, [f"data.root={tmp_path}"])
    # the scale is the CPU plan's ...
    assert (cfg.model.preset, cfg.data.batch_size, cfg.training.max_steps) == ("nano", 4, 800)
    # ... the rest is RVT's (recipes/rvt_etram8)
    assert cfg.data.augment.stream_zoom_out_prob == 0.5 and cfg.data.augment.zoom_resample == "nearest-exact"
    assert cfg.data.empty_label_frames == "skip" and cfg.model.head.conf_threshold == 0.001
    assert cfg.model.head.max_detections is None and cfg.training.div_factor == 20.0


def test_placeholders_combinations_and_subsets():
    plan = make_plan("cpu", study="roadmap")
    assert plan.substitute("loss.size_aware.tau_px2={tau_px2}") == "loss.size_aware.tau_px2=256"
    assert plan.substitute("x={small_px2}") == "x=256"
    with pytest.raises(MatrixError, match="'nope'"):
        plan.substitute("x={nope}")
    peer = plan.variant("peer_optimal")
    assert peer.full_input and set(peer.combines) == {"4scale", "size_aware", "resolution_first"}
    # a chosen variant brings the baseline and the record whose checkpoint it needs
    sub = make_plan("cpu", study="roadmap", variants=["distill"])
    assert sub.variants == ("baseline", "resolution_first", "distill")
    with pytest.raises(MatrixError, match="unknown variant"):
        make_plan("cpu", study="roadmap", variants=["warp_drive"])


def test_a_student_waits_for_its_teacher(tmp_path, monkeypatch):
    import evdet.experiments.running.runner as runner

    plan = make_plan("cpu", study="roadmap", seeds=[0], variants=["distill"])
    create_records(plan, tmp_path)
    root = tmp_path / "experiments"
    student = load_run_config([root / "distill" / "config.yaml"], use_default=False)
    assert Path(student.training.distill.teacher_ckpt) == record_checkpoint(tmp_path, "resolution_first")
    trained = []

    def stand_in(root_, vid, **kw):          # a run as the runner leaves it: one completed seed, a checkpoint
        trained.append(vid)
        path = root_ / vid
        results = json.loads((path / "results.json").read_text())
        results["runs"] = {"0": {"seed": 0, "status": "completed"}}
        (path / "results.json").write_text(json.dumps({**results, "schema_version": 2}))
        status = json.loads((path / "status.json").read_text())
        (path / "status.json").write_text(json.dumps({**status, "state": "completed"}))
        (path / "checkpoints").mkdir(exist_ok=True)
        (path / "checkpoints" / "last.ckpt").write_bytes(b"")
        return {"status": "completed"}

    monkeypatch.setattr(runner, "run_experiment", stand_in)
    messages = []
    train_records(plan, tmp_path, echo=messages.append, progress=False)
    # resolution_first is the costliest and trains first, so the student finds its teacher in pass 1
    assert trained.index("resolution_first") < trained.index("distill")
    assert sorted(trained) == ["baseline", "distill", "resolution_first"]
