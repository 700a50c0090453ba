"""The export-time rewrites compute the detector's function (torch against torch, no export)."""

import torch

from evdet.deploy.export import RecurrentStep, state_shapes
from evdet.deploy.rewrite import FastConvLSTM, FastPartitionAttention, SplitChannelConv
from evdet.models import build_model
from evdet.models.config import ModelConfig
from evdet.models.maxvit import LayerScale


def test_rewritten_step_equals_detector_over_recurrent_steps():
    torch.manual_seed(0)
    # 60x90 needs padding to 64x96 (now inside the first convolution); 20 channels -> 2 groups of 10;
    # partitions (2, 3): windows and grids are not square
    det = build_model(ModelConfig(preset="nano", partition_split=1), 3, (60, 90), 20).eval()
    with torch.no_grad():
        for m in det.modules():
            if isinstance(m, LayerScale):
                m.gamma.fill_(0.7)  # attention and MLP branches count (1e-5 at initialisation)
    fast = RecurrentStep(det, (60, 90), fast=True).eval()
    assert isinstance(fast.detector.backbone.stages[0].downsample.conv, SplitChannelConv)
    assert fast.detector.backbone.stages[0].downsample.conv.sizes == [10, 10]
    assert isinstance(fast.detector.backbone.stages[2].blocks[0].grid, FastPartitionAttention)
    assert isinstance(fast.detector.backbone.stages[3].lstm, FastConvLSTM)
    assert det.backbone.stages[0].downsample.conv.__class__ is torch.nn.Conv2d  # the original is untouched
    states = [torch.zeros(2, *s) for s in state_shapes(det, (60, 90))]
    det_states = None
    for _ in range(3):
        x = torch.randint(0, 11, (2, 20, 60, 90)).float() * (torch.rand(2, 20, 60, 90) < 0.1)
        with torch.no_grad():
            out = fast(x, *states)
            ref = det(x, det_states)
        det_states = ref.states
        states = list(out[3:])
        torch.testing.assert_close(out[1], ref.head.obj_logits, rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(out[2], ref.head.cls_logits, rtol=1e-4, atol=1e-4)
        strides = ref.head.strides[None, :, None]  # boxes compared in stride units (raw regression scale)
        torch.testing.assert_close(out[0] / strides, ref.head.boxes / strides, rtol=1e-4, atol=1e-4)
        for got, want in zip(states, [t for pair in ref.states for t in pair]):
            torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)
