"""Hostile files for the tests: a malicious pickle inside a real checkpoint, and the CLI's one-line check."""

import os
from pathlib import Path

import torch
from typer.testing import CliRunner

from evdet.cli import app
from evdet.data.config import DataConfig
from evdet.models.config import HeadConfig, LossConfig, ModelConfig
from evdet.training.config import TrainConfig
from evdet.training.module import DetectionModule


class RunsCode:
    """Unpickling this runs ``touch <marker>`` (what a planted checkpoint would do with worse commands)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch '{self.marker}'",)


def save_module_checkpoint(path: Path, root: Path, representation: str, label_fraction: float = 0.5) -> Path:
    """A checkpoint as ``evdet train`` writes it (state_dict + hyper_parameters) of an untrained nano model for
    the tiny dataset (64 x 96, 4 channels); trained on ``label_fraction`` of the labels (pseudo-label needs < 1)."""
    torch.manual_seed(0)
    module = DetectionModule(DataConfig(root=str(root), representation=representation, seq_len=2, batch_size=2,
                                        num_workers=0, label_fraction=label_fraction),
                             ModelConfig(preset="nano", partition_split=1,
                                         head=HeadConfig(conf_threshold=0.01, max_detections=20)),
                             LossConfig(), TrainConfig(max_steps=2, accelerator="cpu"), 2, (64, 96), 4,
                             ("car", "pedestrian"))
    torch.save({"state_dict": module.state_dict(), "hyper_parameters": dict(module.hparams), "global_step": 0},
               path)
    return path


def evil_copy(src: Path, dst: Path, marker: Path) -> Path:
    """``src`` with a ``RunsCode`` object planted among its hyper-parameters, saved to ``dst``."""
    ckpt = torch.load(src, map_location="cpu", weights_only=False)   # our own file: trusted
    ckpt["hyper_parameters"]["note"] = RunsCode(marker)
    torch.save(ckpt, dst)
    return dst


def one_line_error(args, **kwargs) -> str:
    """Run the CLI; assert exit 1 with one ``error: ...`` line and no traceback; return that line."""
    result = CliRunner().invoke(app, [str(a) for a in args], **kwargs)
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    return lines[0]
