"""Temporal attention over a memory of past outputs against a hand computation."""

import math

import pytest
import torch

from evdet.models.modules.temporal_attention import TemporalAttention


def identity_projections(att, out_scale):
    with torch.no_grad():
        for conv in (att.query, att.key, att.value):
            conv.weight.zero_()
            conv.bias.zero_()
            n = min(conv.weight.shape[:2])
            conv.weight[range(n), range(n), 0, 0] = 1.0
        att.out.weight.zero_()
        att.out.bias.zero_()
        att.out.weight[range(att.out.weight.shape[0]), range(att.out.weight.shape[0]), 0, 0] = out_scale


def test_memory_of_one_matches_hand_computation():
    att = TemporalAttention(channels=2, memory=1, key_dim=2)
    identity_projections(att, out_scale=0.5)
    h = torch.tensor([[[[1.0]], [[2.0]]]])          # (1, 2, 1, 1)
    m = torch.tensor([[[[[3.0]], [[-1.0]]]]])       # (1, K=1, 2, 1, 1)
    # q = k0 = v0 = h = (1, 2); k1 = v1 = m = (3, -1); logits q.k / sqrt(2): 5/sqrt2, 1/sqrt2
    l0, l1 = 5 / math.sqrt(2), 1 / math.sqrt(2)
    a0 = math.exp(l0) / (math.exp(l0) + math.exp(l1))
    fused = [a0 * 1 + (1 - a0) * 3, a0 * 2 + (1 - a0) * -1]
    want = torch.tensor([1 + 0.5 * fused[0], 2 + 0.5 * fused[1]]).reshape(1, 2, 1, 1)
    y, memory, valid = att(h, m, torch.ones(1, 1))
    torch.testing.assert_close(y, want)
    assert torch.equal(memory, h[:, None]) and torch.equal(valid, torch.ones(1, 1))


def test_empty_memory_attends_to_the_current_step_only():
    att = TemporalAttention(channels=2, memory=2, key_dim=2)
    identity_projections(att, out_scale=1.0)
    h = torch.randn(3, 2, 4, 5)
    memory, valid = att.empty_memory(h)
    y, memory, valid = att(h, memory + 100.0, valid)  # invalid entries are masked whatever they hold
    torch.testing.assert_close(y, 2 * h)                # h + v0
    assert torch.equal(valid, torch.tensor([[0.0, 1.0]] * 3))
    assert torch.equal(memory[:, 1], h) and torch.equal(memory[:, 0], torch.full_like(h, 100.0))


def test_memory_keeps_the_last_k_outputs_oldest_first():
    att = TemporalAttention(channels=1, memory=3)
    hs = [torch.full((1, 1, 2, 2), float(i)) for i in range(5)]
    memory, valid = att.empty_memory(hs[0])
    for h in hs:
        _, memory, valid = att(h, memory, valid)
    assert memory[0, :, 0, 0, 0].tolist() == [2.0, 3.0, 4.0]
    assert valid.tolist() == [[1.0, 1.0, 1.0]]


def test_zero_initialised_output_is_identity():
    att = TemporalAttention(channels=4, memory=2)
    h = torch.randn(2, 4, 3, 3)
    y, _, _ = att(h, torch.randn(2, 2, 4, 3, 3), torch.ones(2, 2))
    assert torch.equal(y, h)


def test_bad_memory_is_refused():
    with pytest.raises(ValueError, match="memory"):
        TemporalAttention(4, 0)
