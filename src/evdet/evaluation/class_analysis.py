"""Per-class data analysis: support, data share, AP efficiency, box sizes and FPN-level ownership.

For every class (boxes of the chosen splits, in INPUT pixels, i.e. scaled from the source resolution
to the model input resolution):

- ``support`` (box count), ``data_share`` = support / all boxes;
- ``AP`` from a results.json (per-class AP of one protocol), ``AP_share`` = AP / sum of class APs,
  ``efficiency`` = AP_share / data_share (> 1: the class gets more than its share of the accuracy);
- box area (px^2) and aspect ratio (w / h) percentiles P25 / P50 / P75 (``numpy.percentile``, linear);
- ``narrow_share``: boxes with w / h < 0.5; ``thin_share``: boxes with a side < 8 px;
- FPN level ownership for each stride set (3-scale 8/16/32, 4-scale 4/8/16/32, and the patch-2
  variants 4/8/16 and 2/4/8/16):

  * owner level (scale-range rule): stride ``s_i`` owns boxes whose longest side lies in
    ``[8 * s_{i-1}, 8 * s_i)``; the smallest stride takes everything below ``8 * s_0`` and the
    largest everything above. ``below_range_share``: longest side < ``4 * s_0`` (smaller than the
    nominal range of the finest level).
  * covered: the model's own SimOTA centre prior (``evdet.models.simota.in_center_region``, the
    function ``simota_assign`` uses): anchor points sit at ``((i + 0.5) * s, (j + 0.5) * s)`` for the
    cells that overlap the input frame (``0 <= i < ceil(W / s)``); an anchor is a candidate of a box
    when it lies strictly within ``1.5 * s`` of the box centre on both axes (inside the box or not:
    SimOTA then ranks candidates by IoU and class cost). A box is covered at stride ``s`` when it has
    a candidate there. ``covered_share`` is the share of boxes covered at their owner level,
    ``covered_any_share`` at any level. Under this rule every box centred inside the frame has 4 to 9
    candidates at every level, so shares below 1 point at boxes centred outside the frame.

Data: a raw root (``<split>/*_bbox.npy``) or a preprocessed root
(``<split>/<seq>/labels_v2/labels.npz``, labels at source resolution, ``preprocess.json``).
"""

from __future__ import annotations

import io
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from evdet.data.labels import LabelFormatError, load_labels, to_bbox_array
from evdet.models.simota import CENTER_RADIUS, in_center_region

STRIDE_SETS: dict[str, tuple[int, ...]] = {
    "3-scale p4": (8, 16, 32),
    "4-scale p4": (4, 8, 16, 32),
    "3-scale p2": (4, 8, 16),
    "4-scale p2": (2, 4, 8, 16),
}
NARROW_RATIO = 0.5
THIN_SIDE_PX = 8.0


class AnalysisError(ValueError):
    """The data root cannot be analysed (layout, resolution, labels)."""


@dataclass(frozen=True)
class BoxSet:
    """Boxes in input pixels: (N,) arrays x, y (top-left), w, h and class_id."""

    x: np.ndarray
    y: np.ndarray
    w: np.ndarray
    h: np.ndarray
    class_id: np.ndarray


def owner_stride_index(max_side_px: np.ndarray, strides: Sequence[int]) -> np.ndarray:
    """(N,) index into ``strides`` of the owning level by the scale-range rule (see module doc)."""
    upper = 8.0 * np.asarray(strides[:-1], dtype=np.float64)
    return np.searchsorted(upper, np.asarray(max_side_px, dtype=np.float64), side="right")


def _candidates_1d(centre_px: np.ndarray, stride: float, cells: Optional[int]) -> np.ndarray:
    """(N,) anchor coordinates (i + 0.5) * stride, 0 <= i < cells, that the centre prior admits."""
    # every admitted i lies in (c / s - 0.5 - r, c / s - 0.5 + r): enumerate a superset, let the prior decide
    span = int(np.ceil(2 * CENTER_RADIUS)) + 2
    i = np.floor(centre_px / stride - 0.5 - CENTER_RADIUS)[:, None] + np.arange(span)
    admitted = in_center_region((i + 0.5) * stride, centre_px[:, None], stride) & (i >= 0)
    if cells is not None:
        admitted &= i < cells
    return admitted.sum(axis=1).astype(np.int64)


def centre_candidates(boxes: BoxSet, stride: int, input_hw: Optional[tuple[int, int]] = None) -> np.ndarray:
    """(N,) number of SimOTA centre-prior candidate anchors of each box at one stride.

    Args:
        input_hw: (H, W) input pixels, bounding the anchor grid to ceil(H / s) x ceil(W / s) cells
            (None: unbounded right and below).
    """
    rows, cols = (None, None) if input_hw is None else (math.ceil(input_hw[0] / stride),
                                                        math.ceil(input_hw[1] / stride))
    nx = _candidates_1d(boxes.x + boxes.w / 2, float(stride), cols)
    ny = _candidates_1d(boxes.y + boxes.h / 2, float(stride), rows)
    return nx * ny


def _percentiles(v: np.ndarray) -> dict[str, Optional[float]]:
    if v.size == 0:
        return {"P25": None, "P50": None, "P75": None}
    p = np.percentile(v, [25, 50, 75])
    return {"P25": float(p[0]), "P50": float(p[1]), "P75": float(p[2])}


def level_stats(boxes: BoxSet, strides: Sequence[int], input_hw: Optional[tuple[int, int]] = None) -> dict:
    """Owner-level shares, below-range share and SimOTA coverage of a box set for one stride set."""
    n = boxes.w.size
    max_side = np.maximum(boxes.w, boxes.h)
    owner = owner_stride_index(max_side, strides)
    cand = (np.stack([centre_candidates(boxes, s, input_hw) for s in strides]) if n
            else np.zeros((len(strides), 0)))
    covered_owner = cand[owner, np.arange(n)] > 0 if n else np.zeros(0, bool)
    share = lambda m: float(np.mean(m)) if n else None  # noqa: E731
    return {"strides": list(strides),
            "owner_share": {str(s): share(owner == i) for i, s in enumerate(strides)},
            "below_range_share": share(max_side < 4.0 * strides[0]),
            "covered_share": share(covered_owner),
            "covered_any_share": share((cand > 0).any(axis=0)) if n else None}


def class_stats(boxes: BoxSet, stride_sets: dict[str, tuple[int, ...]] = STRIDE_SETS,
                input_hw: Optional[tuple[int, int]] = None) -> dict:
    """Size statistics and level ownership of one class's boxes (input pixels; frame ``input_hw``)."""
    area = boxes.w.astype(np.float64) * boxes.h
    with np.errstate(divide="ignore", invalid="ignore"):
        aspect = np.where(boxes.h > 0, boxes.w / np.maximum(boxes.h, 1e-12), np.inf)
    n = boxes.w.size
    return {"area_px2": _percentiles(area), "aspect_w_over_h": _percentiles(aspect[np.isfinite(aspect)]),
            "narrow_share": float(np.mean(aspect < NARROW_RATIO)) if n else None,
            "thin_share": float(np.mean(np.minimum(boxes.w, boxes.h) < THIN_SIDE_PX)) if n else None,
            "levels": {name: level_stats(boxes, s, input_hw) for name, s in stride_sets.items()}}


def _hw(value: object, where: str) -> Optional[tuple[int, int]]:
    if value is None:
        return None
    if isinstance(value, dict) and "height" in value and "width" in value:
        return int(value["height"]), int(value["width"])
    if isinstance(value, (list, tuple)) and len(value) == 2:
        return int(value[0]), int(value[1])
    raise AnalysisError(f"{where}: expected [height, width], got {value!r}")


def load_boxes(root: Path, splits: Sequence[str] = ("train",)) -> tuple[np.ndarray, dict]:
    """All label boxes of ``splits`` (source pixels) and info {layout, source_hw, input_hw, files}."""
    from evdet.utils.yaml_files import load_yaml_file

    root = Path(root)
    if not root.is_dir():
        raise AnalysisError(f"{root}: no such data folder")
    arrays, files = [], 0
    pre = sorted(root.glob(f"{splits[0]}/*/labels_v2/labels.npz")) if splits else []
    layout = "preprocessed" if pre or (root / "preprocess.json").exists() else "raw"
    info: dict = {"layout": layout, "source_hw": None, "input_hw": None}
    for split in splits:
        if not (root / split).is_dir():
            raise AnalysisError(f"{root / split}: no such split folder")
        paths = sorted((root / split).glob("*/labels_v2/labels.npz" if layout == "preprocessed" else "*_bbox.npy"))
        for path in paths:
            if layout == "preprocessed":
                try:
                    with np.load(path, allow_pickle=False) as data:
                        arrays.append(to_bbox_array(data["labels"], source=f"{path}:labels"))
                except (KeyError, OSError, ValueError) as err:
                    raise AnalysisError(f"{path}: cannot read labels ({err})") from None
            else:
                try:
                    arrays.append(load_labels(path))
                except LabelFormatError as err:
                    raise AnalysisError(str(err)) from None
            files += 1
    if files == 0:
        raise AnalysisError(f"{root}: no label files in splits {list(splits)} "
                            "(expected <split>/*_bbox.npy or <split>/<seq>/labels_v2/labels.npz)")
    if layout == "preprocessed":
        from evdet.data.preprocessed import read_preprocess_info

        pinfo = read_preprocess_info(root)
        info["source_hw"] = _hw(pinfo.get("source_hw"), f"{root}/preprocess.json:source_hw")
        info["input_hw"] = _hw(pinfo.get("repr_hw"), f"{root}/preprocess.json:repr_hw")
    elif (root / "dataset.yaml").exists():
        doc = load_yaml_file(root / "dataset.yaml")
        for key in ("resolution", "sensor", "source_hw"):
            if key in doc:
                info["source_hw"] = _hw(doc[key], f"{root}/dataset.yaml:{key}")
                break
        if info["source_hw"] is None and "height" in doc and "width" in doc:
            info["source_hw"] = (int(doc["height"]), int(doc["width"]))
    info["files"] = files
    boxes = np.concatenate(arrays)
    return boxes, info


def analyze_boxes(boxes: np.ndarray, class_names: Sequence[str], *, scale_xy: tuple[float, float] = (1.0, 1.0),
                  results: Optional[dict] = None, protocol: Optional[str] = None,
                  stride_sets: dict[str, tuple[int, ...]] = STRIDE_SETS,
                  input_hw: Optional[tuple[int, int]] = None) -> dict:
    """Per-class analysis of a box array (BBOX_DTYPE, source pixels) scaled by ``scale_xy`` to input pixels.

    Args:
        scale_xy: (sx, sy) input / source size per axis.
        input_hw: input frame (H, W) that bounds the anchor grid (None: unbounded).
        results: a results.json document for per-class AP (``protocol``: default its first one).
    Returns:
        {"total": N, "protocol": p, "classes": {name: {support, data_share, AP, AP_share, efficiency,
        area_px2, aspect_w_over_h, narrow_share, thin_share, levels}}, "unknown_class_ids": [...]}
    """
    sx, sy = scale_xy
    bs = BoxSet(x=boxes["x"].astype(np.float64) * sx, y=boxes["y"].astype(np.float64) * sy,
                w=boxes["w"].astype(np.float64) * sx, h=boxes["h"].astype(np.float64) * sy,
                class_id=boxes["class_id"].astype(np.int64))
    total = int(bs.w.size)
    proto, per_class = None, {}
    if results is not None:
        protos = results.get("protocols", {})
        proto = protocol or (next(iter(protos)) if protos else None)
        if proto is not None and proto not in protos:
            raise AnalysisError(f"results have no protocol {proto!r}; found {list(protos)}")
        per_class = protos.get(proto, {}).get("per_class", {}) if proto else {}
        rnames = list(results.get("class_names") or [])
        if rnames and list(class_names) != rnames:
            raise AnalysisError(f"class maps differ: data {list(class_names)} vs results {rnames}")
    aps = {n: (per_class.get(n) or {}).get("AP") for n in class_names}
    ap_sum = sum(v for v in aps.values() if isinstance(v, (int, float)) and v is not None)
    out: dict = {"total": total, "protocol": proto, "classes": {},
                 "unknown_class_ids": sorted(set(int(c) for c in bs.class_id if c >= len(class_names)))}
    for cid, name in enumerate(class_names):
        m = bs.class_id == cid
        sub = BoxSet(bs.x[m], bs.y[m], bs.w[m], bs.h[m], bs.class_id[m])
        support = int(m.sum())
        share = support / total if total else 0.0
        ap = aps.get(name)
        ap_share = ap / ap_sum if ap is not None and ap_sum > 0 else None
        out["classes"][name] = {"support": support, "data_share": share, "AP": ap, "AP_share": ap_share,
                                "efficiency": ap_share / share if ap_share is not None and share > 0 else None,
                                **class_stats(sub, stride_sets, input_hw)}
    return out


def analyze_dataset(root: Path, *, splits: Sequence[str] = ("train",), results: Optional[dict] = None,
                    protocol: Optional[str] = None, input_hw: Optional[tuple[int, int]] = None,
                    source_hw: Optional[tuple[int, int]] = None) -> dict:
    """Load the labels of a data root and analyse them per class (see module doc).

    Args:
        input_hw: model input (height, width); default the preprocessed representation size, else the
            source size (no scaling).
        source_hw: label (height, width); default from preprocess.json / dataset.yaml.
    """
    from evdet.data.classes import load_class_map

    boxes, info = load_boxes(Path(root), splits)
    src = source_hw or info["source_hw"]
    inp = input_hw or info["input_hw"] or src
    if inp is not None and src is None:
        raise AnalysisError(f"{root}: input size given but the source (label) size is unknown; pass source_hw")
    scale = (inp[1] / src[1], inp[0] / src[0]) if inp and src else (1.0, 1.0)
    class_map = load_class_map(Path(root))
    out = analyze_boxes(boxes, class_map.names, scale_xy=scale, results=results, protocol=protocol,
                        input_hw=tuple(inp) if inp else None)
    out.update({"root": str(root), "layout": info["layout"], "splits": list(splits), "files": info["files"],
                "source_hw": list(src) if src else None, "input_hw": list(inp) if inp else None,
                "scale_xy": list(scale), "groups": {g: list(v) for g, v in class_map.groups.items()}})
    return out


def analysis_json(analysis: dict) -> str:
    """Pretty JSON text of an analysis."""
    return json.dumps(analysis, indent=2)


def plot_histograms(root: Path, analysis: dict, out_png: Path, *, splits: Sequence[str] = ("train",)) -> Path:
    """PNG: per-class histograms of sqrt(area) (px, log bins) with the 3-scale / 4-scale range edges."""
    from matplotlib.figure import Figure

    from evdet.utils.atomic import write_bytes_atomic

    boxes, _ = load_boxes(Path(root), splits)
    sx, sy = analysis["scale_xy"]
    side = np.sqrt(boxes["w"].astype(np.float64) * sx * boxes["h"] * sy)
    names = list(analysis["classes"])
    fig = Figure(figsize=(8, 4))
    ax = fig.subplots()
    bins = np.logspace(0, np.log10(max(float(side.max(initial=1.0)), 2.0)) + 0.05, 40)
    for cid, name in enumerate(names):
        v = side[boxes["class_id"] == cid]
        if v.size:
            ax.hist(v, bins=bins, histtype="step", label=f"{name} ({v.size})")
    for s in STRIDE_SETS["4-scale p4"]:
        ax.axvline(8 * s, color="grey", lw=0.8, ls="--")
    ax.set_xscale("log")
    ax.set_xlabel("sqrt(box area) [input px]; dashed: 8 x stride (level range edges)")
    ax.set_ylabel("boxes")
    ax.legend(fontsize=7)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    return write_bytes_atomic(out_png, buf.getvalue())
