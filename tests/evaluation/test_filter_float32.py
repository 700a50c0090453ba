"""The Prophesee box filter agrees with the reference in float32, boundary cases included."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from evdet.data.labels import BBOX_DTYPE
from evdet.evaluation.filters import prophesee_filter, prophesee_thresholds


def reference_keep(boxes: np.ndarray, skip_ts: int, min_box_diag, min_box_side) -> np.ndarray:
    """Restatement of the reference ``filter_boxes`` (Prophesee / RVT): NumPy on the float32 fields."""
    width, height = boxes["w"], boxes["h"]
    diag_square = width ** 2 + height ** 2
    return (boxes["t"] > skip_ts) * (diag_square >= min_box_diag ** 2) * (width >= min_box_side) \
        * (height >= min_box_side)


def _boxes(rows) -> np.ndarray:
    out = np.zeros(len(rows), dtype=BBOX_DTYPE)
    for i, (t, w, h) in enumerate(rows):
        out[i] = (t, 1.0, 2.0, w, h, 0, 0, 1.0)
    return out


def test_diagonal_boundary_in_float32_is_kept_at_640x360():
    side = np.float32(21.213203)
    assert float(side) ** 2 * 2 < 900.0                  # float64 would drop it
    b = _boxes([(600_000, side, side)])
    assert reference_keep(b, 500_000, 30, 10).tolist() == [True]
    assert prophesee_filter(360, 640).keep_mask(b).tolist() == [True]
    assert len(prophesee_filter(360, 640).apply(b)) == 1


def _near(threshold: float):
    """float32 values within 4 ulps of a threshold, or anywhere in [0, 3 * threshold]."""
    t32 = np.float32(threshold)
    ulps = st.integers(-4, 4).map(lambda k: float(t32 + np.float32(k) * np.spacing(t32)))
    return st.one_of(ulps, st.floats(0.0, float(np.float32(3 * threshold)), width=32))


@settings(max_examples=300, deadline=None)
@given(hw=st.sampled_from([(360, 640), (720, 1280), (240, 304), (540, 960), (180, 320)]),
       data=st.data())
def test_filter_equals_reference_restatement(hw, data):
    diag, side, _ = prophesee_thresholds(*hw)
    diag_side = diag / np.sqrt(2.0)          # w = h on the diagonal boundary
    values = st.one_of(_near(side), _near(diag_side), _near(diag))
    rows = data.draw(st.lists(st.tuples(st.sampled_from([500_000, 500_001, 2_000_000]), values, values),
                              min_size=1, max_size=20))
    b = _boxes(rows)
    expected = reference_keep(b, 500_000, diag, side)
    np.testing.assert_array_equal(prophesee_filter(*hw).keep_mask(b), expected)
