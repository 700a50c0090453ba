"""Box filter thresholds and protocol fingerprints."""

import numpy as np
import pytest

from evdet.evaluation import PROTOCOLS, fingerprint, get_protocol
from evdet.evaluation.filters import prophesee_filter, prophesee_thresholds
from evdet.evaluation.protocols import fingerprint_digest

from eval_boxes import boxes


@pytest.mark.parametrize("hw, expected", [((720, 1280), (60, 20)), ((360, 640), (30, 10)), ((240, 304), (30, 10)),
                                          ((540, 960), (45, 15))])
def test_prophesee_thresholds(hw, expected):
    diag, side, rule = prophesee_thresholds(*hw)
    assert (diag, side) == pytest.approx(expected)
    assert rule == ("scaled width/1280" if hw == (540, 960) else "reference")


def test_filter_rule_at_640x360():
    b = boxes(
        (500_000, 0, 0, 50, 50, 0),      # t not > 0.5 s
        (500_001, 0, 0, 50, 50, 0),      # kept
        (600_000, 0, 0, 9.9, 50, 0),     # w < 10
        (600_000, 0, 0, 50, 9.9, 0),     # h < 10
        (600_000, 0, 0, 20, 20, 0),      # diag 28.3 < 30
        (600_000, 0, 0, 18, 24, 0),      # diag exactly 30, sides >= 10: kept
    )
    kept = prophesee_filter(360, 640).keep_mask(b)
    np.testing.assert_array_equal(kept, [False, True, False, False, False, True])


def test_unknown_protocol_names_known_ones():
    with pytest.raises(ValueError, match="prophesee"):
        get_protocol("coco-ish")


def test_fingerprint_stable_and_distinct():
    names = ["car", "pedestrian"]
    a = fingerprint(PROTOCOLS["prophesee"], names, 360, 640, (720, 1280))
    b = fingerprint(PROTOCOLS["prophesee"], list(names), 360, 640, (720, 1280))
    assert a == b and len(a["digest"]) == 40
    assert a["digest"] == fingerprint_digest(a)
    others = [
        fingerprint(PROTOCOLS["full"], names, 360, 640, (720, 1280)),
        fingerprint(PROTOCOLS["etram-paper"], names, 360, 640, (720, 1280)),
        fingerprint(PROTOCOLS["prophesee"], names, 720, 1280, (720, 1280)),
        fingerprint(PROTOCOLS["prophesee"], ["pedestrian", "car"], 360, 640, (720, 1280)),
        fingerprint(PROTOCOLS["prophesee"], names, 360, 640, (720, 1280), label_rate_hz=20.0),
    ]
    digests = {a["digest"], *(o["digest"] for o in others)}
    assert len(digests) == 1 + len(others)
    assert a["filter"]["min_diag_px"] == 30 and a["filter"]["at_hw"] == [360, 640]
    assert a["class_agnostic"] is False and others[1]["class_agnostic"] is True


def test_full_buckets_stated_at_source_resolution():
    ranges = PROTOCOLS["full"].area_ranges_px2(360, 640, (720, 1280))
    # 16^2 source px^2 at 1280 wide is 8^2 evaluated px^2 at 640 wide
    assert ranges["tiny"] == (0.0, 64.0)
    assert ranges["S"] == (64.0, 256.0)
    assert ranges["M"] == (256.0, 96.0**2 / 4)
    assert PROTOCOLS["prophesee"].area_ranges_px2(360, 640, (720, 1280))["S"] == (0.0, 1024.0)
