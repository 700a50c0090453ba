"""`predict model.onnx` with edited or foreign metadata: one line naming the file and the field."""

import json

import numpy as np
import pytest

from evdet.deploy.onnx_runtime import OnnxDetector
from hostile_files import one_line_error
from hostile_onnx import CLASSES, metadata, write_model, write_with_meta


def test_unedited_model_loads_and_detects(tmp_path):
    det = OnnxDetector(write_with_meta(tmp_path / "ok.onnx"))
    assert det.class_names == tuple(f"c{i}" for i in range(CLASSES)) and det.input_hw == (4, 4)
    dets, _ = det.detect(np.ones((1, 2, 4, 4), np.float32))
    assert dets[0].shape[1] == 7 and dets[0][:, 5].max() < CLASSES


@pytest.mark.parametrize("text, expected", [
    ("{not json", "metadata 'evdet' is not valid JSON"),
    (json.dumps([1, 2]), "metadata 'evdet' must be a JSON object, got a list"),
    (json.dumps({k: v for k, v in metadata().items() if k != "class_names"}),
     "metadata 'class_names' must be a non-empty list of class names (missing)"),
    (json.dumps(metadata(class_names="car")), "metadata 'class_names' must be a non-empty list"),
    (json.dumps(metadata(input_hw=[4])), "metadata 'input_hw' must be [height, width]"),
    (json.dumps(metadata(head=[])), "metadata 'head' must be"),
    (json.dumps(metadata(state_names=["h1"])), "metadata 'state_shapes' must be 1 shapes"),
    (json.dumps(metadata(input_hw=[8, 8])), "metadata in_channels / input_hw [2, 8, 8] do not match the graph's "
                                            "frame input (batch, 2, 4, 4)"),
    (json.dumps(metadata(class_names=["car"])), "metadata names 1 class but the model outputs 8"),
    (json.dumps(metadata(state_names=["h1"], state_shapes=[[1, 1, 1]])), "the graph has no 'h1'"),
])
def test_edited_metadata_is_refused_naming_the_file(tmp_path, text, expected):
    path = write_model(tmp_path / "edited.onnx", text)
    with pytest.raises(ValueError) as err:
        OnnxDetector(path)
    assert str(err.value).startswith(f"{path}: ") and expected in str(err.value), err.value


def test_predict_cli_says_it_in_one_line(tmp_path):
    path = write_with_meta(tmp_path / "one_class.onnx", class_names=["car"])
    line = one_line_error(["predict", path, tmp_path / "rec.h5", "--out", tmp_path / "out"])
    assert f"{path}: metadata names 1 class but the model outputs 8" in line
    assert not (tmp_path / "out").exists()
    missing = write_model(tmp_path / "foreign.onnx", None)
    assert "metadata key 'evdet' missing" in one_line_error(["predict", missing, tmp_path / "rec.h5"])
