"""Cross-view fusion: pooled attention against a naive softmax, identity when zeroed or single-view,
views coupled only through the fusion, grouping errors."""

from dataclasses import replace

import pytest
import torch

from evdet.models import build_model
from evdet.models.config import FusionConfig, ModelConfig
from evdet.models.fusion import POSE_DIM, LevelFusion, topk_tokens

HW = (64, 96)


def _naive_block(block, x, mem):
    """One fusion block by hand: explicit per-head softmax, no sdpa, no reshapes of the module."""
    def ln(t, norm):
        mu = t.mean(-1, keepdim=True)
        var = ((t - mu) ** 2).mean(-1, keepdim=True)
        return (t - mu) / torch.sqrt(var + norm.eps) * norm.weight + norm.bias

    a = block.attn
    c = x.shape[-1]
    h = a.num_heads
    d = c // h
    q = ln(x, block.norm_q) @ a.q.weight.T + a.q.bias
    kv = ln(mem, block.norm_m) @ a.kv.weight.T + a.kv.bias
    k, v = kv[..., :c], kv[..., c:]
    out = torch.zeros_like(q)
    for g in range(x.shape[0]):
        for head in range(h):
            sl = slice(head * d, (head + 1) * d)
            logits = q[g, :, sl] @ k[g, :, sl].T / d ** 0.5
            w = torch.exp(logits - logits.max(-1, keepdim=True).values)
            w = w / w.sum(-1, keepdim=True)
            out[g, :, sl] = w @ v[g, :, sl]
    y = x + block.ls1.gamma * (out @ a.proj.weight.T + a.proj.bias)
    m = block.mlp
    hid = torch.nn.functional.gelu(ln(y, block.norm2) @ m.fc1.weight.T + m.fc1.bias)
    return y + block.ls2.gamma * (hid @ m.fc2.weight.T + m.fc2.bias)


def _level(k: int) -> LevelFusion:
    torch.manual_seed(0)
    lf = LevelFusion(8, 2, 1, 2, max_tokens=k, layer_scale_init=0.7, pose_embedding=False)
    return lf.double().eval()


@pytest.mark.parametrize("k", [12, 1000])
def test_pooled_attention_with_k_at_least_tokens_is_full_attention(k):
    x = torch.randn(2, 2, 8, 3, 4, dtype=torch.float64)          # (G, V, C, H, W): 12 tokens per view
    with torch.no_grad():
        got = _level(k)(x, None)
        lf = _level(k)
        tok = x.flatten(3).transpose(2, 3)
        for i, j in ((0, 1), (1, 0)):                           # each view attends to all of the other
            want = _naive_block(lf.blocks[0], tok[:, i], tok[:, j])
            assert torch.allclose(got[:, i].flatten(2).transpose(1, 2), want, atol=1e-10)


def test_pooled_attention_keeps_the_k_largest_norm_tokens():
    x = torch.randn(1, 2, 8, 3, 4, dtype=torch.float64)
    with torch.no_grad():
        got = _level(5)(x, None)
        lf = _level(5)
        tok = x.flatten(3).transpose(2, 3)
        norms = [float(tok[0, 1, n].norm()) for n in range(12)]
        keep = sorted(sorted(range(12), key=lambda n: -norms[n])[:5])   # hand top-5, original order
        want = _naive_block(lf.blocks[0], tok[:, 0], tok[:, 1, keep])
        assert torch.allclose(got[:, 0].flatten(2).transpose(1, 2), want, atol=1e-10)
    assert torch.equal(topk_tokens(tok[:, 1], 5), tok[:, 1, keep])


def _pair(views: int, **fusion):
    torch.manual_seed(0)
    single = build_model(ModelConfig(preset="nano"), num_classes=3, input_hw=HW).eval()
    cfg = ModelConfig(preset="nano", fusion=FusionConfig(enabled=True, num_views=views, **fusion))
    fused = build_model(cfg, num_classes=3, input_hw=HW).eval()
    missing, unexpected = fused.load_state_dict(single.state_dict(), strict=False)
    assert not unexpected and all(n.startswith("fusion.") for n in missing) and missing
    return single, fused


def _set_fusion_scale(model, value: float) -> None:
    for name, p in model.named_parameters():
        if name.startswith("fusion.") and name.endswith("gamma"):
            p.data.fill_(value)


def test_zeroed_fusion_is_the_single_view_model():
    single, fused = _pair(2, max_tokens=64)
    _set_fusion_scale(fused, 0.0)
    x = torch.rand(4, 3, 20, *HW)                   # 2 scenes x 2 views, 3 steps
    with torch.no_grad():
        a, b = single(x), fused(x)
    assert torch.equal(a.head.boxes, b.head.boxes) and torch.equal(a.head.obj_logits, b.head.obj_logits)
    assert torch.equal(a.head.cls_logits, b.head.cls_logits)
    assert all(torch.equal(sa[0], sb[0]) for sa, sb in zip(a.states, b.states))


def test_one_view_is_the_single_view_model_whatever_the_weights():
    single, fused = _pair(1)
    _set_fusion_scale(fused, 1.0)
    x = torch.rand(3, 2, 20, *HW)
    with torch.no_grad():
        a, b = single(x), fused(x)
    assert torch.equal(a.head.cls_logits, b.head.cls_logits) and torch.equal(a.head.boxes, b.head.boxes)


def test_views_meet_only_through_the_fusion():
    single, fused = _pair(2, max_tokens=16, pose_embedding=True)
    _set_fusion_scale(fused, 0.5)
    x = torch.rand(2, 2, 20, *HW)
    x2 = x.clone()
    x2[1] = torch.rand_like(x2[1])                  # change view 1 only
    pose = torch.randn(2, POSE_DIM)
    with torch.no_grad():
        f1, f2 = fused(x, view_pose=pose), fused(x2, view_pose=pose)
        s1, s2 = single(x), single(x2)
    n = 2                                            # head rows: item 0 (view 0) steps 0, 1 first
    assert torch.equal(s1.head.cls_logits[:n], s2.head.cls_logits[:n])
    assert not torch.allclose(f1.head.cls_logits[:n], f2.head.cls_logits[:n])
    # view 0 keeps its own recurrent state: its stage states do not depend on view 1
    assert all(torch.equal(a[0][0], b[0][0]) for a, b in zip(f1.states, f2.states))


def test_select_must_cover_every_view_of_a_scene():
    _, fused = _pair(2)
    select = torch.tensor([[True, False], [False, True]])
    with pytest.raises(ValueError, match="all 2 views"):
        fused(torch.rand(2, 2, 20, *HW), select=select)


def test_bad_fusion_levels():
    with pytest.raises(ValueError, match="fusion.levels"):
        build_model(replace(ModelConfig(preset="nano"), fusion=FusionConfig(enabled=True, levels=(3,))),
                    num_classes=2, input_hw=HW)
