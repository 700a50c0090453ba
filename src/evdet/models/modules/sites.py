"""Where modules sit in the detector: after a backbone stage (``StageModules``) and after the FPN, per
level (``LevelModules``). Built by ``evdet.models.modules.registry``; absent (None) when every module is off.
"""

from __future__ import annotations

from typing import Optional, Sequence

from torch import Tensor, nn

from evdet.models.modules.density_fusion import DensityFusion
from evdet.models.modules.p1_enhance import P1Enhance
from evdet.models.modules.small_object_attention import SmallObjectAttention
from evdet.models.modules.squeeze_excitation import SqueezeExcitation
from evdet.models.modules.temporal_attention import TemporalAttention


class StageModules(nn.Module):
    """Modules on one stage's output, in this order: temporal attention, small-object attention, SE, extras.

    The LSTM's (h, c) stay the recurrent state; the refined output feeds the next stage and the FPN.
    Temporal attention adds its memory and valid flags to the stage's state: (h, c, memory, valid).
    """

    def __init__(self, temporal: Optional[TemporalAttention] = None,
                 small_object: Optional[SmallObjectAttention] = None,
                 squeeze_excitation: Optional[SqueezeExcitation] = None, extra: Sequence[nn.Module] = ()) -> None:
        super().__init__()
        self.temporal = temporal
        self.small_object = small_object
        self.squeeze_excitation = squeeze_excitation
        self.extra = nn.ModuleList(extra)

    @property
    def num_extra_states(self) -> int:
        """State tensors beyond (h, c): memory and valid flags with temporal attention, else none."""
        return 2 if self.temporal is not None else 0

    def extra_state_shapes(self, channels: int, hw: tuple[int, int]) -> list[tuple[str, tuple[int, ...]]]:
        """(name, per-item shape) of the extra state tensors for a stage output of (channels, *hw)."""
        if self.temporal is None:
            return []
        k = self.temporal.memory
        return [("m", (k, channels, *hw)), ("v", (k,))]

    def forward(self, h: Tensor, h_prev: Tensor, extra_state: Sequence[Tensor]) -> tuple[Tensor, list[Tensor]]:
        """h, h_prev (B, C, H, W): the LSTM's h after / before this step; extra_state () at a fresh start.

        Returns:
            (stage output (B, C, H, W), new extra state tensors).
        """
        y, new_state = h, []
        if self.temporal is not None:
            memory, valid = extra_state if len(extra_state) == 2 else self.temporal.empty_memory(h)
            y, memory, valid = self.temporal(h, memory, valid)
            new_state = [memory, valid]
        if self.small_object is not None:
            y = self.small_object(y, h, h_prev)
        if self.squeeze_excitation is not None:
            y = self.squeeze_excitation(y)
        for module in self.extra:
            y = module(y)
        return y, new_state


class LevelModules(nn.Module):
    """Modules on the FPN outputs, in this order: density gate, P1 enhancement, SE, extras (per level)."""

    def __init__(self, num_levels: int, density: Optional[DensityFusion] = None, p1: Optional[P1Enhance] = None,
                 squeeze_excitation: Optional[Sequence[nn.Module]] = None,
                 extra: Sequence[Sequence[nn.Module]] = ()) -> None:
        super().__init__()
        self.num_levels = int(num_levels)
        self.density = density
        self.p1 = p1
        self.squeeze_excitation = None if squeeze_excitation is None else nn.ModuleList(squeeze_excitation)
        self.extra = nn.ModuleList(nn.ModuleList(per_level) for per_level in extra)

    @property
    def needs_frames(self) -> bool:
        """Whether forward reads the input frames (the density gate)."""
        return self.density is not None

    def forward(self, levels: Sequence[Tensor], frames: Optional[Tensor] = None) -> list[Tensor]:
        """FPN outputs per level (N, C_l, H_l, W_l) (finest first); frames (N, C_in, H, W) padded input of the
        same N items (needed with the density gate)."""
        out = list(levels)
        if self.density is not None:
            out = self.density(out, frames)
        if self.p1 is not None:
            out[0] = self.p1(out[0])
        if self.squeeze_excitation is not None:
            out = [se(x) for se, x in zip(self.squeeze_excitation, out)]
        for modules in self.extra:
            out = [m(x) for m, x in zip(modules, out)]
        return out
