"""The small-object matrix on a miniature plan: records with seeds, resume, results with intervals."""

import json
from dataclasses import replace

import numpy as np
import pytest
from typer.testing import CliRunner

from evdet.cli import app
from evdet.experiments.records.record import load_experiment
from evdet.experiments.records.run_config import load_run_config
from evdet.studies.matrix import record_commands, run_matrix
from evdet.studies.matrix_results import filter_effect
from evdet.studies.study_plan import MatrixError, make_plan

BASELINE_ID = "baseline_3scale"           # the small-object study's baseline (configs/studies/small_objects.yaml)


def _mini_plan():
    plan = make_plan("cpu", seeds=[0, 1], max_steps=2, variants=["resolution_first"])
    return replace(plan, sensor_hw=(144, 256), sequences=3, duration_s=1.6, preprocess_workers=1)


@pytest.fixture(scope="module")
def matrix_dir(tmp_path_factory):
    work = tmp_path_factory.mktemp("matrix")
    messages = []
    path = run_matrix(_mini_plan(), work / "work", work / "out", one_command="evdet exp matrix (test)",
                      echo=messages.append, progress=False)
    return work, path, messages


@pytest.mark.slow
def test_records_have_seeds_and_the_variant_changes_only_its_input(matrix_dir):
    work, _, _ = matrix_dir
    root = work / "work" / "experiments"
    base = load_run_config([root / BASELINE_ID / "config.yaml"], use_default=False)
    res = load_run_config([root / "resolution_first" / "config.yaml"], use_default=False)
    assert base.seeds == res.seeds == (0, 1)
    assert base.model == res.model and base.loss == res.loss and base.training == res.training
    assert base.data.root.endswith("input") and res.data.root.endswith("input_full")
    for exp_id, hw in ((BASELINE_ID, [72, 128]), ("resolution_first", [144, 256])):
        results = json.loads((root / exp_id / "results.json").read_text())
        assert results["status"] == "completed" and results["seeds"] == [0, 1]
        assert {r["status"] for r in results["runs"].values()} == {"completed"}
        assert set(results["protocols"]) == {"prophesee", "full"}
        assert results["protocols"]["full"]["fingerprint"]["resolution"] == hw


@pytest.mark.slow
def test_results_table_and_report(matrix_dir):
    work, path, _ = matrix_dir
    text = path.read_text()
    assert "| `baseline_3scale` |" in text and "| `resolution_first` |" in text
    assert "2/2" in text                                   # seeds done / planned
    assert "What the Prophesee filter hides" in text
    summary = json.loads((work / "out" / "results.json").read_text())
    row = next(r for r in summary["rows"] if r["id"] == "resolution_first")
    # one pool (the matrix's records): two records of two seeds give Student's two-sample t-interval,
    # and every door (verdict, rank, compare) asks the same policy, so it is the only Δ interval
    delta = row["protocols"]["full"]["delta_small"]
    assert delta["method"] == "t over seeds, variance pooled over records" and delta["covers_training_noise"]
    holm = row["protocols"]["full"]["delta_small_holm"]     # a family of one: Holm = the unadjusted p
    assert holm["family_size"] == 1 and holm["p_holm"] == pytest.approx(holm["p"])
    from scipy import stats

    from evdet.experiments.records.record import load_experiment
    from evdet.experiments.statistics.intervals import seed_values
    root = work / "work" / "experiments"
    a, b = (seed_values(load_experiment(root, vid), "full/small_AP") for vid in (BASELINE_ID, "resolution_first"))
    assert row["protocols"]["full"]["small_AP_seeds"] == b
    pooled = delta
    if np.std(a) + np.std(b) > 0:
        ci = stats.ttest_ind(b, a, equal_var=True).confidence_interval(0.95)
        assert (pooled["low"], pooled["high"]) == pytest.approx((ci.low, ci.high))
    assert pooled["mean"] == pytest.approx(np.mean(b) - np.mean(a)) and "2 degrees of freedom" in pooled["detail"]
    own = row["protocols"]["full"]["small_AP_interval"]         # mean +- t_2 * s_pooled / sqrt(2)
    half = stats.t.ppf(0.975, 2) * np.sqrt((np.var(a, ddof=1) + np.var(b, ddof=1)) / 2 / 2)
    assert (own["mean"], own["low"], own["high"]) == pytest.approx((np.mean(b), np.mean(b) - half, np.mean(b) + half))
    assert (work / "out" / "report.html").exists() and (work / "out" / "preview.png").exists()


@pytest.mark.slow
def test_rerun_skips_finished_work(matrix_dir):
    work, _, _ = matrix_dir
    messages = []
    run_matrix(_mini_plan(), work / "work", work / "out", one_command="x", echo=messages.append, progress=False)
    assert any("already generated" in m for m in messages)
    assert not any("training" in m for m in messages)


@pytest.mark.slow
def test_work_folder_of_another_plan_is_refused(matrix_dir):
    work, _, _ = matrix_dir
    with pytest.raises(MatrixError, match="max_steps"):
        run_matrix(replace(_mini_plan(), max_steps=3), work / "work", work / "out", one_command="x",
                   echo=lambda m: None, progress=False)


@pytest.mark.slow
def test_filter_effect_counts_match_the_filter_rule(matrix_dir):
    import numpy as np

    from evdet.evaluation.dataset import load_ground_truth
    work, _, _ = matrix_dir
    pre = work / "work" / "input"
    names = ["pedestrian", "car", "bicycle", "bus", "motorbike", "truck", "tram", "wheelchair"]
    effect = filter_effect(pre, "stacked_histogram_dt=50_nbins=10", names)
    boxes = np.concatenate([t.boxes for t in load_ground_truth(pre, "val", "stacked_histogram_dt=50_nbins=10").values()])
    boxes = boxes[boxes["t"] > 500_000]
    # the Prophesee rule at 128 px width: diag 60 * 128 / 1280 = 6 px, side 2 px, written out here
    small = (boxes["w"] ** 2 + boxes["h"] ** 2 < 6.0 ** 2) | (boxes["w"] < 2.0) | (boxes["h"] < 2.0)
    assert effect["all"]["boxes"] == boxes.size and effect["all"]["removed"] == int(small.sum())
    ped = boxes["class_id"] == 0
    assert effect["pedestrian"]["removed"] == int((small & ped).sum())


def test_plan_errors_and_commands():
    with pytest.raises(MatrixError, match="unknown plan"):
        make_plan("tpu")
    with pytest.raises(MatrixError, match="unknown study"):
        make_plan("cpu", study="nope")
    with pytest.raises(MatrixError, match="unknown variant"):
        make_plan("cpu", variants=["8scale"])
    plan = make_plan("gpu")
    assert plan.input_hw == (360, 640) and len(plan.variants) == 6 and plan.seeds == (0, 1, 2)
    assert plan.baseline == BASELINE_ID and plan.variant("resolution_first").full_input
    cmds = record_commands(make_plan("cpu"), __import__("pathlib").Path("w"))
    assert "--seeds 0,1,2" in cmds[BASELINE_ID] and "model.patch_size=2" in cmds["patch2_4scale"]
    assert "loss.size_aware.tau_px2=256" in cmds["3scale_sizeaware"]
    bad = CliRunner().invoke(app, ["exp", "matrix", "--plan", "tpu"])
    assert bad.exit_code == 1 and "unknown plan" in bad.output


def test_small_object_table_says_helps_only_when_the_interval_clears_zero():
    from evdet.studies.matrix_results import small_object_tables, tables_html, tables_markdown

    def interval(mean, low, high):
        return {"mean": mean, "low": low, "high": high, "method": "welch-t over seeds", "n_a": 3, "n_b": 3,
                "confidence": 0.95, "detail": ""}

    def row(vid, delta):
        block = {"small_AP": 0.1, "small_AP_interval": interval(0.1, 0.08, 0.12), "delta_small": delta}
        return {"id": vid, "change": vid, "state": "completed", "seeds_planned": [0, 1, 2],
                "seeds_done": [0, 1], "wall_s_per_run": [100.0, 300.0], "step": 800,
                "protocols": {"full": block, "prophesee": dict(block)}}

    summary = {"rows": [row(BASELINE_ID, None), row("up", interval(0.02, 0.001, 0.04)),
                        row("down", interval(-0.02, -0.04, -0.001)), row("noise", interval(0.01, -0.01, 0.03))]}
    small = small_object_tables(summary)[0][3]
    assert [r[6] for r in small] == ["", "helps", "hurts", "within noise"]     # Welch over seeds
    assert small[0][2] == "2/3" and small[0][3] == "200"          # seeds done / planned, mean s per run
    assert small[1][5] == "+0.0200 [+0.0010, +0.0400]"
    one_seed = dict(interval(0.02, 0.001, 0.04), method="paired bootstrap over sequences")
    summary["rows"][1]["protocols"]["full"]["delta_small"] = one_seed
    # a bootstrap alone sees evaluation noise only: not "helps"
    assert small_object_tables(summary)[0][3][1][6] == "beyond evaluation noise (up; training noise not measured)"
    pooled = dict(interval(-0.02, -0.04, -0.001), method="t over seeds, variance pooled over records")
    summary["rows"][1]["protocols"]["full"]["delta_small"] = pooled
    summary["rows"][1]["protocols"]["full"]["delta_small_holm"] = {"p": 0.0301, "p_holm": 0.0903, "survives": False}
    assert small_object_tables(summary)[0][3][1][5:8] == ["-0.0200 [-0.0400, -0.0010]", "hurts",
                                                          "p 0.030, Holm 0.090: does not survive"]
    md = "\n".join(tables_markdown(small_object_tables(summary)))
    assert "| `up` | up | 2/3 | 200 | 0.1000 [0.0800, 0.1200] | -0.0200" in md
    assert "<code>noise</code>" in tables_html(small_object_tables(summary))


def test_training_order_is_seed_major(tmp_path, monkeypatch):
    # records at 1, 0, 2 seeds done: every record gets its second seed before any gets its third
    import evdet.experiments.running.runner as runner
    from evdet.studies.matrix import create_records
    from evdet.studies.matrix_training import train_records

    plan = make_plan("cpu", seeds=[0, 1, 2], variants=["4scale", "3scale_sizeaware"])
    create_records(plan, tmp_path)
    root = tmp_path / "experiments"
    done = {BASELINE_ID: 1, "4scale": 0, "3scale_sizeaware": 2}
    trained = []

    def write(vid):                      # the record after done[vid] seeds, as the runner leaves it
        path = root / vid
        runs = {str(s): {"seed": s, "status": "completed" if s < done[vid] else None} for s in (0, 1, 2)}
        results = json.loads((path / "results.json").read_text())
        (path / "results.json").write_text(json.dumps({**results, "schema_version": 2, "runs": runs}))
        status = json.loads((path / "status.json").read_text())
        state = "completed" if done[vid] == 3 else "partial" if done[vid] else "created"
        (path / "status.json").write_text(json.dumps({**status, "state": state}))
        return state

    def fake_run(root_, vid, *, resume, progress, command, max_new_seeds):
        assert max_new_seeds == 1
        assert load_experiment(root_, vid).state != "completed"
        trained.append((vid, done[vid]))
        done[vid] += 1
        return {"status": write(vid)}

    for vid in done:
        write(vid)
    monkeypatch.setattr(runner, "run_experiment", fake_run)
    train_records(plan, tmp_path, echo=lambda m: None, progress=False)
    # within a seed the costlier 4-scale (cost 1.1) goes first, the rest in plan order
    assert trained == [("4scale", 0), ("4scale", 1), (BASELINE_ID, 1), ("4scale", 2), (BASELINE_ID, 2),
                       ("3scale_sizeaware", 2)]


def test_effects_plot_draws_only_with_a_delta(tmp_path):
    from PIL import Image

    from evdet.studies.matrix_plot import effects_plot

    def row(vid, delta):
        return {"id": vid, "seeds_done": [0], "protocols": {"full": {"delta_small": delta}, "prophesee": {}}}

    empty = {"rows": [row(BASELINE_ID, None), row("4scale", None)]}
    assert effects_plot(empty, tmp_path / "none.png", BASELINE_ID) is None and not (tmp_path / "none.png").exists()
    delta = {"mean": -0.02, "low": -0.04, "high": -0.001, "method": "paired bootstrap over sequences", "n_a": 12,
             "n_b": 12, "confidence": 0.95, "detail": ""}
    path = effects_plot({"rows": [row(BASELINE_ID, None), row("4scale", delta)]}, tmp_path / "e.png", BASELINE_ID)
    with Image.open(path) as im:
        assert im.format == "PNG" and im.width > 500


@pytest.mark.slow
def test_progress_line_counts_runs_and_shows_the_running_step(matrix_dir, tmp_path):
    import shutil

    from evdet.experiments.records.record import write_status
    from evdet.studies.matrix_training import progress_line

    work, _, _ = matrix_dir
    assert progress_line(_mini_plan(), work / "work") == "matrix: runs done 4/4"
    copy = tmp_path / "work"
    shutil.copytree(work / "work" / "experiments", copy / "experiments")
    results = json.loads((copy / "experiments" / BASELINE_ID / "results.json").read_text())
    results["runs"]["1"]["status"] = "running"
    (copy / "experiments" / BASELINE_ID / "results.json").write_text(json.dumps(results))
    write_status(copy / "experiments" / BASELINE_ID, "running", "training", seed=1, step=1)   # this live process
    assert progress_line(_mini_plan(), copy) == f"matrix: runs done 3/4; {BASELINE_ID} seed 1 step 1/2"
