import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from evdet.cli import app
from evdet.data.classes import ClassMap, write_dataset_yaml
from evdet.data.labels import BBOX_DTYPE, save_labels

from exp_fixtures import make_experiment, make_seeded_experiment, protocol_block

ENV = {"COLUMNS": "250", "NO_COLOR": "1"}


def _run(*args):
    return CliRunner().invoke(app, [str(a) for a in args], env=ENV)


def test_exp_new_with_presets_overrides_and_base(tmp_path: Path):
    root = tmp_path / "exps"
    r = _run("exp", "new", "base1", "--root", root, "--hypothesis", "baseline run", "-c", "demo",
             "training.max_steps=7")
    assert r.exit_code == 0, r.output
    cfg = yaml.safe_load((root / "base1" / "config.yaml").read_text())
    assert cfg["model"]["preset"] == "nano" and cfg["training"]["max_steps"] == 7 and cfg["name"] == "base1"
    assert "exp new base1" in (root / "base1" / "command.txt").read_text()
    hyp = tmp_path / "h.md"
    hyp.write_text("# v\n\n## Success criteria\n- full/AP_S >= base + 0.02\n")
    r = _run("exp", "new", "v1", "model.in_stages=[1,2,3,4]", "loss.size_aware.alpha=2.5", "--root", root,
             "--hypothesis", hyp, "--base", "base1")
    assert r.exit_code == 0, r.output
    cfg = yaml.safe_load((root / "v1" / "config.yaml").read_text())
    assert cfg["model"]["in_stages"] == [1, 2, 3, 4] and cfg["loss"]["size_aware"]["alpha"] == 2.5
    assert cfg["training"]["max_steps"] == 7 and cfg["model"]["preset"] == "nano"   # inherited from base
    assert (root / "v1" / "hypothesis.md").read_text() == hyp.read_text()
    assert json.loads((root / "v1" / "results.json").read_text())["base"] == "base1"
    # diff of the two records: two experimental changes, highest risk first
    r = _run("exp", "diff", "base1", "v1", "--root", root)
    assert r.exit_code == 0, r.output
    assert r.output.index("loss.size_aware.alpha") < r.output.index("name")
    assert "confounded: 2 changes" in r.output
    # errors: unknown key names it, duplicate id, missing base
    r = _run("exp", "new", "v2", "model.nope=1", "--root", root, "--hypothesis", "x")
    assert r.exit_code == 1 and "model.nope" in r.output and not (root / "v2").exists()
    r = _run("exp", "new", "v1", "--root", root, "--hypothesis", "x")
    assert r.exit_code == 1 and "already exists" in r.output
    r = _run("exp", "new", "v3", "--root", root, "--hypothesis", "x", "--base", "ghost")
    assert r.exit_code == 1 and "ghost" in r.output


@pytest.fixture
def cli_root(three_runs: Path) -> Path:
    make_experiment(three_runs, "otherproto", protocols={"prophesee": protocol_block(
        0.40, 0.2, {"pedestrian": 0.3, "car": 0.6, "bicycle": 0.3}, digest="e" * 40)})
    return three_runs


def test_list_rank_compare_verdict_report(cli_root: Path, tmp_path: Path):
    r = _run("exp", "list", "--root", cli_root)
    assert r.exit_code == 0 and "tiny p4 FPN[2,3,4] sizeaware a=2.5" in r.output and "completed" in r.output
    r = _run("exp", "rank", "--by", "AP", "--root", cli_root)
    assert r.exit_code == 0, r.output
    pos = [r.output.index(f"│ {i} ") for i in ("otherproto", "sizeaware", "baseline", "fourscale")]
    assert pos == sorted(pos) and "+0.0300" in r.output and "-0.0200" in r.output
    r = _run("exp", "compare", "baseline", "otherproto", "--root", cli_root)
    assert r.exit_code == 1 and "fingerprints differ" in r.output and "--allow-mismatch" in r.output
    r = _run("exp", "compare", "baseline", "otherproto", "--allow-mismatch", "--root", cli_root)
    assert r.exit_code == 0 and "NOT COMPARABLE" in r.output
    png = tmp_path / "c.png"
    r = _run("exp", "compare", "baseline", "sizeaware", "--plot", png, "--root", cli_root)
    assert r.exit_code == 0 and "+0.0600" in r.output and png.read_bytes()[:4] == b"\x89PNG"
    r = _run("exp", "verdict", "sizeaware", "--root", cli_root)    # one seed each, no saved detections
    assert r.exit_code == 0 and "sizeaware: inconclusive" in r.output and "no interval" in r.output
    r = _run("exp", "verdict", "baseline", "--root", cli_root)
    assert r.exit_code == 1 and "no criteria" in r.output
    r = _run("exp", "report", "baseline", "sizeaware", "--root", cli_root)
    assert r.exit_code == 0 and (cli_root / "baseline" / "report.html").exists() is False
    assert (cli_root / "report.html").read_text().startswith("<!DOCTYPE html>")
    r = _run("exp", "compare", "baseline", "ghost", "--root", cli_root)
    assert r.exit_code == 1 and "ghost" in r.output


def test_analyze_command(cli_root: Path, tmp_path: Path):
    data = tmp_path / "raw"
    (data / "train").mkdir(parents=True)
    write_dataset_yaml(data, ClassMap(names=("pedestrian", "car", "bicycle")), resolution=[720, 1280])
    boxes = np.zeros(3, dtype=BBOX_DTYPE)
    boxes["w"], boxes["h"], boxes["class_id"] = [20, 200, 40], [60, 100, 40], [0, 1, 2]
    save_labels(data / "train" / "s_bbox.npy", boxes)
    out = tmp_path / "a.json"
    r = _run("analyze", data, "--results", "baseline", "--root", cli_root, "--input-size", "640x360",
             "--json", out, "--plot", tmp_path / "h.png")
    assert r.exit_code == 0, r.output
    a = json.loads(out.read_text())
    assert a["classes"]["car"]["area_px2"]["P50"] == pytest.approx(100 * 50)
    assert a["input_hw"] == [360, 640]                       # WIDTHxHEIGHT, as every size option
    assert a["classes"]["car"]["AP"] == 0.5
    assert (tmp_path / "h.png").read_bytes()[:4] == b"\x89PNG"
    r = _run("analyze", data, "--input-size", "big")
    assert r.exit_code == 1 and "--input-size 'big': expected WIDTHxHEIGHT" in r.output


def test_exp_new_records_seeds(tmp_path: Path):
    root = tmp_path / "exps"
    r = _run("exp", "new", "s3", "--root", root, "--hypothesis", "h", "-c", "demo", "--seeds", "0,1,2")
    assert r.exit_code == 0, r.output
    cfg = yaml.safe_load((root / "s3" / "config.yaml").read_text())
    assert cfg["seeds"] == [0, 1, 2] and "--seeds 0,1,2" in (root / "s3" / "command.txt").read_text()
    r = _run("exp", "new", "v", "--root", root, "--hypothesis", "h", "--base", "s3")
    assert r.exit_code == 0 and yaml.safe_load((root / "v" / "config.yaml").read_text())["seeds"] == [0, 1, 2]
    r = _run("exp", "new", "bad", "--root", root, "--hypothesis", "h", "--seeds", "0,x")
    assert r.exit_code == 1 and "--seeds '0,x'" in r.output and not (root / "bad").exists()
    r = _run("exp", "new", "dup", "--root", root, "--hypothesis", "h", "--seeds", "1,1")
    assert r.exit_code == 1 and "repeats a seed" in r.output


def test_list_and_rank_show_the_others_when_one_record_is_corrupt(cli_root: Path):
    (cli_root / "fourscale" / "results.json").write_text("{truncated")
    r = _run("exp", "list", "--root", cli_root)
    assert r.exit_code == 0, r.output
    assert "sizeaware" in r.output and "otherproto" in r.output
    assert "broken" in r.output and "fourscale" in r.output and "invalid JSON" in r.output
    r = _run("exp", "rank", "--by", "AP", "--root", cli_root)
    assert r.exit_code == 0, r.output
    assert "│ 1    │ otherproto" in r.output and "broken record" in r.output


def test_rank_by_unknown_metric_lists_the_metrics(cli_root: Path):
    r = _run("exp", "rank", "--by", "APx", "--root", cli_root)
    assert r.exit_code == 1 and "unknown metric 'APx'" in r.output
    for name in ("AP50", "AP_S", "small_AP", "monitors.loss_cv", "pedestrian", "prophesee/"):
        assert name in r.output, name
    r = _run("exp", "rank", "--by", "per_class.bus.AP", "--root", cli_root)
    assert r.exit_code == 1 and "classes: bicycle, car, pedestrian" in r.output


def test_rank_compare_verdict_show_intervals_over_seeds(tmp_path: Path):
    root = tmp_path / "exps"
    make_seeded_experiment(root, "base", {0: (0.30, 0.10), 1: (0.32, 0.12), 2: (0.31, 0.11)})
    make_seeded_experiment(root, "same", {3: (0.31, 0.11), 4: (0.30, 0.10), 5: (0.32, 0.12)}, base="base",
                           hypothesis="## Success criteria\n- AP >= base + 0.01\n")
    make_seeded_experiment(root, "better", {6: (0.40, 0.2), 7: (0.42, 0.2), 8: (0.41, 0.2)}, base="base")
    r = _run("exp", "rank", "--by", "AP", "--root", root)
    assert r.exit_code == 0, r.output
    rows = {line.split("│")[2].strip(): line for line in r.output.splitlines() if line.count("│") > 5}
    assert "beyond noise" in rows["better"] and "within noise" in rows["same"] and "welch-t" in rows["same"]
    assert "[+0.0773, +0.1227]" in rows["better"]       # 0.1 -+ t(0.975, 4) * sqrt(2 * 0.01^2 / 3)
    r = _run("exp", "compare", "base", "same", "better", "--root", root)
    assert r.exit_code == 0, r.output
    ap = next(line for line in r.output.splitlines() if line.startswith("│ AP "))
    assert "within noise" in ap and "beyond noise" in ap and "welch-t over seeds" in ap
    r = _run("exp", "rank", "--by", "AP", "--no-intervals", "--root", root)
    assert r.exit_code == 0 and "welch-t" not in r.output and "+0.1000" in r.output
    r = _run("exp", "verdict", "same", "--root", root)
    assert r.exit_code == 0, r.output
    line = r.output.splitlines()[1]
    assert line.split()[0] == "inconclusive" and "welch-t over seeds (n=3/3)" in line and "[" in line
