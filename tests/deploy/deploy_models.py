"""Models and inputs shared by the deployment tests (a module of its own: test files import it by name)."""


import numpy as np
import torch

from evdet.data.config import DataConfig
from evdet.models.config import HeadConfig, LossConfig, ModelConfig
from evdet.models.maxvit import LayerScale
from evdet.training.config import TrainConfig
from evdet.training.module import DetectionModule

INPUT_HW = (64, 96)
CLASS_NAMES = ("car", "pedestrian")
REPRESENTATION = "stacked_histogram_dt=50_nbins=10"


def make_module(seed: int = 0) -> DetectionModule:
    """Nano detector with random weights whose scores spread over (0, 1) (zero obj/cls biases, LayerScale
    opened, calibrated BatchNorm), so that a 0.5 threshold keeps a varying number of boxes per frame."""
    torch.manual_seed(seed)
    module = DetectionModule(DataConfig(representation=REPRESENTATION),
                             ModelConfig(preset="nano", partition_split=1,
                                         head=HeadConfig(conf_threshold=0.5, nms_iou=0.45, max_detections=100)),
                             LossConfig(), TrainConfig(), len(CLASS_NAMES), INPUT_HW, 20, CLASS_NAMES)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        # LayerScale starts at 1e-5 (blocks near identity): open it so that attention really counts
        for m in module.model.modules():
            if isinstance(m, LayerScale):
                m.gamma.copy_(0.5 + 0.5 * torch.rand(m.gamma.shape, generator=g))
        for conv in [*module.model.head.obj_preds, *module.model.head.cls_preds]:
            conv.bias.zero_()
        # BatchNorm statistics from two training-mode passes (as brief training would set them): unit-scale
        # activations instead of signals that shrink layer by layer at initialisation
        for m in module.model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.reset_running_stats()
                m.momentum = None  # cumulative average
        module.model.train()
        module.model(torch.from_numpy(random_frames(batch=2, steps=2, seed=99)).transpose(0, 1))
        for conv in module.model.head.reg_preds:
            conv.weight.mul_(0.1)  # box offsets and log-sizes of order 1 (w = exp(dw) * stride stays sane)
    return module.eval()


def random_frames(batch: int, steps: int, seed: int) -> np.ndarray:
    """(steps, batch, 20, H, W) sparse histogram-like counts 0..10 as float32."""
    rng = np.random.default_rng(seed)
    counts = rng.integers(0, 11, (steps, batch, 20, *INPUT_HW))
    return (counts * (rng.random(counts.shape) < 0.1)).astype(np.float32)
