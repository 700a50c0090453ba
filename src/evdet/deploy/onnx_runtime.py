"""Run an exported detector (``evdet export onnx``) with ONNX Runtime on the CPU.

``OnnxDetector`` is the runtime side of ``evdet.deploy.export``: one call per time step, the LSTM
states passed in and returned explicitly, detections decoded by evdet's own post-processing
(``evdet.models.detector.postprocess``) so that they equal the checkpoint's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Optional, Sequence

import numpy as np

from evdet.deploy.export import HEAD_OUTPUTS
from evdet.deploy.onnx_metadata import read_metadata

Optimization = Literal["disable", "basic", "extended", "all"]


def session_options(threads: int = 2, optimization: Optimization = "all", spinning: bool = False,
                    config: Optional[dict[str, str]] = None):
    """ONNX Runtime options for latency on a small shared CPU.

    Args:
        threads: intra-op threads (one inter-op thread, sequential execution).
        optimization: graph optimisation level; "all" adds layout (NCHWc) and fused kernels.
        spinning: let idle pool threads spin (fast on an idle machine, slow on a shared one).
        config: further session config entries, e.g. {"session.set_denormal_as_zero": "1"}.
    """
    import onnxruntime as ort

    levels = {"disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
              "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
              "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
              "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL}
    if optimization not in levels:
        raise ValueError(f"optimization must be one of {sorted(levels)}, got {optimization!r}")
    so = ort.SessionOptions()
    so.graph_optimization_level = levels[optimization]
    so.intra_op_num_threads = int(threads)
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.log_severity_level = 3
    so.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
    for key, value in (config or {}).items():
        so.add_session_config_entry(key, value)
    return so


def postprocess_head(boxes: np.ndarray, obj_logits: np.ndarray, cls_logits: np.ndarray, input_hw: Sequence[int],
                     *, conf_threshold: float, nms_iou: float, max_detections: int) -> list[np.ndarray]:
    """evdet's detector post-processing applied to raw head outputs of N items.

    Args:
        boxes: (N, A, 4) cx, cy, w, h; obj_logits: (N, A); cls_logits: (N, A, K), input pixels.
        input_hw: (height, width) of the unpadded input (boxes are clipped to it).
    Returns:
        per item, ``evdet.models.detector.postprocess``'s rows (float32): x1, y1, x2, y2 (input pixels), score, class_id,
        class_conf.
    """
    import torch

    from evdet.models.detector import postprocess
    from evdet.models.yolox_head import HeadOutput

    head = HeadOutput(boxes=torch.from_numpy(np.asarray(boxes)), obj_logits=torch.from_numpy(np.asarray(obj_logits)),
                      cls_logits=torch.from_numpy(np.asarray(cls_logits)), anchor_centers=torch.zeros(0, 2),
                      strides=torch.zeros(0), input_hw=(int(input_hw[0]), int(input_hw[1])))
    # the same post-processing as a checkpoint's (evdet.models.detector.postprocess)
    found = postprocess(head, conf_threshold=conf_threshold, nms_iou=nms_iou, max_detections=max_detections)
    return [d.numpy() for d in found]


class OnnxDetector:
    """An exported evdet detector in an ONNX Runtime session.

    Args:
        path: .onnx file written by ``evdet export onnx``.
        threads, optimization, spinning, config: see ``session_options``.
    Raises:
        FileNotFoundError: no such file. ValueError: not an ONNX model, or one without evdet's metadata.
    """

    def __init__(self, path: str | Path, *, threads: int = 2, optimization: Optimization = "all",
                 spinning: bool = False, config: Optional[dict[str, str]] = None) -> None:
        import onnxruntime as ort

        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"{self.path}: ONNX model not found")
        try:
            options = session_options(threads, optimization, spinning, config)
            self.session = ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])
        except Exception as err:  # onnxruntime raises its own Fail / InvalidProtobuf / InvalidGraph
            raise ValueError(f"{self.path}: not a loadable ONNX model ({type(err).__name__}: "
                             f"{str(err).splitlines()[0][:200]})") from None
        self.meta = read_metadata(self.path, self.session)
        self.class_names: tuple[str, ...] = tuple(self.meta["class_names"])
        self.input_hw: tuple[int, int] = tuple(self.meta["input_hw"])
        self.in_channels: int = int(self.meta["in_channels"])
        self.representation: str = self.meta["representation"]
        self.state_names: list[str] = list(self.meta["state_names"])
        self.state_shapes: list[tuple[int, ...]] = [tuple(s) for s in self.meta["state_shapes"]]

    def initial_states(self, batch: int = 1) -> list[np.ndarray]:
        """Zero states (a sequence start) for `batch` items, in input order h1, c1, ... (``state_layout``)."""
        return [np.zeros((batch, *shape), np.float32) for shape in self.state_shapes]

    def step(self, frames: np.ndarray, states: Optional[Sequence[np.ndarray]] = None
             ) -> tuple[dict[str, np.ndarray], list[np.ndarray]]:
        """One recurrent step.

        Args:
            frames: (B, C, H, W) representation at the model's input_hw (any real dtype; cast to float32).
            states: flat states from the previous step, or None for zeros.
        Returns:
            ({"boxes", "obj_logits", "cls_logits"} raw head outputs, new flat states).
        """
        frames = np.ascontiguousarray(frames, dtype=np.float32)
        expected = (self.in_channels, *self.input_hw)
        if frames.ndim != 4 or tuple(frames.shape[1:]) != expected:
            raise ValueError(f"{self.path}: frames must be (B, {', '.join(map(str, expected))}), "
                             f"got {tuple(frames.shape)}")
        if states is None:
            states = self.initial_states(frames.shape[0])
        feeds = {"frame": frames, **{n: np.ascontiguousarray(s, dtype=np.float32)
                                     for n, s in zip(self.state_names, states)}}
        outputs = self.session.run(None, feeds)
        head = dict(zip(HEAD_OUTPUTS, outputs[:len(HEAD_OUTPUTS)]))
        return head, list(outputs[len(HEAD_OUTPUTS):])

    def detect(self, frames: np.ndarray, states: Optional[Sequence[np.ndarray]] = None, *,
               conf_threshold: Optional[float] = None) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """One step and post-processing: per item the rows of ``postprocess_head``; and the new states.

        conf_threshold defaults to the checkpoint's head setting (as do NMS IoU and max detections).
        """
        head, states = self.step(frames, states)
        cfg = self.meta["head"]
        conf = cfg["conf_threshold"] if conf_threshold is None else conf_threshold
        dets = postprocess_head(head["boxes"], head["obj_logits"], head["cls_logits"], self.input_hw,
                                conf_threshold=conf, nms_iou=cfg["nms_iou"], max_detections=cfg["max_detections"])
        return dets, states


def predict_recording_onnx(detector: OnnxDetector | str | Path, path: str | Path, *,
                           t_start_us: Optional[int] = None, t_end_us: Optional[int] = None,
                           sensor_hw: Optional[tuple[int, int]] = None, downsample: str = "nearest",
                           conf_threshold: Optional[float] = None, progress: bool = True) -> tuple[np.ndarray, dict]:
    """Detections on a raw recording with an ONNX model, window by window with the states carried.

    The same windows, representation and output as ``evdet.training.predict.predict_recording``
    (the checkpoint path): boxes as a BBOX array in SENSOR pixels (t = window end time), and
    {"sensor_hw", "input_hw", "downsample", "windows", "representation", "class_names"}.
    """
    from evdet.training.predict import RecordingWindows

    det = detector if isinstance(detector, OnnxDetector) else OnnxDetector(detector)
    windows = RecordingWindows(path, det.representation, det.input_hw, t_start_us=t_start_us, t_end_us=t_end_us,
                               sensor_hw=sensor_hw, downsample=downsample)
    found: list[np.ndarray] = []
    states = None
    for t_end, rep in windows.iterate(progress=progress, label="predict (onnx)"):
        dets, states = det.detect(rep[None], states, conf_threshold=conf_threshold)
        found.append(windows.to_boxes(dets[0], t_end))
    return windows.collect(found), windows.info(det.class_names)
