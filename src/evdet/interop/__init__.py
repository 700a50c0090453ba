"""Bridges to frame-based tools: Ultralytics YOLO dataset export, and evaluation of other detectors'
files (YOLO text, Prophesee ``_bbox.npy``) under evdet's protocols, kept as experiment records.

```python
from evdet.interop import export_yolo, evaluate_external, save_external_record
export_yolo("data/pre", "data/yolo", representation="histogram")
results, info = evaluate_external("data/pre", "runs/detect/predict/labels", "yolo", split="val")
results["prophesee"].metrics["AP"]
```
"""

from evdet.interop.export_yolo import export_yolo, render_frame
from evdet.interop.external import evaluate_external, save_external_record
from evdet.interop.yolo import YoloFormatError, frame_stem, read_prediction_file

__all__ = [
           "YoloFormatError",
           "evaluate_external",
           "export_yolo",
           "frame_stem",
           "read_prediction_file",
           "render_frame",
           "save_external_record",
]
