"""Squeeze-and-excitation: identity when the gate is 1, and the gate against a hand computation."""

import torch

from evdet.models.modules.squeeze_excitation import SqueezeExcitation


def test_gate_forced_to_one_is_identity():
    torch.manual_seed(0)
    se = SqueezeExcitation(8, reduction=2)
    se.gate = lambda x: torch.ones(x.shape[0], x.shape[1], 1, 1)  # force the gate to 1
    x = torch.randn(2, 8, 5, 7)
    assert torch.equal(se(x), x)


def test_saturated_gate_is_identity_to_float_precision():
    se = SqueezeExcitation(6, reduction=1)
    with torch.no_grad():
        se.fc2.weight.zero_()
        se.fc2.bias.fill_(40.0)  # sigmoid(40) == 1 in float32
    x = torch.randn(3, 6, 4, 4)
    assert torch.equal(se(x), x)


def test_gate_matches_hand_computation():
    se = SqueezeExcitation(2, reduction=1)  # hidden = max(2, 4) = 4
    with torch.no_grad():
        se.fc1.weight.zero_()
        se.fc1.bias.zero_()
        se.fc1.weight[0, 0, 0, 0] = 1.0    # hidden0 = relu(mean channel 0)
        se.fc1.weight[1, 1, 0, 0] = -1.0   # hidden1 = relu(-mean channel 1)
        se.fc2.weight.zero_()
        se.fc2.bias.copy_(torch.tensor([0.5, -0.5]))
        se.fc2.weight[0, 0, 0, 0] = 2.0
        se.fc2.weight[1, 1, 0, 0] = 3.0
    x = torch.zeros(1, 2, 2, 2)
    x[0, 0] = torch.tensor([[1.0, 2.0], [3.0, 6.0]])    # mean 3
    x[0, 1] = torch.tensor([[-1.0, -1.0], [-1.0, -5.0]])  # mean -2
    g0 = 1 / (1 + torch.exp(torch.tensor(-(2.0 * 3 + 0.5))))
    g1 = 1 / (1 + torch.exp(torch.tensor(-(3.0 * 2 - 0.5))))
    y = se(x)
    torch.testing.assert_close(y[0, 0], x[0, 0] * g0)
    torch.testing.assert_close(y[0, 1], x[0, 1] * g1)
