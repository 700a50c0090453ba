"""Fixtures of the deployment tests: a small real checkpoint (nano, random weights), its ONNX export and a
tiny generated recording."""

from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch

from evdet.data.config import DataConfig
from evdet.events import make_events, write_events_h5
from evdet.models.config import HeadConfig, LossConfig, ModelConfig
from evdet.models.maxvit import LayerScale
from evdet.training.config import TrainConfig
from evdet.training.module import DetectionModule

INPUT_HW = (64, 96)
CLASS_NAMES = ("car", "pedestrian")
REPRESENTATION = "stacked_histogram_dt=50_nbins=10"


@pytest.fixture(scope="session", autouse=True)
def one_thread():
    """The machine is shared: one torch thread (restored after)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


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


@pytest.fixture(scope="session")
def checkpoint(tmp_path_factory) -> Path:
    """A Lightning checkpoint file as `evdet train` writes it (state_dict + hyper-parameters)."""
    module = make_module()
    path = tmp_path_factory.mktemp("ckpt") / "nano.ckpt"
    torch.save({"state_dict": module.state_dict(), "hyper_parameters": dict(module.hparams),
                "pytorch-lightning_version": L.__version__}, path)
    return path


@pytest.fixture(scope="session")
def onnx_model(checkpoint, tmp_path_factory) -> Path:
    """The checkpoint exported once (dynamic batch) through the CLI."""
    from typer.testing import CliRunner

    from evdet.cli import app

    out = tmp_path_factory.mktemp("onnx") / "nano.onnx"
    result = CliRunner().invoke(app, ["export", "onnx", str(checkpoint), str(out)])
    assert result.exit_code == 0, result.output
    return out


def random_frames(batch: int, steps: int, seed: int) -> np.ndarray:
    """(steps, batch, 20, H, W) sparse histogram-like counts 0..10 as float32."""
    rng = np.random.default_rng(seed)
    counts = rng.integers(0, 11, (steps, batch, 20, *INPUT_HW))
    return (counts * (rng.random(counts.shape) < 0.1)).astype(np.float32)


@pytest.fixture(scope="session")
def recording(tmp_path_factory) -> Path:
    """0.4 s of events at the model's size (96x64): background noise plus a bright square moving right."""
    rng = np.random.default_rng(3)
    n_noise, n_obj = 8000, 12000
    t = np.concatenate([rng.integers(0, 400_000, n_noise), rng.integers(0, 400_000, n_obj)])
    x_obj = 10 + (t[n_noise:] / 400_000 * 60).astype(int) + rng.integers(0, 16, n_obj)
    x = np.concatenate([rng.integers(0, INPUT_HW[1], n_noise), x_obj])
    y = np.concatenate([rng.integers(0, INPUT_HW[0], n_noise), 20 + rng.integers(0, 20, n_obj)])
    p = rng.integers(0, 2, t.size)
    order = np.argsort(t, kind="stable")
    events = make_events(t[order], x[order], y[order], p[order], height=INPUT_HW[0], width=INPUT_HW[1])
    path = tmp_path_factory.mktemp("rec") / "moving_td.h5"
    write_events_h5(path, events, *INPUT_HW)
    return path
