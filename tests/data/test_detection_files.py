"""Detection files: class probability in class_confidence (RVT), obj x cls named; round trip."""

import numpy as np

from evdet.data.detection_files import DETECTION_FILE_DTYPE, read_detections, save_detections
from evdet.data.labels import DETECTION_DTYPE, load_labels


def _dets():
    d = np.zeros(2, dtype=DETECTION_DTYPE)
    d["t"], d["x"], d["w"], d["h"], d["class_id"] = 1_000_000, [1, 5], 4, 4, [0, 1]
    d["class_confidence"] = [0.45, 0.40]   # obj x cls: the first box leads
    d["class_score"] = [0.5, 0.8]          # class probability: the second box leads (RVT's ranking)
    return d


def test_file_holds_class_probability_as_the_score_and_names_obj_x_cls(tmp_path):
    path = save_detections(tmp_path / "s_bbox.npy", _dets())
    raw = np.load(path)
    assert raw.dtype == DETECTION_FILE_DTYPE
    np.testing.assert_allclose(raw["class_confidence"], [0.5, 0.8])
    np.testing.assert_allclose(raw["obj_x_cls"], [0.45, 0.40])
    # an outside reader that knows only the Prophesee fields ranks by the class probability, as RVT
    outside = load_labels(path)
    assert outside["class_confidence"].argmax() == 1


def test_round_trip_restores_the_in_memory_form(tmp_path):
    back = read_detections(save_detections(tmp_path / "s_bbox.npy", _dets()))
    assert back.dtype == DETECTION_DTYPE
    np.testing.assert_allclose(back["class_confidence"], [0.45, 0.40])
    np.testing.assert_allclose(back["class_score"], [0.5, 0.8])
