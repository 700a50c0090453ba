"""Fixtures of the deployment tests: a small real checkpoint (nano, random weights), its ONNX export and a
tiny generated recording."""

from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch
from deploy_models import CLASS_NAMES, INPUT_HW, REPRESENTATION, make_module  # noqa: E402,F401

from evdet.events import make_events, write_events_h5



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
