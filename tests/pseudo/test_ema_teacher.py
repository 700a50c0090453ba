"""EMA teacher: the update formula by hand, pseudo-target conversion, config checks."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from evdet.training.config import EmaTeacherConfig, TrainConfig
from evdet.training.teacher import EmaTeacher, build_teacher, ema_update_, pseudo_targets


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2))


def test_ema_update_by_hand():
    student, teacher = _net(), _net()
    with torch.no_grad():
        teacher[0].weight.copy_(torch.tensor([[1.0, 2.0], [3.0, 4.0]]))
        student[0].weight.copy_(torch.tensor([[11.0, 2.0], [-7.0, 0.0]]))
        student[1].running_mean.copy_(torch.tensor([10.0, 20.0]))      # teacher's: zeros
        student[1].num_batches_tracked.fill_(5)
    ema_update_(teacher, student, decay=0.9)
    # 0.9 * t + 0.1 * s
    torch.testing.assert_close(teacher[0].weight, torch.tensor([[2.0, 2.0], [2.0, 3.6]]))
    torch.testing.assert_close(teacher[1].running_mean, torch.tensor([1.0, 2.0]))
    assert int(teacher[1].num_batches_tracked) == 5                    # integers are copied
    torch.testing.assert_close(student[0].weight, torch.tensor([[11.0, 2.0], [-7.0, 0.0]]))  # untouched


def test_burn_in_copies_then_averages():
    student = _net()
    teacher = EmaTeacher(student, decay=0.5, score_thr=0.4, class_thr=0.35, burn_in_steps=2)
    assert not any(p.requires_grad for p in teacher.parameters())
    with torch.no_grad():
        student[0].bias.copy_(torch.tensor([4.0, 8.0]))
    teacher.update(student, step=1)                   # burn-in: copy
    torch.testing.assert_close(teacher.model[0].bias, torch.tensor([4.0, 8.0]))
    assert not teacher.active(1) and teacher.active(2)
    with torch.no_grad():
        student[0].bias.copy_(torch.tensor([0.0, 0.0]))
    teacher.update(student, step=2)                   # 0.5 * 4 + 0.5 * 0
    torch.testing.assert_close(teacher.model[0].bias, torch.tensor([2.0, 4.0]))


def test_pseudo_targets_apply_the_class_threshold():
    dets = torch.tensor([[10.0, 20.0, 30.0, 60.0, 0.9, 1.0, 0.8],     # kept: cx 20, cy 40, w 20, h 40
                         [0.0, 0.0, 10.0, 10.0, 0.5, 0.0, 0.3],       # class prob below 0.35
                         [5.0, 5.0, 5.0, 9.0, 0.9, 0.0, 0.9]])        # zero width
    got = pseudo_targets([dets, dets[:0]], class_thr=0.35)
    torch.testing.assert_close(got[0], torch.tensor([[1.0, 20.0, 40.0, 20.0, 40.0]]))
    assert got[1].shape == (0, 5)


def test_teacher_config_is_checked():
    assert build_teacher(_net(), TrainConfig()) is None
    with pytest.raises(ValueError, match="ema_teacher.decay"):
        build_teacher(_net(), TrainConfig(ema_teacher=EmaTeacherConfig(decay=1.0)))
    with pytest.raises(ValueError, match="ema_teacher.score_thr"):
        build_teacher(_net(), TrainConfig(ema_teacher=EmaTeacherConfig(decay=0.99, score_thr=1.5)))
    with pytest.raises(ValueError, match="pseudo_weight"):
        build_teacher(_net(), TrainConfig(ema_teacher=EmaTeacherConfig(decay=0.99), pseudo_weight=-1))


def test_accumulation_steps_update_once():
    student = _net()
    teacher = EmaTeacher(student, decay=0.5, score_thr=0.4, class_thr=0.35)
    with torch.no_grad():
        teacher.model[0].bias.zero_()
        student[0].bias.copy_(torch.tensor([8.0, 8.0]))
    teacher.update(student, step=1)
    teacher.update(student, step=1)                   # a second micro-batch of the same optimiser step
    torch.testing.assert_close(teacher.model[0].bias, torch.tensor([4.0, 4.0]))
