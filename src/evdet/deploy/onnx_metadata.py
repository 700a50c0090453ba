"""Read and check the metadata ``evdet export onnx`` stores in a model, against the graph it describes.

An edited or foreign file fails here with one line naming the file and the field, not later inside
ONNX Runtime or with class ids the metadata does not name.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from evdet.deploy.export import FORMAT_VERSION, HEAD_OUTPUTS, METADATA_KEY


def read_metadata(path: Path, session) -> dict[str, Any]:
    """The checked metadata of an ONNX Runtime ``session`` loaded from ``path``.

    Checks: valid JSON object, format version, every field a runtime needs with its type, the frame
    input's channels / height / width, the state inputs, and the class count of ``cls_logits``.
    Raises:
        ValueError: one line naming ``path``, the field and the problem.
    """
    text = session.get_modelmeta().custom_metadata_map.get(METADATA_KEY)
    if text is None:
        raise ValueError(f"{path}: metadata key {METADATA_KEY!r} missing (not written by evdet export onnx)")
    try:
        meta = json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: metadata {METADATA_KEY!r} is not valid JSON ({err})") from None
    if not isinstance(meta, dict):
        raise ValueError(f"{path}: metadata {METADATA_KEY!r} must be a JSON object, got a {type(meta).__name__}")
    if meta.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"{path}: metadata format_version {meta.get('format_version')} "
                         f"(this evdet reads {FORMAT_VERSION})")
    _check_fields(path, meta)
    _check_graph(path, meta, session)
    return meta


def _problem(path: Path, key: str, want: str, meta: dict) -> ValueError:
    got = "missing" if key not in meta else f"got {json.dumps(meta[key])[:80]}"
    return ValueError(f"{path}: metadata {key!r} must be {want} ({got})")


def _is_int(v: Any, low: int = 1) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= low


def _check_fields(path: Path, meta: dict) -> None:
    names = meta.get("class_names")
    if not (isinstance(names, list) and names and all(isinstance(n, str) and n for n in names)):
        raise _problem(path, "class_names", "a non-empty list of class names", meta)
    hw = meta.get("input_hw")
    if not (isinstance(hw, list) and len(hw) == 2 and all(_is_int(v) for v in hw)):
        raise _problem(path, "input_hw", "[height, width] in pixels", meta)
    if not _is_int(meta.get("in_channels")):
        raise _problem(path, "in_channels", "a positive integer", meta)
    if not isinstance(meta.get("representation"), str):
        raise _problem(path, "representation", "a representation name", meta)
    states, shapes = meta.get("state_names"), meta.get("state_shapes")
    if not (isinstance(states, list) and all(isinstance(n, str) for n in states)):
        raise _problem(path, "state_names", "a list of input names", meta)
    if not (isinstance(shapes, list) and len(shapes) == len(states)
            and all(isinstance(s, list) and all(_is_int(v) for v in s) for s in shapes)):
        raise _problem(path, "state_shapes", f"{len(states)} shapes (one per state name) of positive integers", meta)
    head = meta.get("head")
    ok = (isinstance(head, dict) and all(isinstance(head.get(k), (int, float)) and not isinstance(head.get(k), bool)
                                         for k in ("conf_threshold", "nms_iou"))
          and (head.get("max_detections") is None or _is_int(head.get("max_detections"))))
    if not ok:
        raise _problem(path, "head", "{conf_threshold, nms_iou, max_detections}", meta)


def _check_graph(path: Path, meta: dict, session) -> None:
    inputs = {i.name: i.shape for i in session.get_inputs()}
    outputs = {o.name: o.shape for o in session.get_outputs()}
    missing = [n for n in ("frame", *meta["state_names"]) if n not in inputs] + \
              [n for n in HEAD_OUTPUTS if n not in outputs]
    if missing:
        raise ValueError(f"{path}: the graph has no {missing[0]!r} named by the metadata (inputs "
                         f"{sorted(inputs)}, outputs {sorted(outputs)})")
    want = [meta["in_channels"], *meta["input_hw"]]
    got = list(inputs["frame"][1:])
    if len(got) != 3 or any(isinstance(g, int) and g != w for g, w in zip(got, want)):
        raise ValueError(f"{path}: metadata in_channels / input_hw {want} do not match the graph's frame input "
                         f"(batch, {', '.join(map(str, got))})")
    classes = outputs["cls_logits"][-1]
    if isinstance(classes, int) and classes != len(meta["class_names"]):
        n = len(meta["class_names"])
        raise ValueError(f"{path}: metadata names {n} class{'es' if n != 1 else ''} but the model outputs "
                         f"{classes} (cls_logits)")
