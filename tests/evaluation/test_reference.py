"""The prophesee protocol against a plain re-statement of the Prophesee / RVT evaluation on pycocotools."""

import contextlib
import io

import numpy as np
import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from evdet.evaluation import evaluate
from evdet.evaluation.coco import _dt_dataset, _gt_dataset, coco_precision
from evdet.evaluation.filters import prophesee_filter
from evdet.evaluation.matching import build_frames
from evdet.evaluation.protocols import PROTOCOLS

from eval_boxes import random_scene
from test_matching import reference_match_times


def reference_prophesee(gt_list, dt_list, height, width, n_classes, diag, side):
    """Filter, match times, build COCO dicts and summarise exactly as the reference pipeline does."""
    def keep(b):
        return b[(b["t"] > 500_000) * (b["w"] ** 2 + b["h"] ** 2 >= diag**2) * (b["w"] >= side) * (b["h"] >= side)]

    gts, dts = [], []
    for g, d in zip(gt_list, dt_list):
        g, d = keep(g), keep(d)
        win_g, win_d = reference_match_times(np.unique(g["t"]), g["t"], d["t"], 50_000)
        gts += [g[lo:hi] for lo, hi in win_g]
        dts += [d[lo:hi] for lo, hi in win_d]
    images, anns, results = [], [], []
    for im_id, (g, d) in enumerate(zip(gts, dts), start=1):
        images.append({"id": im_id, "height": height, "width": width, "file_name": "n.a"})
        for b in g:
            anns.append({"area": float(b["w"] * b["h"]), "iscrowd": False, "image_id": im_id,
                         "bbox": [b["x"], b["y"], b["w"], b["h"]], "category_id": int(b["class_id"]) + 1,
                         "id": len(anns) + 1})
        for b in d:
            results.append({"image_id": im_id, "category_id": int(b["class_id"]) + 1,
                            "score": float(b["class_confidence"]), "bbox": [b["x"], b["y"], b["w"], b["h"]]})
    cats = [{"id": i + 1, "name": str(i), "supercategory": "none"} for i in range(n_classes)]
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = {"images": images, "annotations": anns, "categories": cats}
        coco_gt.createIndex()
        coco_dt = coco_gt.loadRes(results)
        ev = COCOeval(coco_gt, coco_dt, "bbox")
        ev.params.imgIds = np.arange(1, len(gts) + 1, dtype=int)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return ev.stats[:6]


@pytest.mark.parametrize("seed, hw, thresholds", [(0, (360, 640), (30, 10)), (1, (720, 1280), (60, 20)),
                                                  (2, (240, 304), (30, 10))])
def test_prophesee_equals_reference_pipeline(seed, hw, thresholds):
    rng = np.random.default_rng(seed)
    gts, dts = random_scene(rng, n_seq=3, n_frames=12, n_classes=3, height=hw[0], width=hw[1])
    expected = reference_prophesee(gts, dts, hw[0], hw[1], 3, *thresholds)
    res = evaluate(gts, dts, height=hw[0], width=hw[1], class_names=["a", "b", "c"])
    got = [res.metrics[k] for k in ("AP", "AP50", "AP75", "AP_S", "AP_M", "AP_L")]
    got = [-1.0 if v is None else v for v in got]
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)
    assert res.metrics["AP"] > 0.01          # a meaningful scene, not an all-zero one


@pytest.mark.parametrize("class_agnostic", [False, True])
def test_faster_coco_eval_equals_pycocotools(class_agnostic):
    rng = np.random.default_rng(3)
    gts, dts = random_scene(rng, n_seq=2, n_frames=15, n_classes=4)
    frames = build_frames(gts, dts, 50_000)
    ranges = PROTOCOLS["full"].area_ranges_px2(360, 640, (720, 1280))
    a = coco_precision(frames, 4, 360, 640, ranges, class_agnostic=class_agnostic, backend="faster")
    b = coco_precision(frames, 4, 360, 640, ranges, class_agnostic=class_agnostic, backend="pycocotools")
    np.testing.assert_allclose(a.precision, b.precision, atol=1e-12)


def test_group_ap_equals_cocoeval_restricted_to_the_group():
    rng = np.random.default_rng(4)
    gts, dts = random_scene(rng, n_seq=2, n_frames=12, n_classes=4)
    names = ["a", "b", "c", "d"]
    res = evaluate(gts, dts, height=360, width=640, class_names=names, groups={"bc": ["b", "c"]})
    # re-run COCOeval on the protocol's frames with catIds = the group's categories (1-based)
    f = prophesee_filter(360, 640)
    frames = build_frames([f.apply(g) for g in gts], [f.apply(d) for d in dts], 50_000)
    gt_ds = _gt_dataset(frames, 4, 360, 640)
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = gt_ds
        coco_gt.createIndex()
        coco_dt = COCO()
        coco_dt.dataset = _dt_dataset(frames, gt_ds)
        coco_dt.createIndex()
        ev = COCOeval(coco_gt, coco_dt, "bbox")
        ev.params.imgIds = list(range(1, frames.num_images + 1))
        ev.params.catIds = [2, 3]
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    assert res.groups["bc"]["AP"] == pytest.approx(ev.stats[0], abs=1e-12)
    assert res.groups["bc"]["AP50"] == pytest.approx(ev.stats[1], abs=1e-12)
