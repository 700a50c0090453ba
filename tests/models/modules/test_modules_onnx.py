"""ONNX export with every architecture module on: module states are explicit inputs / outputs, and ONNX Runtime
gives the torch model's outputs within 1e-4 over recurrent steps (the torch model is the oracle)."""

import numpy as np
import pytest
import torch
from module_cases import ALL_MODULES, INPUT_HW, build, frames, model_config

from evdet.data.config import DataConfig
from evdet.deploy.export import export_module_onnx
from evdet.deploy.onnx_runtime import OnnxDetector
from evdet.models.config import LossConfig
from evdet.training.config import TrainConfig
from evdet.training.module import DetectionModule

pytest.importorskip("onnxruntime")


@pytest.mark.slow
def test_onnx_with_all_modules_equals_torch_over_steps(tmp_path):
    module = DetectionModule(DataConfig(), model_config(ALL_MODULES), LossConfig(), TrainConfig(), 2, INPUT_HW, 20,
                             ("car", "pedestrian"))
    module.model.load_state_dict(build().state_dict())
    module.eval()
    info = export_module_onnx(module, tmp_path / "m.onnx", fast=True)
    names = info["state_names"]
    assert names == ["h1", "c1", "h2", "c2", "m2", "v2", "h3", "c3", "h4", "c4", "m4", "v4"]
    runtime = OnnxDetector(tmp_path / "m.onnx", threads=1)
    x = frames(2, 4, 7)
    states, torch_states = None, None
    for t in range(4):
        with torch.no_grad():
            ref = module.model(x[:, t], torch_states)
        torch_states = ref.states
        head, states = runtime.step(x[:, t].numpy(), states)
        np.testing.assert_allclose(head["obj_logits"], ref.head.obj_logits.numpy(), rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(head["cls_logits"], ref.head.cls_logits.numpy(), rtol=1e-4, atol=1e-4)
        strides = ref.head.strides.numpy()[None, :, None]  # boxes in stride units (the regression's scale)
        np.testing.assert_allclose(head["boxes"] / strides, ref.head.boxes.numpy() / strides, rtol=1e-4, atol=1e-4)
        flat = [s.numpy() for parts in torch_states for s in parts]
        assert len(states) == len(flat) == len(names)
        for name, got, want in zip(names, states, flat):
            np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4, err_msg=name)
