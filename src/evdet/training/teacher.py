"""Mean teacher (EMA of the student) whose detections on unlabelled steps are pseudo-targets.

Configured by ``training.ema_teacher`` (decay 0 = off) and ``training.pseudo_weight``. Per training
batch the teacher (eval mode, no gradient, its own recurrent state per stream slot) runs the same
frames; its boxes on the steps of ``unlabelled_mask`` (label frames whose labels are withheld by
``data.label_fraction``) with obj x cls >= ``score_thr`` and class probability >= ``class_thr`` are
the targets of a second YOLOX loss on the student's outputs at those steps:

    loss = supervised loss (labelled steps) + pseudo_weight * pseudo loss (unlabelled steps)

Hard targets as in Unbiased Teacher / Soft Teacher's thresholded boxes; the weight keeps the
pseudo term from drowning the few true labels. After every optimiser step the teacher moves
towards the student: ``t <- decay * t + (1 - decay) * s`` for every floating parameter and buffer
(integer buffers copied), as timm's ``ModelEmaV2``; before ``burn_in_steps`` it is a plain copy and
no pseudo loss is added.
"""

from __future__ import annotations

import copy
from typing import Optional

import torch
from torch import nn

from evdet.models.yolox_head import HeadOutput
from evdet.training.config import TrainConfig
from evdet.training.state import StreamStates


def ema_update_(teacher: nn.Module, student: nn.Module, decay: float) -> None:
    """In place: teacher <- decay * teacher + (1 - decay) * student (floating entries; others copied)."""
    with torch.no_grad():
        t_state, s_state = teacher.state_dict(), student.state_dict()
        for key, t_val in t_state.items():
            s_val = s_state[key].to(t_val.device)
            if t_val.is_floating_point():
                t_val.mul_(decay).add_(s_val.to(t_val.dtype), alpha=1.0 - decay)
            else:
                t_val.copy_(s_val)


def select_rows(head: HeadOutput, rows: torch.Tensor) -> HeadOutput:
    """The items ``rows`` (bool (N,)) of a head output."""
    idx = rows.nonzero().squeeze(1).to(head.boxes.device)
    return HeadOutput(boxes=head.boxes.index_select(0, idx), obj_logits=head.obj_logits.index_select(0, idx),
                      cls_logits=head.cls_logits.index_select(0, idx), anchor_centers=head.anchor_centers,
                      strides=head.strides, input_hw=head.input_hw)


def pseudo_targets(detections: list[torch.Tensor], class_thr: float) -> list[torch.Tensor]:
    """Detector ``postprocess`` rows (x1, y1, x2, y2, score, class, class_conf) -> (n, 5) class, cx, cy, w, h.

    Keeps rows with class_conf >= class_thr and a positive width and height (the score threshold is
    the one given to ``postprocess``).
    """
    out = []
    for d in detections:
        d = d.detach().float()
        keep = (d[:, 6] >= class_thr) & (d[:, 2] > d[:, 0]) & (d[:, 3] > d[:, 1])
        d = d[keep]
        out.append(torch.stack([d[:, 5], (d[:, 0] + d[:, 2]) / 2, (d[:, 1] + d[:, 3]) / 2,
                                d[:, 2] - d[:, 0], d[:, 3] - d[:, 1]], dim=1))
    return out


class EmaTeacher(nn.Module):
    """An EMA copy of the student detector that makes pseudo-targets for the unlabelled steps.

    Args:
        student: the detector being trained (copied once here).
        decay, score_thr, class_thr, burn_in_steps: see ``EmaTeacherConfig``.
        pseudo_weight: weight of the pseudo-target loss.
    """

    def __init__(self, student: nn.Module, *, decay: float, score_thr: float, class_thr: float,
                 burn_in_steps: int = 0, pseudo_weight: float = 1.0) -> None:
        super().__init__()
        if not 0.0 < decay < 1.0:
            raise ValueError(f"training.ema_teacher.decay: must lie in (0, 1) (0 turns it off), got {decay}")
        for name, value in (("score_thr", score_thr), ("class_thr", class_thr)):
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"training.ema_teacher.{name}: must lie in [0, 1], got {value}")
        if pseudo_weight < 0:
            raise ValueError(f"training.pseudo_weight: must be >= 0, got {pseudo_weight}")
        self.model = copy.deepcopy(student)
        self.model.requires_grad_(False)
        self.decay, self.score_thr, self.class_thr = float(decay), float(score_thr), float(class_thr)
        self.burn_in_steps, self.pseudo_weight = int(burn_in_steps), float(pseudo_weight)
        self.states = StreamStates()
        self._updated_at = -1

    def active(self, step: int) -> bool:
        """True once the burn-in is over (pseudo loss on)."""
        return step >= self.burn_in_steps

    def update(self, student: nn.Module, step: int) -> None:
        """After an optimiser step: EMA towards the student (a copy during the burn-in).

        Args:
            step: the optimiser steps done; a repeated value (gradient accumulation) changes nothing.
        """
        if step == self._updated_at:
            return
        self._updated_at = step
        ema_update_(self.model, student, 0.0 if step < self.burn_in_steps else self.decay)

    @torch.no_grad()
    def predict(self, batch: dict, select: Optional[torch.Tensor], device: torch.device) -> list[torch.Tensor]:
        """Advance the teacher's stream states over the batch; pseudo-targets of the ``select`` steps.

        Returns:
            list (one per selected (b, t), row-major) of (n, 5) targets in input pixels ([] when select is None).
        """
        frames = batch["frames"].to(device).float()
        slots = batch["stream_slot"].tolist()
        states = self.states.gather(slots, batch["is_first"].tolist(), device)
        was_training = self.model.training
        self.model.eval()           # the teacher predicts in eval mode, whatever the student's mode
        out = self.model(frames, states, None if select is None else select.to(device))
        self.model.train(was_training)
        self.states.scatter(slots, out.states)
        if select is None:
            return []
        dets = self.model.postprocess(out.head, conf_threshold=self.score_thr)
        return pseudo_targets(dets, self.class_thr)

    def training_losses(self, module, batch: dict, step: int) -> dict[str, torch.Tensor]:
        """Supervised loss on ``label_mask`` steps + weighted pseudo loss on ``unlabelled_mask`` steps.

        Args:
            module: the ``DetectionModule`` (its model, criterion and training stream states).
        Returns:
            losses dict: "loss" (total), "sup", "pseudo", plus the supervised loss's terms.
        """
        device = module.device
        label = batch["label_mask"].bool()
        unl = batch.get("unlabelled_mask", torch.zeros_like(label)).bool() & ~label
        use_pseudo = self.active(step) and bool(unl.any())
        targets_u = self.predict(batch, unl if use_pseudo else None, device)
        select = label | unl if use_pseudo else label
        if not bool(select.any()):
            with torch.no_grad():
                module.advance_streams(batch, module.train_states, None)
            zero = sum(p.sum() for p in module.model.parameters()) * 0.0
            return {"loss": zero, "sup": zero.detach(), "pseudo": zero.detach()}
        out = module.advance_streams(batch, module.train_states, select)
        rows_l, rows_u = label[select], unl[select]
        zero = out.head.boxes.sum() * 0.0
        losses: dict[str, torch.Tensor] = {}
        sup = zero
        if bool(rows_l.any()):
            targets_l = [batch["targets"][b][t].to(device) for b, t in label.nonzero().tolist()]
            losses = dict(module.criterion(select_rows(out.head, rows_l), targets_l))
            sup = losses["loss"]
        pseudo = zero
        if use_pseudo:
            pseudo = module.criterion(select_rows(out.head, rows_u), [t.to(device) for t in targets_u])["loss"]
        losses.update(loss=sup + self.pseudo_weight * pseudo, sup=sup.detach(), pseudo=pseudo.detach())
        return losses


def build_teacher(student: nn.Module, cfg: TrainConfig) -> Optional[EmaTeacher]:
    """The EMA teacher of ``cfg.ema_teacher`` (None when decay is 0)."""
    t = cfg.ema_teacher
    if t.decay == 0:
        return None
    return EmaTeacher(student, decay=t.decay, score_thr=t.score_thr, class_thr=t.class_thr,
                      burn_in_steps=t.burn_in_steps, pseudo_weight=cfg.pseudo_weight)
