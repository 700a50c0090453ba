"""High-to-low resolution distillation: a frozen teacher checkpoint guides the student detector.

``training.distill`` (``teacher_ckpt`` "" = off). The teacher is any evdet checkpoint (its own preset,
FPN scales and input size; same class count and input channels). Per training batch it runs (eval mode,
no gradient, its own recurrent state per stream slot) on the student's frames resized by
``teacher_scale`` with nearest-exact (pixel duplication: a teacher trained at 2x resolution sees the 1x
counts at its own scale, not the full-resolution data). On the steps of the student's loss:

- Feature mimicking: every student head-input level l (N, C_s, h, w) is matched to the teacher level
  whose map is the smallest one at least as large (at 2x input, the level of twice the stride, which has
  exactly the student's map size), average-pooled to (h, w) when larger; a 1x1 conv adapter
  C_s -> C_t (identity when the channels are equal) maps the student; loss = mean squared error,
  averaged over the levels.
- Response distillation: the teacher's objectness and class logits on the same matched maps (pooled
  alike) give soft targets; loss = mean BCE(student obj, sigmoid(teacher obj)) + mean over anchors of
  sigmoid(teacher obj) * sum_k BCE(student cls_k, sigmoid(teacher cls_k)). Boxes are not distilled.

    loss_distill = feature_weight * feature loss + response_weight * response loss

The adapters are trained with the student (their weights are in the module's checkpoint).
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from evdet.models.yolox_head import HeadOutput
from evdet.training.state import StreamStates


class LevelCapture:
    """Forward pre-hook on a detector's head: keeps the list of levels it was called with."""

    def __init__(self, model: nn.Module) -> None:
        self.levels: Optional[list[Tensor]] = None
        self.handle = model.head.register_forward_pre_hook(self._hook)

    def _hook(self, module, args) -> None:
        self.levels = list(args[0])


def level_grid(head: HeadOutput) -> list[tuple[int, int, int]]:
    """Per head level (finest first): (first anchor, map height, map width), from the anchor strides/centres."""
    strides = head.strides
    out, start = [], 0
    for s in torch.unique_consecutive(strides).tolist():
        count = int((strides == s).sum())
        ys = head.anchor_centers[start:start + count, 1]
        width = int((ys == ys[0]).sum())
        out.append((start, count // width, width))
        start += count
    return out


def match_levels(student_hw: list[tuple[int, int]], teacher_hw: list[tuple[int, int]]) -> list[int]:
    """Per student level, the teacher level with the smallest map at least as large (else the largest map)."""
    out = []
    for h, w in student_hw:
        fits = [(th * tw, k) for k, (th, tw) in enumerate(teacher_hw) if th >= h and tw >= w]
        out.append(min(fits)[1] if fits else max((th * tw, k) for k, (th, tw) in enumerate(teacher_hw))[1])
    return out


def _pool(x: Tensor, hw: tuple[int, int]) -> Tensor:
    return x if tuple(x.shape[-2:]) == tuple(hw) else F.adaptive_avg_pool2d(x, hw)


def _head_maps(head: HeadOutput, grid) -> list[tuple[Tensor, Tensor]]:
    """Per level: obj logits (N, 1, h, w) and class logits (N, K, h, w)."""
    out = []
    for start, h, w in grid:
        n = h * w
        obj = head.obj_logits[:, start:start + n].reshape(-1, 1, h, w)
        cls = head.cls_logits[:, start:start + n].permute(0, 2, 1).reshape(-1, head.cls_logits.shape[-1], h, w)
        out.append((obj, cls))
    return out


class Distiller(nn.Module):
    """Frozen teacher + 1x1 adapters; ``losses`` gives the distillation terms of one training batch.

    Args:
        teacher: a Detector (frozen here); student: the Detector being trained.
        student_hw: the student's input size, used once to size the adapters.
    """

    def __init__(self, teacher: nn.Module, student: nn.Module, *, in_channels: int, student_hw: tuple[int, int],
                 teacher_scale: float = 2.0, feature_weight: float = 1.0, response_weight: float = 1.0) -> None:
        super().__init__()
        if teacher_scale <= 0:
            raise ValueError(f"training.distill.teacher_scale: must be > 0, got {teacher_scale}")
        self.teacher = teacher.eval().requires_grad_(False)
        self.teacher_scale, self.feature_weight, self.response_weight = teacher_scale, feature_weight, response_weight
        self._student_capture, self._teacher_capture = LevelCapture(student), LevelCapture(self.teacher)
        self.states = StreamStates()
        with torch.no_grad():
            x = torch.zeros(1, 1, in_channels, *student_hw)
            was = student.training
            student.eval()
            s_head = student(x).head
            student.train(was)
            t_head = self.teacher(self._teacher_input(x)).head
        if s_head.cls_logits.shape[-1] != t_head.cls_logits.shape[-1]:
            raise ValueError(f"training.distill.teacher_ckpt: teacher has {t_head.cls_logits.shape[-1]} classes, "
                             f"the student {s_head.cls_logits.shape[-1]}")
        s_ch = [lvl.shape[1] for lvl in self._student_capture.levels]
        t_ch = [lvl.shape[1] for lvl in self._teacher_capture.levels]
        s_hw = [tuple(lvl.shape[-2:]) for lvl in self._student_capture.levels]
        self.matches = match_levels(s_hw, [tuple(lvl.shape[-2:]) for lvl in self._teacher_capture.levels])
        self.adapters = nn.ModuleList([nn.Identity() if c == t_ch[k] else nn.Conv2d(c, t_ch[k], 1)
                                       for c, k in zip(s_ch, self.matches)])

    def train(self, mode: bool = True):
        super().train(mode)
        self.teacher.eval()   # frozen: always eval
        return self

    def _teacher_input(self, frames: Tensor) -> Tensor:
        if self.teacher_scale == 1.0:
            return frames
        b, t = frames.shape[:2]
        x = F.interpolate(frames.flatten(0, 1), scale_factor=self.teacher_scale, mode="nearest-exact")
        return x.reshape(b, t, *x.shape[1:])

    def losses(self, batch: dict, frames: Tensor, student_head: HeadOutput, select: Tensor) -> dict[str, Tensor]:
        """{"distill", "distill_feat", "distill_resp"} for the student's last forward (same frames, select).

        Args:
            frames: (B, T, C, H, W) the student's input; select: bool (B, T) its loss steps.
        """
        slots = batch["stream_slot"].tolist()
        with torch.no_grad():
            states = self.states.gather(slots, batch["is_first"].tolist(), frames.device)
            out = self.teacher(self._teacher_input(frames), states, select)
            self.states.scatter(slots, out.states)
        s_levels, t_levels = self._student_capture.levels, self._teacher_capture.levels
        feat = torch.stack([F.mse_loss(adapter(s), _pool(t_levels[k], s.shape[-2:]))
                            for s, k, adapter in zip(s_levels, self.matches, self.adapters)]).mean()
        s_maps, t_maps = _head_maps(student_head, level_grid(student_head)), _head_maps(out.head, level_grid(out.head))
        resp = []
        for (s_obj, s_cls), k in zip(s_maps, self.matches):
            t_obj, t_cls = (_pool(m, s_obj.shape[-2:]) for m in t_maps[k])
            p_obj = torch.sigmoid(t_obj)
            obj = F.binary_cross_entropy_with_logits(s_obj, p_obj)
            cls = (p_obj * F.binary_cross_entropy_with_logits(s_cls, torch.sigmoid(t_cls), reduction="none")
                   .sum(1, keepdim=True)).mean()
            resp.append(obj + cls)
        resp_t = torch.stack(resp).mean()
        total = self.feature_weight * feat + self.response_weight * resp_t
        return {"distill": total, "distill_feat": feat.detach(), "distill_resp": resp_t.detach()}


def build_distiller(student: nn.Module, train_cfg, *, in_channels: int, input_hw: tuple[int, int],
                    trusted: bool = False) -> Optional[Distiller]:
    """The Distiller of ``training.distill`` (None when ``teacher_ckpt`` is empty); the teacher checkpoint is
    read weights-only unless ``trusted`` (``--trusted``)."""
    cfg = train_cfg.distill
    if not cfg.teacher_ckpt:
        return None
    from evdet.training.predict import load_module

    teacher = load_module(cfg.teacher_ckpt, trusted=trusted).model
    return Distiller(teacher, student, in_channels=in_channels, student_hw=input_hw, teacher_scale=cfg.teacher_scale,
                     feature_weight=cfg.feature_weight, response_weight=cfg.response_weight)
