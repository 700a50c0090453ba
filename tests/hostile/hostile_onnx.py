"""A hand-built ONNX graph with evdet's input / output names (milliseconds to build, no export needed)."""

import json
from pathlib import Path

import onnx
from onnx import TensorProto, helper

FRAME = (2, 4, 4)          # channels, height, width: 32 values per item
ANCHORS, CLASSES = 4, 8    # cls_logits = the frame reshaped to (batch, 4, 8)


def metadata(**changes) -> dict:
    """evdet's metadata of that graph (8 classes, no recurrent states), with ``changes`` applied."""
    meta = {"format_version": 1, "class_names": [f"c{i}" for i in range(CLASSES)], "input_hw": list(FRAME[1:]),
            "in_channels": FRAME[0], "representation": "stacked_histogram_dt=50_nbins=1",
            "head": {"conf_threshold": 0.1, "nms_iou": 0.45, "max_detections": 10},
            "state_names": [], "state_shapes": []}
    meta.update(changes)
    return meta


def write_model(path: Path, meta_text: str | None) -> Path:
    """An ONNX file whose 'evdet' metadata entry is ``meta_text`` (None: no entry)."""
    shape = helper.make_tensor("shape", TensorProto.INT64, [3], [-1, ANCHORS, CLASSES])
    nodes = [helper.make_node("Reshape", ["frame", "shape"], ["cls_logits"]),
             helper.make_node("ReduceSum", ["cls_logits"], ["obj_logits"], axes=[2], keepdims=0),
             helper.make_node("Slice", ["cls_logits", "starts", "ends", "axes"], ["boxes"])]
    inits = [shape, helper.make_tensor("starts", TensorProto.INT64, [1], [0]),
             helper.make_tensor("ends", TensorProto.INT64, [1], [4]),
             helper.make_tensor("axes", TensorProto.INT64, [1], [2])]
    graph = helper.make_graph(
        nodes, "tiny", [helper.make_tensor_value_info("frame", TensorProto.FLOAT, ["batch", *FRAME])],
        [helper.make_tensor_value_info("boxes", TensorProto.FLOAT, ["batch", ANCHORS, 4]),
         helper.make_tensor_value_info("obj_logits", TensorProto.FLOAT, ["batch", ANCHORS]),
         helper.make_tensor_value_info("cls_logits", TensorProto.FLOAT, ["batch", ANCHORS, CLASSES])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 12)])
    model.ir_version = 8
    if meta_text is not None:
        helper.set_model_props(model, {"evdet": meta_text})
    onnx.save(model, str(path))
    return path


def write_with_meta(path: Path, **changes) -> Path:
    return write_model(path, json.dumps(metadata(**changes)))
