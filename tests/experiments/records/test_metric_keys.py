"""The metric-key grammar over the typed views: the same answers from a raw document and its view,
held / undefined / absent kept apart, and the scalar leaves the seed aggregation averages."""

import pytest

from evdet.experiments.records.metric_keys import (UnknownMetricError, available_metrics, check_metric,
                                                   fingerprint_digest, has_metric, headline_protocol, metric_value,
                                                   scalar_leaves)
from evdet.experiments.records.views import ProtocolView, ResultsView

DOC = {"step": 120, "monitors": {"loss_cv": 0.25, "stopped_reason": "DivergenceStop"},
       "protocols": {
           "prophesee": {"metrics": {"AP": 0.3, "AP50": 0.5, "AP_S": None},
                         "per_class": {"car": {"AP": 0.4, "AP50": 0.6, "support": 7, "tp": 3},
                                       "traffic.light": {"AP": 0.2}},
                         "groups": {"small_road_users": {"AP": 0.1, "AP50": None, "support": 2, "classes": ["p"]}},
                         "fingerprint": {"digest": "d1"}, "counts": {"gt": 9}},
           "full": {"metrics": {"AP": 0.35}}}}


@pytest.mark.parametrize("key, expected", [
    ("AP", 0.3), ("prophesee/AP", 0.3), ("full/AP", 0.35), ("metrics.AP50", 0.5),
    ("small_AP", 0.1), ("groups.small_road_users.AP", 0.1), ("per_class.car.AP50", 0.6),
    ("per_class.car.support", 7.0), ("per_class.traffic.light.AP", 0.2), ("counts.gt", 9.0),
    ("step", 120.0), ("monitors.loss_cv", 0.25),
    ("AP_S", None), ("full/AP50", None), ("per_class.bus.AP", None), ("monitors.stopped_reason", None),
    ("nope/AP", None), ("fingerprint.digest", None)])
def test_a_document_and_its_view_give_the_same_value(key, expected):
    assert metric_value(DOC, key) == expected
    assert metric_value(ResultsView.from_dict(DOC), key) == expected


def test_held_but_undefined_is_not_absent():
    assert has_metric(DOC, "AP_S") and metric_value(DOC, "AP_S") is None
    assert has_metric(DOC, "groups.small_road_users.AP50")
    assert not has_metric(DOC, "per_class.car.recall")          # the entry has no recall field
    assert not has_metric(DOC, "full/small_AP") and has_metric(DOC, "monitors.stopped_reason")
    assert has_metric({}, "step")


def test_headline_digest_and_available_keys():
    assert headline_protocol(DOC) == "prophesee" and headline_protocol({}) is None
    assert fingerprint_digest(DOC, "prophesee") == "d1" and fingerprint_digest(DOC, "full") is None
    keys = available_metrics(DOC)
    assert keys[:4] == ["prophesee/AP", "prophesee/AP50", "prophesee/AP_S", "prophesee/small_AP"]
    assert "prophesee/per_class.car.AP" in keys and "prophesee/per_class.car.support" not in keys
    assert "full/AP" in keys and "monitors.loss_cv" in keys and "monitors.stopped_reason" not in keys


def test_scalar_leaves_are_metrics_then_class_and_group_fields_present():
    leaves = scalar_leaves(ProtocolView.from_dict(DOC["protocols"]["prophesee"]))
    assert leaves == {"AP": 0.3, "AP50": 0.5, "AP_S": None, "per_class.car.AP": 0.4, "per_class.car.AP50": 0.6,
                      "per_class.traffic.light.AP": 0.2, "groups.small_road_users.AP": 0.1,
                      "groups.small_road_users.AP50": None}


def test_an_unknown_metric_lists_what_exists():
    check_metric("AP", [DOC, {}])
    with pytest.raises(UnknownMetricError, match=r"\(classes: car, traffic\.light\), .*\(groups: small_road_users\)"):
        check_metric("mAP", [DOC])
