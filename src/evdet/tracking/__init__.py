"""Multi-object tracking by detection (ByteTrack-style) and tracking metrics (HOTA, MOTA, MOTP, IDF1).

```python
from evdet.tracking import TrackerConfig, track_sequence, evaluate_tracking, track_and_evaluate
tracks = track_sequence(detections, TrackerConfig(high_score=0.5))     # BBOX arrays with track_id
res = evaluate_tracking(gt_list, [tracks], class_names=["car", "pedestrian"])
res["overall"]["HOTA"], res["per_class"]["car"]["MOTA"]
```
"""

from evdet.tracking.bytetrack import ByteTracker, TrackerConfig, track_sequence
from evdet.tracking.evaluate import evaluate_tracking, track_and_evaluate

__all__ = ["ByteTracker", "TrackerConfig", "evaluate_tracking", "track_and_evaluate", "track_sequence"]
