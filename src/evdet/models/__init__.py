"""RVT-family detector in pure torch: recurrent MaxViT backbone, PAFPN, YOLOX head, SimOTA loss."""

from evdet.models.build import PRESETS, build_loss, build_model, partition_size
from evdet.models.detector import Detector, DetectorOutput
from evdet.models.losses import YoloxLoss
from evdet.models.yolox_head import HeadOutput

__all__ = ["PRESETS", "Detector", "DetectorOutput", "HeadOutput", "YoloxLoss", "build_loss", "build_model",
           "partition_size"]
