"""Post-processing as part of an evaluation protocol: threshold, clipping and cap of the detections.

A protocol's numbers depend on which detections reach COCO, so the post-processing is named and
fingerprinted like the scoring. The run's model post-processing (``evdet.models.detector.postprocess``:
obj x cls threshold, class-aware NMS, by default RVT's: no clip, no cap) makes the candidates; the
protocol then keeps those that pass its own rule, applied to the candidate arrays:

``rvt``
    RVT's ``postprocess`` + ``to_prophesee`` (``models/detection/yolox/utils/boxes.py``,
    ``utils/evaluation/prophesee/io/box_loading.py``): obj x cls >= ``conf_threshold``, no
    clipping to the frame, no cap on the number of detections (COCO's 100 per image remain, ranked
    by the protocol's scoring). The default of ``prophesee`` and ``etram-paper``, at 0.001, the
    threshold RVT's and eTraM's READMEs evaluate with.
``clip_cap``
    evdet's earlier post-processing: obj x cls >= ``conf_threshold``, boxes clipped to the frame,
    at most ``max_detections`` (300) per frame by decreasing obj x cls. The default of ``full`` (at
    0.01, the run threshold of the demo and matrix recipes, so that its earlier numbers stay), a named
    alternative for the others.

Because NMS only lets a higher-scoring box suppress a lower one, thresholding candidates made at a
lower threshold gives exactly the detections NMS would have kept at the higher one; the protocol's
threshold is therefore exact whenever it is at least the run's (evdet's runs predict at 0.001).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal, Optional

import numpy as np

PostProcessName = Literal["rvt", "clip_cap"]
POSTPROCESS_NAMES: tuple[str, ...] = ("rvt", "clip_cap")
PUBLISHED_CONF_THRESHOLD = 0.001          # RVT README "Evaluation", eTraM rvt_eTram/README.md
CLIP_CAP_MAX_DETECTIONS = 300


@dataclass(frozen=True)
class PostProcess:
    """What decides which candidate detections a protocol evaluates.

    Attributes:
        name: "rvt" or "clip_cap".
        conf_threshold: keep obj x cls >= this.
        clip: clip boxes to [0, W] x [0, H] of the evaluated frame.
        max_detections: None = no cap, else at most this many per frame (timestamp) by obj x cls.
    """

    name: PostProcessName
    conf_threshold: float
    clip: bool
    max_detections: Optional[int]

    def to_dict(self) -> dict:
        return asdict(self)


def make_postprocess(name: str, conf_threshold: float) -> PostProcess:
    """The named post-processing at a confidence threshold.

    Raises:
        ValueError: an unknown name or a threshold outside [0, 1].
    """
    if name not in POSTPROCESS_NAMES:
        raise ValueError(f"unknown post-processing {name!r}; known: {list(POSTPROCESS_NAMES)}")
    if not 0.0 <= float(conf_threshold) <= 1.0:
        raise ValueError(f"post-processing conf_threshold {conf_threshold} is outside [0, 1]")
    if name == "rvt":
        return PostProcess("rvt", float(conf_threshold), clip=False, max_detections=None)
    return PostProcess("clip_cap", float(conf_threshold), clip=True, max_detections=CLIP_CAP_MAX_DETECTIONS)


def obj_x_cls_of(dets: np.ndarray) -> np.ndarray:
    """(D,) obj x cls of a detection array: field ``obj_x_cls`` when present (detection files), else
    ``class_confidence`` (in-memory ``DETECTION_DTYPE`` arrays and plain box arrays; legacy
    ``confidence``), else 1 (boxes without a score)."""
    names = dets.dtype.names or ()
    field = next((f for f in ("obj_x_cls", "class_confidence", "confidence") if f in names), None)
    return np.ones(len(dets)) if field is None else dets[field]


def apply_postprocess(dets: np.ndarray, pp: PostProcess, height: int, width: int) -> np.ndarray:
    """The detections a protocol evaluates (a new array, same dtype, time order kept).

    Args:
        dets: structured box array of one sequence (fields t, x, y, w, h, ...), evaluated pixels.
        height, width: evaluated frame, pixels (used by ``clip``).
    """
    arr = np.asarray(dets)
    if arr.dtype.names is None or arr.size == 0:
        return arr.copy()
    score = obj_x_cls_of(arr).astype(np.float64)
    out = arr[score >= pp.conf_threshold]
    if pp.max_detections is not None and out.size:
        score = obj_x_cls_of(out).astype(np.float64)
        t = out["t" if "t" in out.dtype.names else "ts"]
        order = np.lexsort((-score, t))                        # by time, then decreasing score
        t_sorted = t[order]
        starts = np.r_[0, np.flatnonzero(np.diff(t_sorted)) + 1]
        rank = np.arange(order.size) - np.repeat(starts, np.diff(np.r_[starts, order.size]))
        keep = np.sort(order[rank < pp.max_detections])
        out = out[keep]
    if pp.clip and out.size:
        out = out.copy()
        x1, y1 = np.clip(out["x"], 0, width), np.clip(out["y"], 0, height)
        x2, y2 = np.clip(out["x"] + out["w"], 0, width), np.clip(out["y"] + out["h"], 0, height)
        out["x"], out["y"], out["w"], out["h"] = x1, y1, x2 - x1, y2 - y1
    return out
