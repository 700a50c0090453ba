"""Load RVT checkpoints (uzh-rpg/RVT Lightning checkpoints, and forks such as eTraM's) into evdet models.

An RVT checkpoint is a Lightning file whose ``state_dict`` holds the detector under the prefix
``mdl.`` (RVT's ``YoloXDetector``: ``backbone``, ``fpn``, ``yolox_head``) and no model config. The
architecture is read from the tensor shapes:

- stage dims from ``backbone.stages.<i>.downsample_cf2cl.conv.weight`` (must be one of evdet's
  presets: tiny 32/64/128/256, small 48/96/192/384, base 64/128/256/512; RVT's dim_head, 32 or 24
  for small, gives the same head counts as the preset), input channels from stage 1's conv, the
  patch size from its kernel (7: patch 4, 3: patch 2);
- FPN levels (3 -> in_stages (2, 3, 4), 4 -> (1, 2, 3, 4)) from ``yolox_head.stems.<k>``, the FPN
  depth from the bottlenecks of ``fpn.C3_p4.m`` (must match the preset);
- classes from ``yolox_head.cls_preds.0.weight``.

Names map one to one (``downsample_cf2cl`` -> ``downsample``, ``att_blocks.<b>.att_window`` ->
``blocks.<b>.window``, ``self_attn`` -> ``attn``, ``mlp.net.0.0`` / ``mlp.net.2`` ->
``mlp.fc1`` / ``mlp.fc2``, the PAFPN's YOLOX names -> ``neck.lateral / td_csp / down / bu_csp``,
``yolox_head`` -> ``head``). RVT's fused qkv projection is laid out per head (its output is viewed
as (heads, 3 * head_dim): q, k, v side by side inside each head) while evdet's is q | k | v: the
rows of qkv weights and biases are permuted. RVT's own PAFPN has 3 levels; a 4-level checkpoint
must use the YOLOX-style names of the extra steps (``reduce_conv2``, ``C3_p2``, ``bu_conv3``,
``C3_n2``). The stage-1 ``mask_token`` (token masking during training) is not used at inference
and is dropped.

Not in the weights, so given by the caller: the input resolution and ``partition_split``
(RVT: 1 for Gen1 304x240, 2 for Gen4 / eTraM at 640x360), which set the attention partitions.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from torch import Tensor

from evdet.models.build import PRESETS, build_model
from evdet.models.config import HeadConfig, ModelConfig
from evdet.models.detector import Detector
from evdet.utils.safe_load import UntrustedCheckpointError, load_torch_file

_PREFIX = "mdl."
_DROPPED = re.compile(r"backbone\.stages\.0\.mask_token$")


class RvtCheckpointError(ValueError):
    """A file that is not an RVT checkpoint evdet can load; the message names the file and the key."""


@dataclass(frozen=True)
class RvtArchitecture:
    """What an RVT state dict's shapes say about the model."""

    preset: str
    patch_size: int
    in_stages: tuple[int, ...]
    num_classes: int
    in_channels: int

    def model_config(self, partition_split: int, head: Optional[HeadConfig] = None) -> ModelConfig:
        """evdet's ModelConfig of this architecture (RVT's post-processing defaults unless ``head``)."""
        return ModelConfig(preset=self.preset, patch_size=self.patch_size, in_stages=self.in_stages,
                           partition_split=partition_split, head=head or HeadConfig())


def default_partition_split(input_hw: tuple[int, int]) -> int:
    """RVT's ``partition_split_32``: 1 for Gen1 (240x304), else 2 (Gen4 / eTraM at 360x640 and others)."""
    return 1 if tuple(input_hw) == (240, 304) else 2


def recorded_input_hw(path: str | Path, *, trusted: bool = False) -> Optional[tuple[int, int]]:
    """(height, width) of the model input an RVT checkpoint records, or None.

    RVT's ``Module`` does not save its config, so its released checkpoints record no size; a
    checkpoint whose ``hyper_parameters`` hold the full config gives ``dataset.resolution_hw``
    (halved with ``downsample_by_factor_2``). The weights cannot tell: without relative position
    bias, attention partitions leave no trace in the tensors.
    """
    ckpt = load_torch_file(Path(path), trusted=trusted)
    hp = ckpt.get("hyper_parameters") if isinstance(ckpt, dict) else None
    dataset = _find_key(hp, "dataset") if isinstance(hp, dict) else None
    if not isinstance(dataset, dict) or "resolution_hw" not in dataset:
        return None
    h, w = (int(v) for v in dataset["resolution_hw"])
    return (h // 2, w // 2) if dataset.get("downsample_by_factor_2") else (h, w)


def _find_key(d: dict, key: str):
    """The first value of ``key`` in nested dicts (depth first), or None."""
    if key in d:
        return d[key]
    for v in d.values():
        if isinstance(v, dict):
            found = _find_key(v, key)
            if found is not None:
                return found
    return None


def read_rvt_state_dict(path: str | Path, *, trusted: bool = False) -> dict[str, Tensor]:
    """The detector's tensors of an RVT checkpoint, without the ``mdl.`` prefix.

    Args:
        trusted: allow pickled Python objects besides tensors (only for files you trust).
    Raises:
        RvtCheckpointError: missing / unreadable file, no ``state_dict``, no ``mdl.`` keys.
    """
    path = Path(path)
    if not path.is_file():
        raise RvtCheckpointError(f"{path}: checkpoint not found")
    try:
        ckpt = load_torch_file(path, trusted=trusted)
    except UntrustedCheckpointError:
        raise
    except ValueError as err:
        raise RvtCheckpointError(f"{path}: cannot read as a torch checkpoint: "
                                 f"{str(err).removeprefix(f'{path}: ')}") from None
    if not isinstance(ckpt, dict):
        raise RvtCheckpointError(f"{path}: holds a {type(ckpt).__name__}, not a checkpoint dict")
    raw = bool(ckpt) and all(isinstance(v, Tensor) for v in ckpt.values())    # a bare state dict
    state = ckpt if raw else ckpt.get("state_dict")
    if not isinstance(state, dict) or not state:
        raise RvtCheckpointError(f"{path}: no 'state_dict' (top-level keys: {sorted(map(str, ckpt))[:8]})")
    keys = list(state)
    if any(k.startswith(_PREFIX) for k in keys):
        other = [k for k in keys if not k.startswith(_PREFIX)]
        if other:
            raise RvtCheckpointError(f"{path}: key {other[0]!r} is outside RVT's detector ('{_PREFIX}...')")
        state = {k[len(_PREFIX):]: v for k, v in state.items()}
    for k, v in state.items():
        if not isinstance(v, Tensor):
            raise RvtCheckpointError(f"{path}: key {k!r} is not a tensor")
    return state


def _shape(state: dict[str, Tensor], key: str, source: str) -> tuple[int, ...]:
    if key not in state:
        raise RvtCheckpointError(f"{source}: missing key {_PREFIX}{key} (not an RVT detector checkpoint?)")
    return tuple(state[key].shape)


def infer_rvt_architecture(state: dict[str, Tensor], source: str = "<state_dict>") -> RvtArchitecture:
    """Preset, patch size, FPN stages, classes and input channels from the tensor shapes.

    Raises:
        RvtCheckpointError: naming the key whose shape fits no evdet architecture.
    """
    dims, in_channels, patch = [], 0, 0
    for i in range(4):
        key = f"backbone.stages.{i}.downsample_cf2cl.conv.weight"
        shape = _shape(state, key, source)
        if len(shape) != 4 or shape[2] != shape[3]:
            raise RvtCheckpointError(f"{source}: {_PREFIX}{key} has shape {shape}, expected (C_out, C_in, k, k)")
        dims.append(shape[0])
        if i == 0:
            in_channels = shape[1]
            kernel_to_patch = {7: 4, 3: 2}
            if shape[2] not in kernel_to_patch:
                raise RvtCheckpointError(f"{source}: {_PREFIX}{key} has a {shape[2]}x{shape[2]} kernel; evdet "
                                         "supports patch size 4 (7x7) or 2 (3x3)")
            patch = kernel_to_patch[shape[2]]
    preset = next((name for name, p in PRESETS.items() if list(p.dims) == dims and name != "nano"), None)
    if preset is None:
        known = {n: list(p.dims) for n, p in PRESETS.items() if n != "nano"}
        raise RvtCheckpointError(f"{source}: stage dims {dims} (from {_PREFIX}backbone.stages.*.downsample_cf2cl."
                                 f"conv.weight) match no preset; known: {known}")
    levels = 0
    while f"yolox_head.stems.{levels}.conv.weight" in state:
        levels += 1
    if levels not in (3, 4):
        raise RvtCheckpointError(f"{source}: {levels} head levels ({_PREFIX}yolox_head.stems.*); expected 3 or 4")
    in_stages = tuple(range(5 - levels, 5))
    for k, stage in enumerate(in_stages):
        key = f"yolox_head.stems.{k}.conv.weight"
        got = _shape(state, key, source)[1]
        if got != dims[stage - 1]:
            raise RvtCheckpointError(f"{source}: {_PREFIX}{key} takes {got} channels, but stage {stage} has "
                                     f"{dims[stage - 1]}")
    bottlenecks = len({k.split(".")[3] for k in state if k.startswith("fpn.C3_p4.m.")})
    expected = round(3 * PRESETS[preset].fpn_depth)
    if bottlenecks != expected:
        raise RvtCheckpointError(f"{source}: {_PREFIX}fpn.C3_p4.m has {bottlenecks} bottlenecks; preset {preset} "
                                 f"(dims {dims}) has FPN depth {PRESETS[preset].fpn_depth} -> {expected}")
    num_classes = _shape(state, "yolox_head.cls_preds.0.weight", source)[0]
    return RvtArchitecture(preset, patch, in_stages, num_classes, in_channels)


def _fpn_names(levels: int) -> dict[str, str]:
    """evdet PAFPN module path -> RVT/YOLOX name, for ``levels`` FPN levels (finest first)."""
    top = levels - 1
    names = {}
    for j in range(top):
        k = top - 1 - j                       # 0 for the coarsest lateral
        names[f"lateral.{j}"] = "lateral_conv0" if k == 0 else f"reduce_conv{k}"
        names[f"td_csp.{j}"] = f"C3_p{j + 5 - top}"
        names[f"down.{j}"] = f"bu_conv{top - j}"
        names[f"bu_csp.{j}"] = f"C3_n{j + 5 - top}"
    return names


def rvt_key(evdet_key: str, levels: int) -> str:
    """The RVT state-dict key (without ``mdl.``) of an evdet Detector key."""
    m = re.match(r"backbone\.stages\.(\d+)\.(.*)$", evdet_key)
    if m:
        stage, rest = m.groups()
        rest = re.sub(r"^downsample\.", "downsample_cf2cl.", rest)
        rest = re.sub(r"^blocks\.(\d+)\.window\.", r"att_blocks.\1.att_window.", rest)
        rest = re.sub(r"^blocks\.(\d+)\.grid\.", r"att_blocks.\1.att_grid.", rest)
        rest = rest.replace(".attn.", ".self_attn.").replace(".mlp.fc1.", ".mlp.net.0.0.")
        rest = rest.replace(".mlp.fc2.", ".mlp.net.2.")
        return f"backbone.stages.{stage}.{rest}"
    m = re.match(r"neck\.(lateral|td_csp|down|bu_csp)\.(\d+)\.(.*)$", evdet_key)
    if m:
        part, j, rest = m.groups()
        return f"fpn.{_fpn_names(levels)[f'{part}.{j}']}.{rest}"
    if evdet_key.startswith("head."):
        return "yolox_head." + evdet_key[len("head."):]
    raise KeyError(evdet_key)


def qkv_rows_per_head_to_stacked(t: Tensor, num_heads: int) -> Tensor:
    """Reorder a fused qkv weight (3C, C) or bias (3C,) from RVT's per-head layout to q | k | v.

    RVT row ``(h * 3 + s) * d + i`` (head h, s in q/k/v, i < head_dim d) becomes evdet row
    ``(s * heads + h) * d + i``.
    """
    head_dim = t.shape[0] // (3 * num_heads)
    rest = t.shape[1:]
    return t.reshape(num_heads, 3, head_dim, *rest).transpose(0, 1).reshape(t.shape)


def convert_rvt_state_dict(state: dict[str, Tensor], model: Detector, source: str = "<state_dict>"
                           ) -> dict[str, Tensor]:
    """RVT tensors (``mdl.`` removed) -> the state dict of an evdet ``model`` of the same architecture.

    Raises:
        RvtCheckpointError: naming the first RVT key that does not fit (unknown, or wrong shape), or the
            first key the model needs and the checkpoint lacks.
    """
    levels = len(model.in_stages)
    target = model.state_dict()
    wanted = {rvt_key(k, levels): k for k in target}
    for k in state:
        if k not in wanted and not _DROPPED.match(k):
            raise RvtCheckpointError(f"{source}: key {_PREFIX}{k} does not fit the inferred evdet model "
                                     "(unsupported RVT variant or not an RVT detector)")
    heads = [stage.blocks[0].window.attn.num_heads for stage in model.backbone.stages]
    out = {}
    for rk, ek in wanted.items():
        if rk not in state:
            raise RvtCheckpointError(f"{source}: missing key {_PREFIX}{rk}")
        t = state[rk]
        if tuple(t.shape) != tuple(target[ek].shape):
            raise RvtCheckpointError(f"{source}: key {_PREFIX}{rk} has shape {tuple(t.shape)}, expected "
                                     f"{tuple(target[ek].shape)}")
        if ".attn.qkv." in ek:
            t = qkv_rows_per_head_to_stacked(t, heads[int(ek.split(".")[2])])
        out[ek] = t.to(target[ek].dtype)
    return out


def load_rvt_checkpoint(path: str | Path, *, input_hw: tuple[int, int] = (360, 640),
                        partition_split: Optional[int] = None, trusted: bool = False) -> Detector:
    """An evdet Detector with the weights of an RVT checkpoint.

    Args:
        path: RVT Lightning checkpoint (``state_dict`` with ``mdl.`` keys).
        input_hw: (height, width) of the model input (the representation), pixels.
        partition_split: RVT's ``partition_split_32`` (default: 1 for 240x304, else 2).
        trusted: allow pickled Python objects in the file (only for files you trust).
    Returns:
        Detector in eval mode; ``detector.rvt_architecture`` holds what was inferred.
    Raises:
        RvtCheckpointError: a clear one-line message naming the file and the first key that does not fit.
    """
    source = str(path)
    state = read_rvt_state_dict(path, trusted=trusted)
    arch = infer_rvt_architecture(state, source)
    split = default_partition_split(input_hw) if partition_split is None else int(partition_split)
    model = build_model(arch.model_config(split), arch.num_classes, tuple(input_hw), arch.in_channels)
    model.load_state_dict(convert_rvt_state_dict(state, model, source))
    model.rvt_architecture = arch
    return model.eval()
