"""ConvLSTM cell against a per-pixel plain formula."""

import math

import torch

from evdet.models.convlstm import ConvLSTM2d


def sigmoid(v):
    return 1 / (1 + math.exp(-v))


def test_step_matches_per_pixel_formula():
    torch.manual_seed(0)
    dim = 2
    cell = ConvLSTM2d(dim)
    x = torch.randn(1, dim, 2, 3)
    h0 = torch.randn(1, dim, 2, 3)
    c0 = torch.randn(1, dim, 2, 3)
    with torch.no_grad():
        h1, c1 = cell(x, (h0, c0))
    weight = cell.conv1x1.weight[:, :, 0, 0].tolist()  # (4 * dim, 2 * dim)
    bias = cell.conv1x1.bias.tolist()
    for i in range(2):
        for j in range(3):
            xh = x[0, :, i, j].tolist() + h0[0, :, i, j].tolist()
            mix = [sum(w * v for w, v in zip(weight[o], xh)) + bias[o] for o in range(4 * dim)]
            for ch in range(dim):
                f = sigmoid(mix[ch])
                inp = sigmoid(mix[dim + ch])
                out = sigmoid(mix[2 * dim + ch])
                g = math.tanh(mix[3 * dim + ch])
                c = f * float(c0[0, ch, i, j]) + inp * g
                assert math.isclose(float(c1[0, ch, i, j]), c, abs_tol=1e-5)
                assert math.isclose(float(h1[0, ch, i, j]), out * math.tanh(c), abs_tol=1e-5)


def test_zero_state_default_and_param_count():
    cell = ConvLSTM2d(4)
    x = torch.randn(2, 4, 3, 3)
    h_a, c_a = cell(x)
    h_b, c_b = cell(x, (torch.zeros_like(x), torch.zeros_like(x)))
    assert torch.equal(h_a, h_b) and torch.equal(c_a, c_b)
    # 1x1 conv 2C -> 4C with bias; optional depthwise 3x3 on h adds C * 9 + C.
    assert sum(p.numel() for p in cell.parameters()) == 8 * 16 + 16
    dws = ConvLSTM2d(4, dws_conv=True)
    assert sum(p.numel() for p in dws.parameters()) == 8 * 16 + 16 + 4 * 9 + 4
