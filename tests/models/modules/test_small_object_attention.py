"""Small-object attention (CBAM + motion gate) against hand computations."""

import pytest
import torch

from evdet.models.modules.small_object_attention import SmallObjectAttention


def sig(v):
    return 1 / (1 + torch.exp(-torch.as_tensor(v, dtype=torch.float32)))


def set_gate(gate, w_mean, w_max, bias):
    with torch.no_grad():
        gate.conv.weight.zero_()
        gate.conv.weight[0, 0, 0, 0] = w_mean
        gate.conv.weight[0, 1, 0, 0] = w_max
        gate.conv.bias.fill_(bias)


def test_motion_gate_matches_hand_computation():
    att = SmallObjectAttention(2, "motion", kernel_size=1)
    set_gate(att.motion, 1.0, 2.0, -1.0)
    x = torch.tensor([[[[1.0, 2.0]], [[3.0, 4.0]]]])           # (1, 2, 1, 2)
    h = torch.tensor([[[[0.5, 0.0]], [[-0.5, 1.0]]]])
    h_prev = torch.tensor([[[[0.0, 0.0]], [[0.5, 0.0]]]])
    # |dh| at pixel 0: (0.5, 1.0): mean 0.75, max 1.0; pixel 1: (0, 1): mean 0.5, max 1
    g0 = sig(0.75 + 2 * 1.0 - 1)
    g1 = sig(0.5 + 2 * 1.0 - 1)
    want = x * torch.stack([1 + g0, 1 + g1]).reshape(1, 1, 1, 2)
    torch.testing.assert_close(att(x, h, h_prev), want)


def test_no_motion_gives_a_constant_gate():
    att = SmallObjectAttention(3, "motion", kernel_size=3)
    set_gate(att.motion, 0.7, -0.3, 0.4)
    x = torch.randn(2, 3, 4, 5)
    h = torch.randn(2, 3, 4, 5)
    torch.testing.assert_close(att(x, h, h.clone()), x * (1 + sig(0.4)))


def test_cbam_matches_hand_computation():
    att = SmallObjectAttention(2, "cbam", reduction=1, kernel_size=1)
    with torch.no_grad():
        fc1, fc2 = att.channel.mlp[0], att.channel.mlp[2]
        fc1.weight.zero_()
        fc1.bias.zero_()
        fc1.weight[0, 0, 0, 0] = 1.0     # hidden0 = relu(pool of channel 0)
        fc2.weight.zero_()
        fc2.bias.zero_()
        fc2.weight[1, 0, 0, 0] = 1.0     # channel 1's logit = hidden0 (twice: avg and max branch)
    set_gate(att.spatial, 1.0, 0.0, 0.0)
    x = torch.tensor([[[[1.0, 3.0]], [[2.0, -2.0]]]])
    # channel logits: ch0 = 0, ch1 = relu(mean 2) + relu(max 3) = 5
    c = torch.tensor([0.5, float(sig(5.0))]).reshape(1, 2, 1, 1)
    y = x * c
    s = sig(y.mean(dim=1, keepdim=True))   # spatial logit = mean over channels
    torch.testing.assert_close(att(x, x, x), y * s)


def test_scale_aware_strength_mixes_with_the_input():
    att = SmallObjectAttention(2, "motion", kernel_size=1, strength=0.25)
    set_gate(att.motion, 0.0, 0.0, 0.0)  # gate 0.5 everywhere: attended = 1.5 x
    x = torch.randn(1, 2, 3, 3)
    torch.testing.assert_close(att(x, x, x), x + 0.25 * (1.5 * x - x))


def test_even_kernel_is_refused():
    with pytest.raises(ValueError, match="kernel_size"):
        SmallObjectAttention(4, "cbam", kernel_size=4)
