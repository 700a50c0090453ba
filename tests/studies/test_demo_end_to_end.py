"""The whole loop on a miniature generated dataset: simulate, preprocess, train two experiments,
evaluate, rank, report; then the train / eval / predict commands on the same data."""

import html
import json

import numpy as np
import pytest
from typer.testing import CliRunner

from evdet.cli import app
from evdet.data.labels import BBOX_DTYPE, load_labels
from evdet.studies.demo import BASELINE_ID, VARIANT_ID, DemoSettings, run_demo
from evdet.experiments.records.run_config import load_run_config

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    settings = DemoSettings(resolution=(72, 128), sequences=3, duration_s=1.6, max_steps=3, val_every_n_steps=3)
    messages = []
    report = run_demo(out, settings, echo=messages.append)
    return out, report, messages


def test_demo_writes_two_completed_records_and_a_report(demo_dir):
    out, report, messages = demo_dir
    assert report.exists() and report.read_text().lstrip().startswith("<!DOCTYPE html>")
    assert [m.split("] ", 1)[1][:3] for m in messages[:5]] == ["1/5", "2/5", "3/5", "4/5", "5/5"]
    for exp_id in (BASELINE_ID, VARIANT_ID):
        results = json.loads((out / "experiments" / exp_id / "results.json").read_text())
        assert results["status"] == "completed" and results["step"] == 3
        assert set(results["protocols"]) == {"prophesee", "full"}
        for block in results["protocols"].values():   # every metric travels with its protocol
            assert block["fingerprint"]["resolution"] == [72, 128]
            assert len(block["fingerprint"]["digest"]) == 40
    variant = load_run_config([out / "experiments" / VARIANT_ID / "config.yaml"], use_default=False)
    baseline = load_run_config([out / "experiments" / BASELINE_ID / "config.yaml"], use_default=False)
    assert variant.loss.size_aware.alpha == 2.5 and variant.loss.size_aware.tau_px2 == 256
    assert variant.data == baseline.data and variant.model == baseline.model   # one change: the loss


def test_demo_report_leads_with_small_road_users_and_says_its_verdicts(demo_dir):
    out, report, messages = demo_dir
    html = report.read_text()
    lead = html.find("Small road users")
    assert 0 < lead < html.find("<h2>", html.find("</section>"))      # before every report section
    assert "What the Prophesee filter hides" in html[:html.find("</section>")]
    verdicts = [m for m in messages if m.strip().startswith(f"{VARIANT_ID}:")]
    assert verdicts and verdicts[0].split(":", 1)[1].strip() in ("supported", "rejected", "inconclusive")
    assert any("full/small_AP" in m and VARIANT_ID in m for m in messages)   # one line per criterion


def test_demo_results_file_holds_its_numbers_with_provenance(demo_dir):
    out, report, _ = demo_dir
    doc = json.loads((out / "results.json").read_text())
    assert {"commit", "machine", "date", "command"} <= set(doc["provenance"])
    base = json.loads((out / "experiments" / BASELINE_ID / "results.json").read_text())
    assert doc["records"][BASELINE_ID]["full"]["AP"] == base["protocols"]["full"]["metrics"]["AP"]
    delta = doc["small_road_users"][VARIANT_ID]["full"]["delta"]
    # a test dataset matches no shipped profile: one seed, evaluation noise only, and the report says so
    if delta["low"] is not None:
        assert delta["covers_training_noise"] is False and "evaluation noise only" in doc["interval_note"]
        assert html.escape(doc["interval_note"], quote=False) in report.read_text()
    decisions = {c["decision"] for c in doc["verdicts"][VARIANT_ID]["criteria"]}
    assert decisions <= {"inconclusive"}   # no interval covers training noise here


def test_demo_resumes_without_redoing_work(demo_dir):
    out, _, _ = demo_dir
    messages = []
    settings = DemoSettings(resolution=(72, 128), sequences=3, duration_s=1.6, max_steps=3, val_every_n_steps=3)
    run_demo(out, settings, echo=messages.append)
    assert "already in" in messages[0]
    assert sum("already trained" in m for m in messages) == 2


def test_eval_and_predict_commands_on_a_trained_checkpoint(demo_dir, tmp_path):
    out, _, _ = demo_dir
    ckpt = out / "experiments" / BASELINE_ID / "checkpoints" / "last.ckpt"
    runner = CliRunner()
    r = runner.invoke(app, ["eval", str(ckpt), f"data={out / 'preprocessed'}", "protocol=full",
                            "--out", str(tmp_path / "eval")])
    assert r.exit_code == 0, r.output
    metrics = json.loads((tmp_path / "eval" / "full_metrics.json").read_text())
    assert metrics["protocol"] == "full" and "AP" in metrics["metrics"]

    recording = sorted((out / "raw" / "test").glob("*_td.h5"))[0]
    r = runner.invoke(app, ["predict", str(ckpt), str(recording), "--out", str(tmp_path / "pred"),
                            "--conf", "0", "--min-score", "0"])
    assert r.exit_code == 0, r.output
    stem = recording.name.removesuffix("_td.h5")
    boxes = load_labels(tmp_path / "pred" / f"{stem}_bbox.npy")
    assert boxes.dtype == BBOX_DTYPE and boxes.size > 0
    assert (tmp_path / "pred" / f"{stem}_strip.png").stat().st_size > 0
    assert np.all(np.diff(boxes["t"]) >= 0) and np.all(boxes["t"] % 50_000 == boxes["t"][0] % 50_000)
    # RVT's post-processing (the default) does not clip boxes to the frame: finite, positive sizes only
    assert np.all(np.isfinite(boxes["x"])) and np.all(boxes["w"] > 0) and np.all(boxes["h"] > 0)
    assert np.all(boxes["x"] + boxes["w"] > 0) and np.all(boxes["x"] < 128)       # each box overlaps the frame


def test_cli_errors_are_one_line(demo_dir, tmp_path):
    out, _, _ = demo_dir
    ckpt = out / "experiments" / BASELINE_ID / "checkpoints" / "last.ckpt"
    r = CliRunner().invoke(app, ["eval", str(ckpt), "protocol=full"])
    assert r.exit_code == 1 and "data=DIR" in r.output
    r = CliRunner().invoke(app, ["train", "data=/nonexistent", "model.no_such_key=1", "--root", str(tmp_path)])
    assert r.exit_code == 1 and "no_such_key" in r.output


def test_predict_on_a_sensor_twice_the_input_scales_boxes_exactly(demo_dir, tmp_path):
    """Events moved to pixel (2x+1, 2y+1) of a 2x sensor give the same ds2_nearest histograms, so the
    detections must be exactly the original ones scaled by 2."""
    from evdet.events import read_events, write_events_h5
    from evdet.training.predict import load_module, predict_recording

    out, _, _ = demo_dir
    module = load_module(out / "experiments" / BASELINE_ID / "checkpoints" / "last.ckpt")
    recording = sorted((out / "raw" / "test").glob("*_td.h5"))[0]
    ev = read_events(recording)
    big = ev.copy()
    big["x"], big["y"] = ev["x"] * 2 + 1, ev["y"] * 2 + 1
    write_events_h5(tmp_path / "big_td.h5", big, height=144, width=256)

    small, info_small = predict_recording(module, recording, conf_threshold=0.0, progress=False)
    large, info_large = predict_recording(module, tmp_path / "big_td.h5", conf_threshold=0.0, progress=False)
    assert info_small["downsample"] == "none" and info_large["downsample"] == "ds2_nearest"
    assert small.size > 0 and np.array_equal(small["t"], large["t"])
    for field in ("x", "y", "w", "h"):
        np.testing.assert_allclose(large[field], 2 * small[field], rtol=1e-5, atol=1e-3)
    np.testing.assert_array_equal(large["class_id"], small["class_id"])
