"""Evaluation: named protocols with fingerprints, COCO metrics, per class / size / group, confusion.

```python
from evdet.evaluation import evaluate
res = evaluate(gt_list, dt_list, height=360, width=640, class_names=ETRAM, protocol="prophesee",
               source_hw=(720, 1280))
res.metrics["AP"], res.per_class["pedestrian"]["support"], res.to_dict()
```
"""

from evdet.evaluation.api import evaluate
from evdet.evaluation.protocols import PROTOCOLS, Protocol, fingerprint, get_protocol
from evdet.evaluation.result import EvalResult
from evdet.evaluation.save import save_evaluation

__all__ = ["evaluate", "EvalResult", "PROTOCOLS", "Protocol", "fingerprint", "get_protocol", "save_evaluation"]
