"""Export a trained detector to ONNX: one recurrent step per call, LSTM states as explicit tensors.

The exported graph (``torch.onnx.export``, dynamo exporter) maps

    inputs:  frame (B, C, H, W) float32 (unpadded representation, the model's input_hw),
             h1, c1, ..., h4, c4: (B, C_i, H_i, W_i) float32 LSTM states per backbone stage (zeros at a start);
             a stage i with temporal attention (model.modules) adds m<i> (B, K, C_i, H_i, W_i) memory and
             v<i> (B, K) valid flags right after its c<i> (zeros at a start)
    outputs: boxes (B, A, 4) decoded cx, cy, w, h in input pixels, obj_logits (B, A), cls_logits (B, A, K),
             h1_out, c1_out, ..., h4_out, c4_out: the states after this step (feed them to the next call)

with a dynamic batch dimension B. Padding to the partition multiple happens inside the graph;
post-processing (score threshold, class-aware NMS) stays outside, in evdet's torch code
(``evdet.deploy.onnx_runtime``), so ONNX and checkpoint give the same detections.

Everything a runtime needs besides the weights travels in the model's metadata (key ``evdet``,
JSON): class names, input size, channels, representation, post-processing settings, state names
and shapes, and the source checkpoint.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import warnings
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from evdet.deploy.rewrite import rewrite_for_export
from evdet.models.detector import Detector, padded_size
from evdet.utils.atomic import atomic_path

METADATA_KEY = "evdet"
FORMAT_VERSION = 1
HEAD_OUTPUTS = ("boxes", "obj_logits", "cls_logits")
DEFAULT_OPSET = 20


def state_layout(detector: Detector, input_hw: tuple[int, int]) -> list[tuple[str, tuple[int, ...]]]:
    """(name, per-item shape) of every flat state tensor, in input order: h1, c1 (C_i, H_i, W_i), then the
    stage's architecture-module states (m1, v1 with temporal attention), h2, ... (stage numbers 1-based)."""
    height = padded_size(input_hw[0], detector.pad_multiple)
    width = padded_size(input_hw[1], detector.pad_multiple)
    layout: list[tuple[str, tuple[int, ...]]] = []
    for i, (stage, dim, stride) in enumerate(zip(detector.backbone.stages, detector.backbone.dims,
                                                  detector.backbone.strides), start=1):
        hw = (height // stride, width // stride)
        layout += [(f"h{i}", (dim, *hw)), (f"c{i}", (dim, *hw))]
        if stage.refine is not None:
            layout += [(f"{name}{i}", shape) for name, shape in stage.refine.extra_state_shapes(dim, hw)]
    return layout


def state_names(detector: Detector) -> list[str]:
    """Input names of the flat states (see ``state_layout``): h1, c1, h2, c2, ... without modules."""
    return [name for name, _ in state_layout(detector, (1, 1))]


def state_shapes(detector: Detector, input_hw: tuple[int, int]) -> list[tuple[int, ...]]:
    """Per-item shape of each flat state (see ``state_layout``) for one item of `input_hw` pixels."""
    return [shape for _, shape in state_layout(detector, input_hw)]


class RecurrentStep(nn.Module):
    """One recurrent step of a Detector with flat tensors in and out (the exported graph).

    forward(frame (B, C, H, W), h1, c1, ..., h4, c4) -> (boxes, obj_logits, cls_logits, h1', c1', ...)
    (with the architecture modules' states where ``state_layout`` puts them).
    Same computation as ``Detector.forward`` for a 4-D input with every item selected, written without
    its data-dependent selection so that ``torch.export`` can trace it.

    Args:
        detector: the trained detector (not modified).
        input_hw: (height, width) of the unpadded input.
        fast: trace ``evdet.deploy.rewrite.rewrite_for_export``'s copy (same function, faster graph
            in ONNX Runtime) instead of the detector as written.
    """

    def __init__(self, detector: Detector, input_hw: tuple[int, int], fast: bool = True) -> None:
        super().__init__()
        self.input_hw = (int(input_hw[0]), int(input_hw[1]))
        self.fast = fast
        self.detector = rewrite_for_export(detector, self.input_hw) if fast else detector

    def forward(self, frame: Tensor, *states: Tensor) -> tuple[Tensor, ...]:
        det = self.detector
        per_stage, start = [], 0
        for stage in det.backbone.stages:
            per_stage.append(tuple(states[start:start + stage.num_state_tensors]))
            start += stage.num_state_tensors
        # the fast copy pads inside its first convolution
        features, new_states = det.backbone(frame if self.fast else det.pad_input(frame), per_stage)
        frames = det.pad_input(frame) if det.level_modules is not None and det.level_modules.needs_frames else None
        head = det.head_outputs([features[s - 1] for s in det.in_stages], frames, self.input_hw)
        flat = [t for parts in new_states for t in parts]
        return (head.boxes, head.obj_logits, head.cls_logits, *flat)


def load_checkpoint_module(ckpt: str | Path, *, trusted: bool = False):
    """The DetectionModule of an evdet checkpoint, in eval mode on the CPU.

    Args:
        trusted: read a checkpoint holding arbitrary pickled objects (``--trusted``; can run code).
    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: the file is not an evdet checkpoint, or holds other objects and ``trusted`` is off.
    """
    from evdet.training.predict import load_module

    return load_module(Path(ckpt), trusted=trusted).eval().cpu()


def export_metadata(module, ckpt: str | Path, opset: int) -> dict[str, Any]:
    """The JSON metadata stored beside the graph (everything a runtime needs besides the weights)."""
    det = module.model
    names = state_names(det)
    head = module.model_cfg.head
    return {
        "format_version": FORMAT_VERSION,
        "class_names": list(module.class_names),
        "input_hw": list(module.input_hw),
        "in_channels": int(module.in_channels),
        "representation": module.data_cfg.representation,
        "head": {"conf_threshold": head.conf_threshold, "nms_iou": head.nms_iou,
                 "max_detections": head.max_detections},
        "state_names": names,
        "state_shapes": [list(s) for s in state_shapes(det, module.input_hw)],
        "outputs": list(HEAD_OUTPUTS) + [f"{n}_out" for n in names],
        "model_cfg": asdict(module.model_cfg),
        "source_checkpoint": str(ckpt),
        "opset": int(opset),
    }


def export_onnx(ckpt: str | Path, out_path: str | Path, *, opset: int = DEFAULT_OPSET,
                dynamic_batch: bool = True, fast: bool = True, verbose: bool = False,
                trusted: bool = False) -> dict[str, Any]:
    """Export the checkpoint's detector as a one-step ONNX graph with explicit LSTM states (atomic write).

    Args:
        ckpt: evdet checkpoint (.ckpt).
        out_path: the .onnx file to write.
        opset: ONNX opset of the graph.
        dynamic_batch: batch dimension symbolic ("batch"); False fixes it to 1 (lets the runtime
            specialise shapes, e.g. for latency benchmarks).
        fast: export the runtime-friendly form of the same function (``evdet.deploy.rewrite``).
        verbose: show the exporter's own progress output and warnings.
        trusted: read a checkpoint holding arbitrary pickled objects (``--trusted``; can run code).
    Returns:
        The metadata stored in the file (see the module docstring), plus "path".
    """
    module = load_checkpoint_module(ckpt, trusted=trusted)
    return export_module_onnx(module, out_path, source=str(ckpt), opset=opset, dynamic_batch=dynamic_batch,
                              fast=fast, verbose=verbose)


def export_module_onnx(module, out_path: str | Path, *, source: str = "", opset: int = DEFAULT_OPSET,
                       dynamic_batch: bool = True, fast: bool = True, verbose: bool = False) -> dict[str, Any]:
    """Like ``export_onnx`` for a DetectionModule already in memory (``source`` names where it came from)."""
    import onnx

    module = module.eval().cpu()
    meta = {**export_metadata(module, source, opset), "fast_graph": bool(fast)}
    step = RecurrentStep(module.model, module.input_hw, fast=fast).eval()
    # batch 2 in the example: torch.export specialises a size-1 dimension to the constant 1
    batch = 2 if dynamic_batch else 1
    frame = torch.zeros(batch, module.in_channels, *module.input_hw)
    states = [torch.zeros(batch, *shape) for shape in meta["state_shapes"]]
    input_names = ["frame", *meta["state_names"]]
    dynamic_shapes = None
    if dynamic_batch:
        dim = torch.export.Dim("batch", min=1, max=4096)
        dynamic_shapes = ({0: dim}, tuple({0: dim} for _ in states))  # forward(frame, *states)
    quiet = contextlib.nullcontext() if verbose else contextlib.redirect_stdout(io.StringIO())
    exporter_log = logging.getLogger("torch.onnx")
    log_level = exporter_log.level
    with torch.no_grad(), quiet, warnings.catch_warnings():
        if not verbose:
            warnings.simplefilter("ignore")
            exporter_log.setLevel(logging.ERROR)  # e.g. "torchvision is not installed. Skipping ..."
        program = torch.onnx.export(step, (frame, *states), None, input_names=input_names,
                                    output_names=meta["outputs"], dynamic_shapes=dynamic_shapes,
                                    opset_version=opset, dynamo=True, external_data=False, verbose=verbose)
    exporter_log.setLevel(log_level)
    model = program.model_proto
    del model.metadata_props[:]
    entry = model.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, json.dumps(meta)
    out_path = Path(out_path)
    with atomic_path(out_path) as tmp:
        onnx.save_model(model, str(tmp))
    return {**meta, "path": str(out_path)}
