"""Presets, padding / partition rules, output shapes and strides of every variant."""

import pytest
import torch

from evdet.models import build_model, partition_size
from evdet.models.config import ModelConfig

# Reference parameter counts (RVT, 3-scale FPN, 2 classes) from DESIGN sec. 4.
REFERENCE_PARAMS_M = {"tiny": 4.405, "small": 9.870, "base": 18.536}


def count_params(model):
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("preset", sorted(REFERENCE_PARAMS_M))
def test_param_counts_match_reference(preset):
    model = build_model(ModelConfig(preset=preset), num_classes=2, input_hw=(360, 640))
    got_m = count_params(model) / 1e6
    assert abs(got_m - REFERENCE_PARAMS_M[preset]) / REFERENCE_PARAMS_M[preset] < 0.002


def test_head_num_classes_is_checked_against_the_data():
    from evdet.models.config import HeadConfig

    model = build_model(ModelConfig(preset="nano", head=HeadConfig(num_classes=3)), 3, (64, 96))
    assert model.head.cls_preds[0].out_channels == 3
    with pytest.raises(ValueError, match=r"model.head.num_classes=3 but the dataset's class map has 2 classes"):
        build_model(ModelConfig(preset="nano", head=HeadConfig(num_classes=3)), 2, (64, 96))


def test_head_width_and_heads_follow_presets():
    model = build_model(ModelConfig(preset="small"), 2, (360, 640))
    assert model.head.stems[0].conv.out_channels == 96
    heads = [stage.blocks[0].window.attn.num_heads for stage in model.backbone.stages]
    assert heads == [2, 4, 8, 16]
    nano = build_model(ModelConfig(preset="nano"), 2, (360, 640))
    assert nano.head.stems[0].conv.out_channels == 32
    assert [s.blocks[0].grid.attn.num_heads for s in nano.backbone.stages] == [1, 1, 2, 4]


@pytest.mark.parametrize("hw, split, expected", [
    ((360, 640), 2, (6, 10)),     # padded 384 x 640
    ((240, 304), 1, (8, 10)),     # Gen1: padded 256 x 320
    ((720, 1280), 2, (12, 20)),   # padded 768 x 1280
    ((64, 96), 2, (1, 2)),        # padded 64 x 128
])
def test_partition_rule(hw, split, expected):
    assert partition_size(hw, split) == expected


def test_first_stage_prior_is_7x7_stride_patch_and_layer_norm():
    model = build_model(ModelConfig(preset="tiny"), 2, (360, 640))
    conv = model.backbone.stages[0].downsample.conv
    assert conv.kernel_size == (7, 7) and conv.stride == (4, 4) and conv.padding == (3, 3) and conv.bias is None
    later = model.backbone.stages[1].downsample.conv
    assert later.kernel_size == (3, 3) and later.stride == (2, 2) and later.padding == (1, 1)
    assert isinstance(model.backbone.stages[0].blocks[0].window.norm1, torch.nn.Identity)
    assert isinstance(model.backbone.stages[0].blocks[0].grid.norm1, torch.nn.LayerNorm)


@pytest.mark.parametrize("patch, stages, strides", [
    (4, (2, 3, 4), (8, 16, 32)),
    (4, (1, 2, 3, 4), (4, 8, 16, 32)),
    (2, (2, 3, 4), (4, 8, 16)),
    (2, (1, 2, 3, 4), (2, 4, 8, 16)),
])
def test_output_shapes_and_strides(patch, stages, strides):
    hw = (60, 90)  # padded to 64 x 128 with partition_split 2
    cfg = ModelConfig(preset="nano", patch_size=patch, in_stages=stages)
    model = build_model(cfg, num_classes=3, input_hw=hw)
    assert model.strides == strides
    with torch.no_grad():
        out = model(torch.zeros(2, 20, *hw))
    num_anchors = sum((64 // s) * (128 // s) for s in strides)
    head = out.head
    assert head.boxes.shape == (2, num_anchors, 4)
    assert head.obj_logits.shape == (2, num_anchors)
    assert head.cls_logits.shape == (2, num_anchors, 3)
    assert head.input_hw == hw
    # Anchor centres and strides: finest level first, row-major, centre = (g + 0.5) * stride.
    s0 = strides[0]
    assert torch.equal(head.strides[:1], torch.tensor([float(s0)]))
    assert head.anchor_centers[0].tolist() == [s0 / 2, s0 / 2]
    assert head.anchor_centers[1].tolist() == [1.5 * s0, s0 / 2]
    last = strides[-1]
    assert head.strides[-1].item() == last
    assert head.anchor_centers[-1].tolist() == [(128 // last - 0.5) * last, (64 // last - 0.5) * last]
    # Backbone states: one (h, c) per stage at that stage's resolution of the padded input.
    for (h, c), dim, stride in zip(out.states, model.backbone.dims, model.backbone.strides):
        assert h.shape == c.shape == (2, dim, 64 // stride, 128 // stride)


def test_padding_is_zero_bottom_right():
    model = build_model(ModelConfig(preset="nano"), 2, (60, 90))
    x = torch.ones(1, 20, 60, 90)
    padded = model.pad_input(x)
    assert padded.shape == (1, 20, 64, 128)
    assert torch.equal(padded[..., :60, :90], x)
    assert padded[..., 60:, :].abs().sum() == 0 and padded[..., :, 90:].abs().sum() == 0


@pytest.mark.parametrize("kwargs, match", [
    ({"preset": "huge"}, "preset"),
    ({"patch_size": 3}, "patch_size"),
    ({"in_stages": (2, 4)}, "in_stages"),
    ({"partition_split": 0}, "partition_split"),
])
def test_bad_config_is_named(kwargs, match):
    # A bad value is refused with its key named, by the config itself or at the latest by build_model.
    with pytest.raises(ValueError, match=match):
        build_model(ModelConfig(**kwargs), 2, (64, 96))
