import json
import math
from pathlib import Path

import pytest

from evdet.experiments.analysis.compare import (IncomparableError, compare_experiments, curve_series, plot_curves)
from evdet.experiments.records.metric_keys import UnknownMetricError, metric_value
from evdet.experiments.analysis.rank import rank_experiments
from evdet.experiments.records.record import list_experiments, load_experiment

from exp_fixtures import make_experiment, make_seeded_experiment, protocol_block


def _by_id(rows):
    return {r.id: r for r in rows}


def test_rank_by_ap_order_and_deltas(three_runs: Path):
    rows = rank_experiments(list_experiments(three_runs), "AP")
    assert [(r.rank, r.id) for r in rows] == [(1, "sizeaware"), (2, "baseline"), (3, "fourscale")]
    r = _by_id(rows)
    assert r["sizeaware"].delta == pytest.approx(0.33 - 0.30)
    assert r["fourscale"].delta == pytest.approx(0.28 - 0.30)
    assert r["baseline"].delta is None and r["baseline"].baseline_id is None
    assert r["fourscale"].architecture == "tiny p4 FPN[1,2,3,4]"
    assert r["sizeaware"].architecture == "tiny p4 FPN[2,3,4] sizeaware a=2.5"
    assert all(not row.flags for row in rows)


def test_rank_by_size_and_group_metrics(three_runs: Path):
    rows = rank_experiments(list_experiments(three_runs), "AP_S")
    assert [r.id for r in rows] == ["sizeaware", "fourscale", "baseline"]
    assert _by_id(rows)["fourscale"].delta == pytest.approx(0.12 - 0.10)
    rows = rank_experiments(list_experiments(three_runs), "small_AP")   # small_road_users group AP
    assert [r.id for r in rows] == ["sizeaware", "fourscale", "baseline"]
    assert _by_id(rows)["sizeaware"].delta == pytest.approx(0.21 - 0.15)
    rows = rank_experiments(list_experiments(three_runs), "per_class.car.AP")
    assert [r.id for r in rows] == ["baseline", "sizeaware", "fourscale"]


def test_rank_with_explicit_baseline(three_runs: Path):
    r = _by_id(rank_experiments(list_experiments(three_runs), "prophesee/AP", baseline="fourscale"))
    assert r["sizeaware"].delta == pytest.approx(0.05)
    assert r["baseline"].delta == pytest.approx(0.02)
    assert r["fourscale"].delta is None


def test_rank_loss_like_metric_ascending(three_runs: Path):
    make_experiment(three_runs, "zz", protocols={"prophesee": protocol_block(0.1, 0.1, {})})
    rows = rank_experiments(list_experiments(three_runs), "monitors.loss_cv")
    assert all(r.value == pytest.approx(0.2) for r in rows)
    assert [r.id for r in rows] == sorted(r.id for r in rows)   # ties broken by id


def test_rank_loss_like_metric_ascending_with_distinct_values(three_runs: Path):
    for exp_id, cv in (("baseline", 0.5), ("sizeaware", 0.1), ("fourscale", 0.3)):
        p = three_runs / exp_id / "results.json"
        doc = json.loads(p.read_text())
        doc["monitors"]["loss_cv"] = cv
        p.write_text(json.dumps(doc))
    rows = rank_experiments(list_experiments(three_runs), "monitors.loss_cv")
    assert [(r.rank, r.id, r.value) for r in rows] == [(1, "sizeaware", 0.1), (2, "fourscale", 0.3),
                                                       (3, "baseline", 0.5)]
    assert _by_id(rows)["sizeaware"].delta == pytest.approx(0.1 - 0.5)


def test_rank_unknown_metric_names_the_known_ones(three_runs: Path):
    with pytest.raises(UnknownMetricError, match=r"unknown metric 'APZ'; metrics here: AP, AP50"):
        rank_experiments(list_experiments(three_runs), "APZ")


def test_rank_lists_broken_records_unranked(three_runs: Path):
    (three_runs / "sizeaware" / "status.json").write_text("{")
    rows = rank_experiments(list_experiments(three_runs, on_error="mark"), "AP")
    assert [(r.rank, r.id) for r in rows] == [(1, "baseline"), (2, "fourscale"), (None, "sizeaware")]
    assert "broken record" in rows[-1].flags[0] and "status.json" in rows[-1].flags[0]


def test_compare_marks_deltas_within_noise(tmp_path: Path):
    root = tmp_path / "exps"
    make_seeded_experiment(root, "base", {0: (0.30, 0.10), 1: (0.32, 0.12), 2: (0.31, 0.11)})
    make_seeded_experiment(root, "var", {3: (0.40, 0.11), 4: (0.42, 0.10), 5: (0.41, 0.12)}, base="base")
    c = compare_experiments([load_experiment(root, "base"), load_experiment(root, "var")])
    rows = {r.name: r for r in c.metrics + c.sizes}
    assert rows["AP"].within_noise(1) is False and rows["AP_S"].within_noise(1) is True
    assert rows["AP"].intervals[1].method == "welch-t over seeds" and rows["AP"].within_noise(0) is None


def test_rank_flags_fingerprint_mismatch_and_missing(three_runs: Path):
    make_experiment(three_runs, "otherproto", base="baseline", protocols={"prophesee": protocol_block(
        0.40, 0.2, {"pedestrian": 0.3, "car": 0.6, "bicycle": 0.3}, digest="e" * 40)})
    make_experiment(three_runs, "notrun", state="created", protocols={})
    rows = rank_experiments(list_experiments(three_runs), "AP")
    r = _by_id(rows)
    assert r["otherproto"].rank == 1
    assert any("fingerprints differ" in f for f in r["otherproto"].flags)
    assert any("differs from most runs" in f for f in r["otherproto"].flags)
    assert rows[-1].id == "notrun" and rows[-1].rank is None and rows[-1].value is None
    assert not r["sizeaware"].flags


def test_compare_deltas(three_runs: Path):
    exps = [load_experiment(three_runs, i) for i in ("baseline", "sizeaware")]
    c = compare_experiments(exps)
    assert c.protocol == "prophesee" and c.problems == []
    metrics = {row.name: row for row in c.metrics}
    assert metrics["AP"].values == [0.30, 0.33] and metrics["AP"].deltas[1] == pytest.approx(0.03)
    sizes = {row.name: row for row in c.sizes}
    assert sizes["AP_S"].deltas == [pytest.approx(0.0), pytest.approx(0.06)]
    pc = {row.name: row for row in c.per_class}
    assert pc["pedestrian"].deltas[1] == pytest.approx(0.06) and pc["pedestrian"].support == 10
    assert pc["car"].deltas[1] == pytest.approx(-0.01)
    assert pc["bicycle"].deltas[1] == pytest.approx(0.05) and pc["bicycle"].support == 30
    assert {g.name for g in c.groups} == {"small_road_users"}


def test_compare_refuses_fingerprint_mismatch(three_runs: Path):
    make_experiment(three_runs, "otherproto", protocols={"prophesee": protocol_block(
        0.40, 0.2, {"pedestrian": 0.3, "car": 0.6, "bicycle": 0.3}, digest="e" * 40)})
    exps = [load_experiment(three_runs, i) for i in ("baseline", "otherproto")]
    with pytest.raises(IncomparableError, match="fingerprints differ"):
        compare_experiments(exps)
    c = compare_experiments(exps, allow_mismatch=True)
    assert len(c.problems) == 1 and "fingerprints differ" in c.problems[0]


def test_compare_refuses_class_map_mismatch(three_runs: Path):
    names = ["car", "pedestrian", "bicycle"]
    make_experiment(three_runs, "remapped", class_names=names, protocols={"prophesee": protocol_block(
        0.4, 0.2, {n: 0.3 for n in names}, class_names=names)})
    exps = [load_experiment(three_runs, i) for i in ("baseline", "remapped")]
    with pytest.raises(IncomparableError, match="class maps differ"):
        compare_experiments(exps)


def test_compare_refuses_missing_protocol(three_runs: Path):
    exps = [load_experiment(three_runs, i) for i in ("baseline", "sizeaware")]
    with pytest.raises(IncomparableError, match="no results under protocol 'full'"):
        compare_experiments(exps, protocol="full")


def test_curves_from_csv_and_png(three_runs: Path, tmp_path: Path):
    exps = [load_experiment(three_runs, i) for i in ("baseline", "sizeaware", "fourscale")]
    assert curve_series(exps[0], "loss", "prophesee") == ([10, 20, 30], [5.0, 4.0, 3.5])
    assert curve_series(exps[1], "AP", "prophesee") == ([20], [0.28])
    assert curve_series(exps[2], "loss", "prophesee") is None
    png = plot_curves(exps, tmp_path / "curves.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_metric_value_paths(three_runs: Path):
    res = load_experiment(three_runs, "sizeaware").results
    assert metric_value(res, "AP") == 0.33
    assert metric_value(res, "prophesee/per_class.bicycle.AP") == 0.25
    assert metric_value(res, "groups.small_road_users.AP") == 0.21
    assert metric_value(res, "full/AP") is None
    assert metric_value(res, "per_class.unknown.AP") is None
    assert metric_value(res, "step") == 1000.0


def test_curves_fall_back_to_results_json(tmp_path: Path):
    root = tmp_path / "exps"
    d = make_experiment(root, "nocsv", protocols={"prophesee": protocol_block(0.1, 0.1, {})})
    res = json.loads((d / "results.json").read_text())
    res["curves"] = {"train/loss": {"step": [1, 2], "value": [3.0, None]},
                     "val/prophesee/AP": {"step": [2], "value": [0.1]}}
    (d / "results.json").write_text(json.dumps(res))
    e = load_experiment(root, "nocsv")
    steps, values = curve_series(e, "loss", "prophesee")
    assert steps == [1, 2] and values[0] == 3.0 and math.isnan(values[1])
    assert curve_series(e, "AP", "prophesee") == ([2], [0.1])
