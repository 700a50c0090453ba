"""Module registry: name -> builder, and the builders that turn ``ModulesConfig`` into the detector's parts.

A researcher's module is one file in this package that defines ``SPEC = ModuleSpec(...)``; the name goes
into ``model.modules.extra`` (README, "Architecture modules", has a worked example). Files are looked up
when a model is built (nothing registers at import time).

Sites: ``"stage"`` (after every backbone stage, on the refined stage output; the LSTM state is unchanged)
and ``"level"`` (after the FPN, on every level). A builder takes (channels, stride) and returns a module
mapping (B, C, H, W) -> (B, C, H, W).
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass, fields, is_dataclass
from typing import Callable, Literal, Optional, Sequence, get_args, get_origin, get_type_hints

from torch import nn

from evdet.models.config import ModulesConfig
from evdet.models.modules.density_fusion import DensityFusion
from evdet.models.modules.p1_enhance import P1Enhance
from evdet.models.modules.sites import LevelModules, StageModules
from evdet.models.modules.small_object_attention import SmallObjectAttention
from evdet.models.modules.squeeze_excitation import SqueezeExcitation
from evdet.models.modules.temporal_attention import TemporalAttention

Site = Literal["stage", "level"]
PACKAGE = "evdet.models.modules"
SCALE_AWARE_MAX_STRIDE = 8  # the scale-aware small-object attention acts on stages of stride <= 8


@dataclass(frozen=True)
class ModuleSpec:
    """A module that ``model.modules.extra`` can name.

    Attributes:
        name: the config key. site: "stage" or "level". build: (channels, stride) -> nn.Module.
        summary: one line for listings.
    """

    name: str
    site: Site
    build: Callable[[int, int], nn.Module]
    summary: str = ""


def registered_modules() -> dict[str, ModuleSpec]:
    """Every ``SPEC`` defined by a file of this package, by name."""
    found: dict[str, ModuleSpec] = {}
    package = importlib.import_module(PACKAGE)
    for info in pkgutil.iter_modules(package.__path__):
        spec = getattr(importlib.import_module(f"{PACKAGE}.{info.name}"), "SPEC", None)
        if isinstance(spec, ModuleSpec):
            if spec.name in found:
                raise ValueError(f"{PACKAGE}.{info.name}: module name {spec.name!r} is registered twice")
            found[spec.name] = spec
    return found


def find_module(name: str) -> ModuleSpec:
    """The spec registered under `name`; ValueError (one line, the known names) otherwise."""
    specs = registered_modules()
    if name not in specs:
        raise ValueError(f"model.modules.extra: unknown module {name!r}; registered: {sorted(specs)}")
    return specs[name]


def _extra_specs(cfg: ModulesConfig, site: Site) -> list[ModuleSpec]:
    return [spec for spec in map(find_module, cfg.extra) if spec.site == site]


def check_modules_config(cfg: ModulesConfig) -> None:
    """Every ``Literal`` choice of ``cfg`` is one of its allowed values (configs built in Python skip OmegaConf)."""
    for part in fields(cfg):
        sub = getattr(cfg, part.name)
        if not is_dataclass(sub):
            continue
        for name, hint in get_type_hints(type(sub)).items():
            if get_origin(hint) is Literal and getattr(sub, name) not in get_args(hint):
                raise ValueError(f"model.modules.{part.name}.{name}: {getattr(sub, name)!r} is not one of "
                                 f"{list(get_args(hint))}")


def _check_stages(field: str, stages: Sequence[int]) -> None:
    bad = [s for s in stages if int(s) not in (1, 2, 3, 4)]
    if bad or not stages:
        raise ValueError(f"model.modules.{field}: stages must be 1-based backbone stages in 1..4, got {tuple(stages)}")


def build_stage_modules(cfg: ModulesConfig, dims: Sequence[int], strides: Sequence[int]
                        ) -> list[Optional[StageModules]]:
    """Per backbone stage its StageModules, or None where no module acts on that stage."""
    check_modules_config(cfg)
    ta, soa, se = cfg.temporal_attention, cfg.small_object_attention, cfg.squeeze_excitation
    if ta.kind != "off":
        _check_stages("temporal_attention", ta.stages)
    if soa.kind != "off":
        _check_stages("small_object_attention", soa.stages)
    extras = _extra_specs(cfg, "stage")
    out: list[Optional[StageModules]] = []
    for i, (dim, stride) in enumerate(zip(dims, strides)):
        stage = i + 1
        temporal = (TemporalAttention(dim, ta.memory, ta.key_dim)
                    if ta.kind == "attention" and stage in ta.stages else None)
        small = None
        if soa.kind != "off" and stage in soa.stages and (not soa.scale_aware or stride <= SCALE_AWARE_MAX_STRIDE):
            strength = min(strides) / stride if soa.scale_aware else None
            small = SmallObjectAttention(dim, soa.kind, soa.reduction, soa.kernel_size, strength)
        squeeze = SqueezeExcitation(dim, se.reduction) if se.where in ("backbone", "both") else None
        extra = [spec.build(dim, stride) for spec in extras]
        if temporal is None and small is None and squeeze is None and not extra:
            out.append(None)
        else:
            out.append(StageModules(temporal, small, squeeze, extra))
    return out


def build_level_modules(cfg: ModulesConfig, channels: Sequence[int], strides: Sequence[int]
                        ) -> Optional[LevelModules]:
    """LevelModules over the FPN outputs (finest first), or None when no module acts there."""
    check_modules_config(cfg)
    se, p1 = cfg.squeeze_excitation, cfg.p1_enhance
    density = DensityFusion(strides) if cfg.density_fusion.kind == "gate" else None
    enhance = None
    if p1.kind == "refine":
        if min(strides) != 4:
            raise ValueError(f"model.modules.p1_enhance.kind='refine' needs a stride-4 FPN level (in_stages "
                             f"(1, 2, 3, 4) with patch_size 4); the finest level has stride {min(strides)}")
        enhance = P1Enhance(channels[0], p1.groups)
    squeeze = ([SqueezeExcitation(c, se.reduction) for c in channels] if se.where in ("fpn", "both") else None)
    extra = [[spec.build(c, s) for c, s in zip(channels, strides)] for spec in _extra_specs(cfg, "level")]
    if density is None and enhance is None and squeeze is None and not extra:
        return None
    return LevelModules(len(channels), density, enhance, squeeze, extra)
