"""Named evaluation protocols and their fingerprints.

A number is meaningless without the protocol that produced it, so every result carries a
fingerprint: class map, class-aware or class-agnostic overall AP, box filter, resolutions, label
rate, IoU thresholds, area buckets, time tolerance, and a SHA-1 digest of all of that.

Protocols:

``prophesee``
    The Prophesee / RVT evaluation (``utils/evaluation/prophesee`` in RVT). Per sequence each
    distinct ground-truth timestamp (after filtering) is one image; detections with
    ``|t_det - t_gt| <= 50 ms`` join it (a detection may join several images, as in the reference
    ``_match_times``). Ground truth and detections are both filtered: ``t > 0.5 s``,
    ``w^2 + h^2 >= diag^2``, ``w >= side``, ``h >= side`` with (diag, side) = (60, 20) at
    1280x720, (30, 10) at 640x360 and Gen1 304x240, otherwise the 1280x720 values scaled by
    ``width / 1280``. COCO AP@[.5:.95], AP50, AP75, AP_S/M/L (COCO area ranges at the evaluated
    resolution), class-aware, 101 recall points, at most 100 detections per image.
``etram-paper``
    What eTraM's RVT code (``eventbasedvision/eTraM``, ``rvt_eTram/utils/evaluation/prophesee``)
    reports: the same time matching and the same Prophesee filter (its ``evaluate_list`` only
    accepts the gen1/gen4 cameras and always filters; 1280x720 halved to 640x360 gives (30, 10)),
    but the overall numbers come from a class-agnostic COCOeval (``useCats = 0``). (Had a patched
    copy passed camera "etrap", the thresholds would have been the Gen1 ones halved, (15, 5) at
    640x360; the published code cannot run that way, so the gen4 thresholds are used.) The paper
    headlines AP50. Per-class numbers are class-aware (``useCats = 1``, one category at a time).
    The paper trains on 3 merged classes (PED / VH / MM); here a group's AP is the class-agnostic
    AP on the ground truth and detections of that group's classes only (a bus detected as a car
    counts as a VH hit).
``full``
    No size filter, so small objects count; the skip-first 0.5 s rule stays (it is about the
    recurrent model's missing history, not object size, and keeping it makes ``full`` differ from
    ``prophesee`` only in the size filter and the buckets). Class-aware. Area buckets are stated at
    the full (source) resolution and partition the boxes: tiny < 16^2, small [16^2, 32^2),
    medium [32^2, 96^2), large >= 96^2 source pixels (converted to evaluated pixels by
    ``(width / source_w)^2``; COCO range ends are inclusive, so an area exactly on a bound counts
    in both buckets). Reports AP_tiny besides AP_S/M/L.

Consequences of the reference time matching worth knowing: with labels 50 ms apart, a detection
at a label time also joins the neighbouring frames (tolerance inclusive) and counts as a false
positive there; at 10 Hz labels and predictions made only at label times this cannot happen.
Where no number is defined (no GT in a bucket or class), results hold None, where COCO's summary
would print -1; the reference also returns 0.0 for every metric when there is no detection at all,
while here categories with GT then get AP 0 and undefined buckets stay None.

For ``prophesee`` and ``full``, a group's AP is COCO AP over only the group's categories, i.e.
the mean over member classes that have support (COCO skips categories without ground truth).

Scoring (which score COCO ranks detections by, ``SCORINGS``) is part of every protocol:

``class``
    RVT's convention: its ``to_prophesee`` stores YOLOX's ``class_conf`` (the best class's
    probability, without objectness) as the score, while its confidence threshold and NMS use
    obj x cls. Numbers comparable with RVT / eTraM papers need it; the default of every protocol
    (``full`` too, so that ``full`` differs from ``prophesee`` only in the size filter and buckets).
``obj_x_cls``
    YOLOX's own COCO evaluator: the score is objectness x class probability.

evdet's detections carry both (in memory ``class_confidence`` = obj x cls, ``class_score`` =
class_conf, see ``evdet.data.labels.DETECTION_DTYPE``; in the files evdet writes, as in RVT's,
``class_confidence`` = class_conf and ``obj_x_cls`` = obj x cls, see
``evdet.data.detection_files``); a plain box array without either extra field (e.g. a file
written by RVT) is ranked by its ``class_confidence`` under either convention. The chosen score is
also the one that per-class precision / recall and the confusion matrix threshold.

Post-processing (``evdet.evaluation.postprocessing``) is part of every protocol too: which
candidates reach COCO (obj x cls threshold, clipping to the frame, cap per frame). ``prophesee``
and ``etram-paper`` default to ``rvt`` at 0.001 (no clip, no cap: the published numbers' setting);
``full`` to ``clip_cap`` at 0.01 (evdet's own rule at the demo / matrix recipes' run threshold,
so that its earlier numbers stay). The fingerprint holds the name, the threshold, the
clipping and the cap.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, replace
from typing import Literal, Sequence

import numpy as np

from evdet.evaluation.filters import BoxFilter, prophesee_filter, time_only_filter
from evdet.evaluation.postprocessing import PUBLISHED_CONF_THRESHOLD, PostProcess, make_postprocess

Scoring = Literal["class", "obj_x_cls"]
SCORINGS: tuple[str, ...] = ("class", "obj_x_cls")

INF_AREA_PX2 = 1e10                       # COCO's "1e5 ** 2" upper bound
IOU_THRESHOLDS = tuple(float(x) for x in np.linspace(0.5, 0.95, 10))
MAX_DETECTIONS = 100
RECALL_POINTS = 101
COCO_BUCKETS_PX2 = {"S": (0.0, 32.0**2), "M": (32.0**2, 96.0**2), "L": (96.0**2, INF_AREA_PX2)}
FULL_BUCKETS_PX2 = {
    "tiny": (0.0, 16.0**2),
    "S": (16.0**2, 32.0**2),
    "M": (32.0**2, 96.0**2),
    "L": (96.0**2, INF_AREA_PX2),
}


@dataclass(frozen=True)
class Protocol:
    """One named way to turn boxes into numbers.

    Args:
        name: protocol name (key of ``PROTOCOLS``).
        size_filter: apply the Prophesee size rule (else only the skip-first rule).
        class_agnostic: overall AP ignores class labels (COCO ``useCats = 0``).
        group_mode: "mean_of_classes" (COCO AP over the group's categories) or "merged" (the
            group's classes pooled into one class, class-agnostic within the group).
        buckets: "coco" (COCO ranges at the evaluated resolution) or "full" (tiny/S/M/L at source).
        headline: the metric a paper would quote ("AP" or "AP50").
        time_tolerance_us: a detection joins a GT frame when ``|t_det - t_gt| <= tolerance``.
        skip_first_us: boxes with ``t <= skip_first_us`` are dropped.
        scoring: the default score COCO ranks by ("class" as RVT, or "obj_x_cls" as YOLOX).
        postprocess: which candidate detections are evaluated ("rvt" or "clip_cap").
        conf_threshold: obj x cls threshold of that post-processing.
    """

    name: str
    size_filter: bool
    class_agnostic: bool
    group_mode: Literal["mean_of_classes", "merged"]
    buckets: Literal["coco", "full"]
    headline: Literal["AP", "AP50"]
    time_tolerance_us: int = 50_000
    skip_first_us: int = 500_000
    scoring: Scoring = "class"
    postprocess: Literal["rvt", "clip_cap"] = "rvt"
    conf_threshold: float = PUBLISHED_CONF_THRESHOLD

    @property
    def post(self) -> PostProcess:
        """The post-processing (threshold, clip, cap) the evaluation applies to the detections."""
        return make_postprocess(self.postprocess, self.conf_threshold)

    def box_filter(self, height: int, width: int) -> BoxFilter:
        """The box filter at the evaluated resolution (height, width)."""
        if self.size_filter:
            return prophesee_filter(height, width, self.skip_first_us)
        return time_only_filter(height, width, self.skip_first_us)

    def area_ranges_px2(self, height: int, width: int, source_hw: tuple[int, int]) -> dict[str, tuple[float, float]]:
        """Area ranges in evaluated pixels^2, "all" first: label -> (min, max), both inclusive (COCO)."""
        ranges = {"all": (0.0, INF_AREA_PX2)}
        if self.buckets == "coco":
            ranges.update(COCO_BUCKETS_PX2)
            return ranges
        to_eval = (width / source_hw[1]) ** 2
        for label, (lo, hi) in FULL_BUCKETS_PX2.items():
            ranges[label] = (lo * to_eval, hi if hi >= INF_AREA_PX2 else hi * to_eval)
        return ranges

    def metric_names(self) -> tuple[str, ...]:
        """Overall metric keys, in reporting order."""
        sizes = ("AP_S", "AP_M", "AP_L") if self.buckets == "coco" else ("AP_tiny", "AP_S", "AP_M", "AP_L")
        return ("AP", "AP50", "AP75") + sizes


PROTOCOLS: dict[str, Protocol] = {
    "prophesee": Protocol("prophesee", size_filter=True, class_agnostic=False,
                          group_mode="mean_of_classes", buckets="coco", headline="AP"),
    "etram-paper": Protocol("etram-paper", size_filter=True, class_agnostic=True,
                            group_mode="merged", buckets="coco", headline="AP50"),
    "full": Protocol("full", size_filter=False, class_agnostic=False,
                     group_mode="mean_of_classes", buckets="full", headline="AP",
                     postprocess="clip_cap", conf_threshold=0.01),
}


def get_protocol(name: str, scoring: str | None = None, postprocess: str | None = None,
                 conf_threshold: float | None = None) -> Protocol:
    """The protocol of that name, with ``scoring`` / ``postprocess`` / ``conf_threshold`` instead of
    its defaults where given.

    Raises:
        ValueError: naming the known protocols / scorings / post-processings, or a bad threshold.
    """
    if name not in PROTOCOLS:
        raise ValueError(f"unknown evaluation protocol {name!r}; known: {sorted(PROTOCOLS)}")
    proto = PROTOCOLS[name]
    if scoring is not None and scoring != proto.scoring:
        if scoring not in SCORINGS:
            raise ValueError(f"unknown scoring {scoring!r}; known: {list(SCORINGS)}")
        proto = replace(proto, scoring=scoring)
    if postprocess is not None or conf_threshold is not None:
        pp = make_postprocess(postprocess or proto.postprocess,
                              proto.conf_threshold if conf_threshold is None else conf_threshold)
        proto = replace(proto, postprocess=pp.name, conf_threshold=pp.conf_threshold)
    return proto


def fingerprint(
    protocol: Protocol,
    class_names: Sequence[str],
    height: int,
    width: int,
    source_hw: tuple[int, int],
    label_rate_hz: float | None = None,
) -> dict:
    """Everything that decides the numbers of a protocol, plus ``digest`` (SHA-1 of the rest).

    Equal settings give equal digests; any change of class map, filter, resolution, label rate,
    IoU thresholds, buckets, time tolerance, scoring or post-processing (threshold, clip, cap) changes it.
    """
    ranges = protocol.area_ranges_px2(height, width, source_hw)
    stated_hw = list(source_hw) if protocol.buckets == "full" else [height, width]
    stated = FULL_BUCKETS_PX2 if protocol.buckets == "full" else COCO_BUCKETS_PX2
    fp = {
        "name": protocol.name,
        "class_names": list(class_names),
        "class_agnostic": protocol.class_agnostic,
        "filter": protocol.box_filter(height, width).to_dict(),
        "resolution": [int(height), int(width)],
        "source_resolution": [int(source_hw[0]), int(source_hw[1])],
        "label_rate_hz": None if label_rate_hz is None else float(label_rate_hz),
        "time_tolerance_us": protocol.time_tolerance_us,
        "time_matching": "each distinct GT timestamp is an image; detections with |t - t_gt| <= tolerance join it",
        "iou_thresholds": [round(x, 2) for x in IOU_THRESHOLDS],
        "recall_points": RECALL_POINTS,
        "max_detections": MAX_DETECTIONS,
        "area_buckets": {
            "stated_at": stated_hw,
            "stated_px2": {k: [lo, hi] for k, (lo, hi) in stated.items()},
            "evaluated_px2": {k: [lo, hi] for k, (lo, hi) in ranges.items() if k != "all"},
        },
        "group_mode": protocol.group_mode,
        "headline": protocol.headline,
        "scoring": protocol.scoring,
        "postprocess": protocol.post.to_dict(),
    }
    fp["digest"] = fingerprint_digest(fp)
    return fp


def fingerprint_digest(fp: dict) -> str:
    """SHA-1 of a fingerprint without its ``digest`` key (canonical JSON, sorted keys)."""
    rest = {k: v for k, v in fp.items() if k != "digest"}
    return hashlib.sha1(json.dumps(rest, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
