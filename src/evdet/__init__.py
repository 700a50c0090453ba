"""evdet: event-camera object detection lab for traffic monitoring.

Packages, imported one way (events <- data <- models, training <- evaluation <- experiments <- cli):

- ``evdet.events``: read/write event recordings, time windows, tensor representations.
- ``evdet.data``: labels, class maps, synthetic scenes, RVT-layout preprocessing, sequences, sampling.
- ``evdet.models``: RVT backbone, PAFPN, YOLOX head, SimOTA, losses, post-processing.
- ``evdet.training``: Lightning system, recurrent state, optimiser, checkpoints, monitors.
- ``evdet.evaluation``: named protocols, COCO metrics, per-class / per-size / group results, confusion.
- ``evdet.experiments``: run config, experiment records, ranking, comparison, diagnostics, report.
"""

__version__ = "0.1.0"
