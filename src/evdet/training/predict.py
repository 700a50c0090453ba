"""Stream-mode prediction over whole sequences (state carried from the first representation on)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np
import torch

from evdet.data.sequence_store import SequenceStore, read_split_meta
from evdet.data.window_loaders import StreamDataset
from evdet.data.labels import BBOX_DTYPE, boxes_from_detections
from evdet.training.checkpoints import MODULE_ARGS, CheckpointError, check_state_dict, read_checkpoint
from evdet.training.module import DetectionModule, module_from_hparams
from evdet.training.state import StreamStates


def load_module(module_or_ckpt: DetectionModule | str | Path, map_location: str = "cpu", *,
                trusted: bool = False) -> DetectionModule:
    """A DetectionModule as given, or rebuilt from a checkpoint file (its config, then its weights).

    Args:
        trusted: allow pickled Python objects besides tensors (``--trusted``: unpickling can run code).
    Raises:
        FileNotFoundError: no such file.
        UntrustedCheckpointError: the file holds other Python objects and ``trusted`` is off.
        CheckpointError: the file is unreadable, not an evdet checkpoint, or its weights do not fit the
            model its config describes (e.g. another preset or FPN scale count).
    """
    if isinstance(module_or_ckpt, DetectionModule):
        return module_or_ckpt
    path = Path(module_or_ckpt)
    ckpt = read_checkpoint(path, trusted=trusted)
    hp = ckpt["hyper_parameters"]
    try:
        module = module_from_hparams({k: hp[k] for k in MODULE_ARGS})
    except (TypeError, ValueError) as err:
        raise CheckpointError(f"{path}: its config cannot rebuild the model ({err})") from None
    cfg = module.model_cfg
    check_state_dict(path, module.state_dict(), ckpt["state_dict"],
                     f"preset {cfg.preset}, patch {cfg.patch_size}, in_stages {list(cfg.in_stages)}, "
                     f"{module.num_classes} classes")
    module.load_state_dict(ckpt["state_dict"])
    return module.to(map_location)


def check_data_fits(module: DetectionModule, store: "SequenceStore", count: int, pre_root: str | Path) -> None:
    """Refuse sequences whose representation size or class map differ from the checkpoint's.

    Raises:
        ValueError: naming the sequence (or dataset.yaml) and both values.
    """
    from evdet.data.classes import load_class_map

    want = (module.in_channels, *module.input_hw)
    for i in range(count):
        seq = store.get(i)
        got = (int(seq.channels), int(seq.height), int(seq.width))
        if got != want:
            raise ValueError(f"{store.paths[i]}: representations are {got[0]} x {got[1]} x {got[2]} "
                             f"(channels x height x width) but the checkpoint's model takes "
                             f"{want[0]} x {want[1]} x {want[2]}")
    if module.data_cfg.class_map == "auto":
        names = load_class_map(Path(pre_root)).names
        if tuple(names) != tuple(module.class_names):
            raise ValueError(f"{Path(pre_root) / 'dataset.yaml'}: classes {list(names)} differ from the "
                             f"checkpoint's {list(module.class_names)}")


@torch.no_grad()
def predict_sequences(module_or_ckpt: DetectionModule | str | Path, pre_root: str | Path, split: str, *,
                      batch_size: int = 2, max_sequences: Optional[int] = None, progress: bool = True,
                      chunk_len: Optional[int] = None, all_reprs: bool = False,
                      device: Optional[str] = None) -> tuple[list[str], list[np.ndarray], list[np.ndarray]]:
    """Detections of every sequence of a split, in stream mode.

    Each batch slot walks one sequence after another in chunks of ``chunk_len`` representations
    (default: the training seq_len), with the recurrent state carried between chunks and reset at
    each sequence start, exactly as one pass over the whole sequence.

    Args:
        module_or_ckpt: a DetectionModule or a checkpoint path.
        pre_root: preprocessed dataset root; split: its split folder ("val", "test").
        batch_size: sequences processed in parallel.
        max_sequences: only the first N sequences (sorted by name).
        all_reprs: predict at every representation, not only at labelled ones.
        device: "cpu", "cuda", ... (default: CUDA when available).
    Returns:
        (names, gt_list, dt_list): per sequence, the name, the ground truth (every label frame, BBOX
        array in representation pixels) and the detections (BBOX array, t = representation end time,
        score in class_confidence).
    """
    module = load_module(module_or_ckpt)
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    representation = module.data_cfg.representation
    meta = read_split_meta(pre_root, split, representation)
    if max_sequences is not None:
        meta = meta[:max_sequences]
    if not meta:
        raise FileNotFoundError(f"{Path(pre_root) / split}: no preprocessed sequences found")
    store = SequenceStore([m.path for m in meta], representation)
    check_data_fits(module, store, len(meta), pre_root)
    frame_shape = (module.in_channels, *module.input_hw)
    ds = StreamDataset(store, [m.num_reprs for m in meta], frame_shape, seq_len=chunk_len or module.data_cfg.seq_len,
                       num_slots=min(batch_size, len(meta)), shuffle=False,
                       multires=module.data_cfg.multires)   # eval at data.multires.eval_scale, boxes mapped back
    was_training = module.training
    module.eval()
    module.to(dev)
    states = StreamStates()
    dets: dict[str, list[np.ndarray]] = {m.name: [] for m in meta}
    batches = iter(ds)
    if progress:
        from rich.progress import track

        batches = track(batches, total=ds.num_batches(), description=f"predict {split}")
    for batch in batches:
        select = (batch["t_us"] >= 0) if all_reprs else batch["label_mask"]
        if not bool(select.any()):
            module.advance_streams(batch, states, None)
            continue
        out = module.advance_streams(batch, states, select)
        for name, found in module.detections(batch, out, select):
            dets[name].append(found)
    module.train(was_training)
    names = [m.name for m in meta]
    gt_list = [np.asarray(store.get(i).all_labels(in_repr_pixels=True)) for i in range(len(meta))]
    dt_list = [np.concatenate(dets[n]) if dets[n] else np.zeros(0, dtype=BBOX_DTYPE) for n in names]
    return names, gt_list, dt_list


def _downsample_for(source_hw: tuple[int, int], input_hw: tuple[int, int], choice: str, path: Path) -> str:
    """Representation downsampling that maps the sensor to the model's input size."""
    if tuple(source_hw) == tuple(input_hw):
        return "none"
    if (source_hw[0] // 2, source_hw[1] // 2) == tuple(input_hw):
        return "ds2_sum" if choice == "sum" else "ds2_nearest"
    raise ValueError(f"{path}: sensor {source_hw[1]}x{source_hw[0]} does not match the model input "
                     f"{input_hw[1]}x{input_hw[0]} (same size or twice it are supported)")


class RecordingWindows:
    """The windows of a raw recording as a model sees them, for stream prediction (checkpoint or ONNX).

    Windows have the model's representation and length and end on a grid from ``t_start_us`` (default:
    the first event); a sensor twice the model input is downsampled ("nearest" reference or "sum").
    """

    def __init__(self, path: str | Path, representation: str, input_hw: tuple[int, int], *,
                 t_start_us: Optional[int] = None, t_end_us: Optional[int] = None,
                 sensor_hw: Optional[tuple[int, int]] = None, downsample: str = "nearest"):
        from evdet.events import EventFormatError, parse_representation_name
        from evdet.events.recording import describe_recording, stated_sensor_size

        self.path = Path(path)
        self.representation = representation
        self.input_hw = tuple(input_hw)
        self.kind, self.params = parse_representation_name(representation)
        self.window_us = self.params.pop("window_ms") * 1000
        stated = stated_sensor_size(self.path)
        if stated is None and sensor_hw is None:
            raise EventFormatError(f"{self.path}: the file does not state its sensor size; pass --sensor WIDTHxHEIGHT "
                                   f"(sensor_hw=(height, width) in Python), e.g. 304x240 for Gen1, 1280x720 for "
                                   f"Gen4 / eTraM")
        self.source_hw = stated or (int(sensor_hw[0]), int(sensor_hw[1]))
        self.mode = _downsample_for(self.source_hw, self.input_hw, downsample, self.path)
        self.scale = self.source_hw[1] / self.input_hw[1]
        if t_start_us is None or t_end_us is None:
            summary = describe_recording(self.path, height=self.source_hw[0], width=self.source_hw[1])
            if not summary["num_events"]:
                raise ValueError(f"{self.path}: the recording holds no events")
            t_start_us = summary["t_first_us"] if t_start_us is None else t_start_us
            t_end_us = summary["t_last_us"] if t_end_us is None else t_end_us
        self.ends = np.arange(t_start_us + self.window_us, t_end_us + 1, self.window_us, dtype=np.int64)

    def iterate(self, progress: bool = True, label: str = "predict"):
        """Yield (t_end_us, representation (C, H, W)) for every window, in time order."""
        from evdet.data.preprocess.dataset import EventSource, EventWindows
        from evdet.events import build_representation

        steps = self.ends
        if progress:
            from rich.progress import track

            steps = track(self.ends, description=f"{label} {self.path.name}")
        with EventSource(str(self.path), *self.source_hw) as source:
            windows = EventWindows(source.read, self.window_us)
            for t_end in steps:
                yield int(t_end), build_representation(self.kind, windows.window(int(t_end)), *self.source_hw,
                                                       downsample=self.mode, **self.params)

    def to_boxes(self, d: np.ndarray, t_end_us: int) -> np.ndarray:
        """(D, 7) detections in input pixels (postprocess rows) -> BBOX array in sensor pixels at ``t_end_us``."""
        return boxes_from_detections(d[:, :4], d[:, 4], d[:, 5].astype(np.int64), t_end_us, scale=self.scale,
                                     class_scores=d[:, 6])

    @staticmethod
    def collect(found: list[np.ndarray]) -> np.ndarray:
        return np.concatenate(found) if found else np.zeros(0, dtype=BBOX_DTYPE)

    def info(self, class_names) -> dict:
        return {"sensor_hw": list(self.source_hw), "input_hw": list(self.input_hw), "downsample": self.mode,
                "windows": int(self.ends.size), "representation": self.representation,
                "class_names": list(class_names)}


@torch.no_grad()
def predict_recording(module_or_ckpt: DetectionModule | str | Path, path: str | Path, *,
                      t_start_us: Optional[int] = None, t_end_us: Optional[int] = None,
                      sensor_hw: Optional[tuple[int, int]] = None, downsample: str = "nearest",
                      conf_threshold: Optional[float] = None, device: Optional[str] = None,
                      progress: bool = True) -> tuple[np.ndarray, dict]:
    """Detections on a raw recording (.h5 / .dat / .raw / .npy), window by window in stream mode.

    Windows have the checkpoint's representation and length and end on a grid from the first event;
    the recurrent state is carried from window to window, as in training streams.

    Args:
        module_or_ckpt: a DetectionModule or a checkpoint path.
        path: the recording.
        t_start_us, t_end_us: time range to process (default: the whole recording).
        sensor_hw: (height, width) when the file does not say it.
        downsample: "nearest" (reference) or "sum", used when the sensor is twice the model input.
        conf_threshold: keep detections scoring at least this (default: the checkpoint's head setting).
    Returns:
        (boxes, info): detections as a BBOX array in SENSOR pixels (t = window end time), and
        {"sensor_hw", "input_hw", "downsample", "windows", "representation"}.
    """
    module = load_module(module_or_ckpt)
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    module.eval().to(dev)
    head_cfg = module.model_cfg.head
    conf = head_cfg.conf_threshold if conf_threshold is None else conf_threshold
    windows = RecordingWindows(path, module.data_cfg.representation, module.input_hw, t_start_us=t_start_us,
                               t_end_us=t_end_us, sensor_hw=sensor_hw, downsample=downsample)
    found: list[np.ndarray] = []
    states = None
    for t_end, rep in windows.iterate(progress=progress):
        x = torch.from_numpy(np.ascontiguousarray(rep)).float().unsqueeze(0).to(dev)
        out = module.model(x, states)
        states = out.states
        d = module.model.postprocess(out.head, conf_threshold=conf, nms_iou=head_cfg.nms_iou,
                                     max_detections=head_cfg.max_detections)[0].float().cpu().numpy()
        found.append(windows.to_boxes(d, t_end))
    return windows.collect(found), windows.info(module.class_names)


def save_recording_predictions(recording: str | Path, boxes: np.ndarray, info: dict, out_dir: str | Path, *,
                               panels: int = 6, min_score: float = 0.3) -> dict[str, Path]:
    """Write the detections of a recording and an annotated image strip.

    Files::

        <out_dir>/<name>_bbox.npy     # detection file, sensor pixels (name: file name without _td / suffix):
                                      # class probability in class_confidence (RVT), obj x cls in obj_x_cls
                                      # (evdet.data.detection_files)
        <out_dir>/<name>_strip.png    # up to ``panels`` windows spread over time, boxes scoring >= min_score

    Args:
        boxes, info: output of ``predict_recording`` (or a runtime with the same ``info`` keys:
            sensor_hw, representation, class_names).
    Returns:
        {"boxes": path, "strip": path} ("strip" absent when there is no detection to show).
    """
    from evdet.data.detection_files import save_detections
    from evdet.data.pictures import render_strip
    from evdet.events import parse_representation_name, read_events

    recording, out_dir = Path(recording), Path(out_dir)
    stem = recording.name.split(".")[0].removesuffix("_td")
    paths = {"boxes": out_dir / f"{stem}_bbox.npy"}
    save_detections(paths["boxes"], boxes)
    h, w = info["sensor_hw"]
    ends = np.unique(boxes["t"]) if boxes.size else np.zeros(0, np.int64)
    window_us = parse_representation_name(info["representation"])[1]["window_ms"] * 1000
    picks = ends[np.linspace(0, len(ends) - 1, min(panels, len(ends))).astype(int)] if len(ends) else ends
    strip = [(read_events(recording, int(t) - window_us, int(t) + 1, height=h, width=w), boxes[boxes["t"] == t],
              f"t = {int(t) / 1e6:.2f} s") for t in picks]
    if strip:
        paths["strip"] = out_dir / f"{stem}_strip.png"
        render_strip(strip, h, w, info["class_names"], paths["strip"], min_score=min_score)
    return paths
