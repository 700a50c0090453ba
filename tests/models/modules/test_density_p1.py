"""Density gate and P1 enhancement against hand computations and identities."""


import pytest
import torch

from evdet.models.modules.density_fusion import DensityFusion, event_density
from evdet.models.modules.p1_enhance import P1Enhance


def test_event_density_matches_hand_computation():
    x = torch.zeros(1, 2, 4, 4)
    x[0, 0, 0, 0] = 3.0
    x[0, 1, 1, 1] = 5.0      # top-left 2x2 cell: 8 events over 4 pixels
    x[0, 1, 3, 2] = 4.0      # bottom-right cell: 4 events
    want = torch.log1p(torch.tensor([[2.0, 0.0], [0.0, 1.0]]))
    torch.testing.assert_close(event_density(x, 2)[0, 0], want)


def test_density_gate_identity_at_init_and_hand_computed_gate():
    fusion = DensityFusion(strides=(2, 4))
    frames = torch.rand(2, 3, 8, 8) * 4
    levels = [torch.randn(2, 5, 4, 4), torch.randn(2, 6, 2, 2)]
    for got, want in zip(fusion(levels, frames), levels):
        assert torch.equal(got, want)
    with torch.no_grad():
        fusion.gates[1].weight.zero_()
        fusion.gates[1].weight[0, 0, 1, 1] = -1.0   # centre tap only
        fusion.gates[1].bias.fill_(0.5)
    out = fusion(levels, frames)
    d = torch.log1p(frames.sum(1).reshape(2, 2, 4, 2, 4).mean(dim=(2, 4)))   # (2, 2, 2) cells of 4x4 pixels
    gate = 2 / (1 + torch.exp(-(0.5 - d)))
    torch.testing.assert_close(out[1], levels[1] * gate[:, None], rtol=1e-5, atol=1e-6)


def test_p1_enhance_with_zero_strength_is_identity():
    p1 = P1Enhance(16, groups=8)
    with torch.no_grad():
        p1.gamma.zero_()
    x = torch.randn(2, 16, 6, 6)
    assert torch.equal(p1(x), x)


def test_p1_normalisation_is_per_item():
    torch.manual_seed(0)
    p1 = P1Enhance(8, groups=4).eval()
    x = torch.randn(2, 8, 5, 5)
    y = x.clone()
    y[1] = y[1] * 100 + 7   # another item with other statistics does not change item 0
    torch.testing.assert_close(p1(x)[0], p1(y)[0])
    norm = p1.norm(x)
    per_group = norm[0].reshape(4, -1)
    torch.testing.assert_close(per_group.mean(1), torch.zeros(4), atol=1e-5, rtol=0)


def test_p1_groups_must_divide_channels():
    with pytest.raises(ValueError, match="groups"):
        P1Enhance(12, groups=5)
