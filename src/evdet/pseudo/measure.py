"""Measure a pseudo-labelled dataset against the source dataset's withheld ground truth.

```python
from evdet.pseudo import measure_pseudo_labels, write_quality_report
res = measure_pseudo_labels("data/pre", "data/pseudo10")          # sweep over the stored candidates
res["rows"][k]["small_road_users"]["recall"]                         # share of small road users recovered
write_quality_report(res, "reports/pseudo10")                        # quality.json + quality_sweep.png
```
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal, Sequence

import numpy as np

from evdet.pseudo.quality import DEFAULT_THRESHOLDS, format_quality_table, match_frames, plot_quality_sweep, \
    quality_table


def measure_pseudo_labels(data_root: str | Path, pseudo_root: str | Path, *, split: str = "train",
                          boxes: Literal["candidates", "written"] = "candidates",
                          thresholds: Sequence[float] = DEFAULT_THRESHOLDS, iou_thr: float = 0.5) -> dict:
    """Precision / recall of the pseudo-labels of every withheld label frame, at each threshold.

    Args:
        data_root: the source dataset (its labels are the ground truth, SOURCE pixels).
        pseudo_root: output of ``pseudo_label_dataset``.
        boxes: "candidates" (every teacher box down to the candidate score: the full sweep) or
            "written" (the pseudo-labels written for training; thresholds below the writing threshold
            repeat its values).
    Returns:
        {"rows": quality_table rows, "class_names", "frames" (withheld frames measured), "boxes", "iou_thr",
        "split", "data_root", "pseudo_root"}.
    Raises:
        FileNotFoundError: a split or sequence missing, or a sequence without provenance.
    """
    from evdet.data.classes import load_class_map
    from evdet.data.labels import to_bbox_array
    from evdet.data.preprocessed import LABELS_DIR, list_sequences
    from evdet.pseudo.dataset import load_provenance

    data_root, pseudo_root = Path(data_root), Path(pseudo_root)
    names = load_class_map(data_root).names
    gt_list, ps_list, frames = [], [], 0
    for seq_dir in list_sequences(pseudo_root, split):
        prov = load_provenance(seq_dir)
        source = data_root / split / seq_dir.name
        if not source.is_dir():
            raise FileNotFoundError(f"{source}: the source dataset lacks the sequence {seq_dir.name}")
        with np.load(source / LABELS_DIR / "labels.npz", allow_pickle=False) as data:
            gt = to_bbox_array(data["labels"], source=str(source / LABELS_DIR / "labels.npz"))
        withheld = prov["withheld_t_us"]
        frames += int(withheld.size)
        gt_list.append(gt[np.isin(gt["t"], withheld)])
        if boxes == "candidates":
            ps_list.append(prov["candidates"])
        else:
            with np.load(seq_dir / LABELS_DIR / "labels.npz", allow_pickle=False) as data:
                written = to_bbox_array(data["labels"], source=str(seq_dir / LABELS_DIR / "labels.npz"))
            ps_list.append(written[prov["is_pseudo"].astype(bool)])
    matches = match_frames(gt_list, ps_list, iou_thr)
    return {"rows": quality_table(matches, names, thresholds), "class_names": list(names), "frames": frames,
            "boxes": boxes, "iou_thr": iou_thr, "split": split, "data_root": str(data_root),
            "pseudo_root": str(pseudo_root)}


def write_quality_report(result: dict, out_dir: str | Path, title: str = "") -> dict[str, Path]:
    """Write ``quality.json``, ``quality.txt`` (the table) and ``quality_sweep.png`` into ``out_dir``."""
    from evdet.utils.atomic import write_text_atomic

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"json": out_dir / "quality.json", "table": out_dir / "quality.txt", "plot": out_dir / "quality_sweep.png"}
    write_text_atomic(paths["json"], json.dumps(result, indent=1) + "\n")
    write_text_atomic(paths["table"], format_quality_table(result["rows"], result["class_names"]) + "\n")
    plot_quality_sweep(result["rows"], result["class_names"], paths["plot"],
                       title=title or f"pseudo-label quality ({result['frames']} withheld frames, IoU "
                                      f"{result['iou_thr']})")
    return paths
