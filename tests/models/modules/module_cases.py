"""Model configurations with architecture modules on, shared by the module tests (imported by name)."""

import torch

from evdet.models import build_model
from evdet.models.config import (DeformConvConfig, DensityFusionConfig, ModelConfig, ModulesConfig,
                                 P1EnhanceConfig, SmallObjectAttentionConfig, SqueezeExcitationConfig,
                                 TemporalAttentionConfig)
from evdet.models.maxvit import LayerScale
from evdet.models.modules.deform_conv import DeformConv2d
from evdet.models.modules.density_fusion import DensityFusion
from evdet.models.modules.temporal_attention import TemporalAttention

INPUT_HW = (64, 96)

ALL_MODULES = ModulesConfig(
    squeeze_excitation=SqueezeExcitationConfig(where="both"),
    deform_conv=DeformConvConfig(where="both"),
    small_object_attention=SmallObjectAttentionConfig(kind="cbam_motion", stages=(1, 2), scale_aware=True),
    temporal_attention=TemporalAttentionConfig(kind="attention", memory=2, stages=(2, 4)),
    density_fusion=DensityFusionConfig(kind="gate"),
    p1_enhance=P1EnhanceConfig(kind="refine"),
    extra=("channel_scale",),
)

# one entry per switch, each alone (the 4-scale FPN where P1 needs it)
SINGLE_MODULES = {
    "squeeze_excitation": ModulesConfig(squeeze_excitation=SqueezeExcitationConfig(where="both")),
    "deform_conv": ModulesConfig(deform_conv=DeformConvConfig(where="both")),
    "small_object_attention": ModulesConfig(small_object_attention=SmallObjectAttentionConfig(kind="cbam_motion")),
    "temporal_attention": ModulesConfig(temporal_attention=TemporalAttentionConfig(kind="attention")),
    "density_fusion": ModulesConfig(density_fusion=DensityFusionConfig(kind="gate")),
    "p1_enhance": ModulesConfig(p1_enhance=P1EnhanceConfig(kind="refine")),
}


def model_config(modules: ModulesConfig = ALL_MODULES) -> ModelConfig:
    return ModelConfig(preset="nano", partition_split=1, in_stages=(1, 2, 3, 4), modules=modules)


def wake_up(det, seed: int = 0):
    """Give the zero-initialised parts (LayerScale, offsets, temporal output, density gates) random values,
    so that every module changes the outputs (at initialisation most are exact identities)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in det.modules():
            if isinstance(m, LayerScale):
                m.gamma.copy_(0.3 + 0.3 * torch.rand(m.gamma.shape, generator=g))
            elif isinstance(m, DeformConv2d):
                m.offset_mask.weight.copy_(0.05 * torch.randn(m.offset_mask.weight.shape, generator=g))
            elif isinstance(m, TemporalAttention):
                m.out.weight.copy_(0.2 * torch.randn(m.out.weight.shape, generator=g))
            elif isinstance(m, DensityFusion):
                for conv in m.gates:
                    conv.weight.copy_(torch.randn(conv.weight.shape, generator=g))
    return det


def build(modules: ModulesConfig = ALL_MODULES, seed: int = 0):
    torch.manual_seed(seed)
    return wake_up(build_model(model_config(modules), 2, INPUT_HW, 20), seed).eval()


def frames(batch: int, steps: int, seed: int) -> torch.Tensor:
    """(B, T, 20, H, W) sparse counts 0..10."""
    g = torch.Generator().manual_seed(seed)
    counts = torch.randint(0, 11, (batch, steps, 20, *INPUT_HW), generator=g).float()
    return counts * (torch.rand(counts.shape, generator=g) < 0.1)
