"""Label-efficient training: pseudo-labels from a teacher, temporal refinement, and their quality.

```python
from evdet.pseudo import PseudoLabelSettings, RefineConfig, pseudo_label_dataset, measure_pseudo_labels
pseudo_label_dataset("teacher.ckpt", "data/pre", "data/pseudo10",
                     PseudoLabelSettings(score_thr=0.4, class_thr=0.35, refine=RefineConfig(mode="track")))
res = measure_pseudo_labels("data/pre", "data/pseudo10")      # precision / recall vs withheld ground truth
```
"""

from evdet.pseudo.dataset import PseudoLabelSettings, load_provenance, pseudo_label_dataset
from evdet.pseudo.measure import measure_pseudo_labels, write_quality_report
from evdet.pseudo.quality import format_quality_table, match_frames, plot_quality_sweep, quality_table
from evdet.pseudo.refine import RefineConfig, effective_scores

__all__ = ["PseudoLabelSettings", "RefineConfig", "effective_scores", "format_quality_table", "load_provenance",
           "match_frames", "measure_pseudo_labels", "plot_quality_sweep", "pseudo_label_dataset", "quality_table",
           "write_quality_report"]
