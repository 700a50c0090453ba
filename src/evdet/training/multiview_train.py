"""Plain-torch training and stream prediction of a (multi-view) detector on multi-view scenes.

The batches are ``evdet.data.multiview_dataset`` batches: the views of a scene are consecutive items,
so each view keeps its own recurrent state (one state per item) and the fusion (when on) meets them
at every selected step. With fusion off the same loop trains the single-view model on the same
batches: the comparison is one switch. AdamW + OneCycle (``evdet.training.optim``), gradient clipping
by value 1.0, loss on labelled steps only, fp32 on CPU. No Lightning: a short CPU recipe for the
multi-view study (``docs/results/multiview``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Literal, Optional

import numpy as np
import torch

from evdet.data.labels import boxes_from_detections
from evdet.data.multiview_dataset import MultiViewScene, Window, make_batch, random_windows, stream_windows
from evdet.models import build_loss, build_model
from evdet.models.config import LossConfig, ModelConfig
from evdet.training.config import TrainConfig
from evdet.training.optim import build_optimizer


@dataclass(frozen=True)
class MultiViewRecipe:
    """Settings of one multi-view training run."""

    steps: int = 300
    lr: float = 2e-3                       # the CPU demo's short-schedule rate (configs/demo.yaml)
    seq_len: int = 4
    slots: int = 2                         # scenes per batch (items = slots x views)
    sampling: Literal["stream", "random"] = "stream"
    seed: int = 0
    conf_threshold: float = 0.001          # prediction: RVT's evaluation threshold
    model: ModelConfig = field(default_factory=lambda: ModelConfig(preset="nano"))
    loss: LossConfig = field(default_factory=LossConfig)


def _reset(states, first: torch.Tensor):
    """States with the items that start a scene zeroed (None stays None)."""
    if states is None:
        return None
    if bool(first.all()):
        return None
    keep = (~first).float()
    return [tuple(s * keep.view(-1, *([1] * (s.ndim - 1))) for s in st) for st in states]


def _selected_targets(batch: dict) -> list[torch.Tensor]:
    mask = batch["label_mask"]
    return [batch["targets"][b][t] for b, t in mask.nonzero().tolist()]


def train_multiview(scenes: list[MultiViewScene], recipe: MultiViewRecipe, num_classes: int,
                    log: Optional[callable] = None) -> tuple[torch.nn.Module, dict]:
    """Train ``recipe.model`` on ``scenes`` for ``recipe.steps`` optimiser steps.

    Returns:
        (model in eval mode, {"steps", "wall_s", "final_loss", "losses" (every step)}).
    """
    torch.manual_seed(recipe.seed)
    rng = np.random.default_rng(recipe.seed)
    sc = scenes[0]
    model = build_model(recipe.model, num_classes, (sc.height, sc.width), sc.channels)
    criterion = build_loss(recipe.loss, num_classes)
    views = len(sc.views)
    opt, sched = build_optimizer(model.parameters(), TrainConfig(lr=recipe.lr, max_steps=recipe.steps),
                                 recipe.slots * views)
    sched = sched["scheduler"]
    model.train()
    states, plan, losses = None, [], []
    t0 = time.perf_counter()
    step = 0
    while step < recipe.steps:
        if recipe.sampling == "random":
            windows = random_windows(scenes, recipe.seq_len, rng, recipe.slots)
        else:
            if not plan:
                plan = stream_windows(scenes, recipe.seq_len, recipe.slots, rng)
            windows = plan.pop(0)
        batch = make_batch(scenes, windows)
        states = None if recipe.sampling == "random" else _reset(states, batch["is_first"])
        if not bool(batch["label_mask"].any()):
            with torch.no_grad():
                states = model(batch["frames"], states, view_pose=batch["view_pose"]).states
            continue
        out = model(batch["frames"], states, select=batch["label_mask"], view_pose=batch["view_pose"])
        loss = criterion(out.head, _selected_targets(batch))["loss"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_value_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        states = [tuple(s.detach() for s in st) for st in out.states]
        losses.append(float(loss.detach()))
        step += 1
        if log is not None and (step % 25 == 0 or step == recipe.steps):
            log(f"step {step}/{recipe.steps} loss {np.mean(losses[-25:]):.3f} "
                f"({time.perf_counter() - t0:.0f} s)")
    return model.eval(), {"steps": step, "wall_s": time.perf_counter() - t0,
                          "final_loss": float(np.mean(losses[-25:])), "losses": losses}


@torch.no_grad()
def predict_multiview(model: torch.nn.Module, scenes: list[MultiViewScene], *, chunk: int = 8,
                      conf_threshold: float = 0.001) -> dict[str, dict[str, np.ndarray]]:
    """Stream every scene (all its views together) and detect at its labelled steps.

    Returns:
        scene name -> view name -> detections (``DETECTION_DTYPE``, representation pixels, by t).
    """
    out: dict[str, dict[str, np.ndarray]] = {}
    for i, sc in enumerate(scenes):
        parts: dict[str, list[np.ndarray]] = {v: [] for v in sc.views}
        states = None
        for start in range(0, sc.num_steps, chunk):
            batch = make_batch(scenes, [Window(i, start, min(start + chunk, sc.num_steps), start == 0)])
            mask = batch["label_mask"]
            if not bool(mask.any()):
                states = model(batch["frames"], states, view_pose=batch["view_pose"]).states
                continue
            res = model(batch["frames"], states, select=mask, view_pose=batch["view_pose"])
            states = res.states
            dets = model.postprocess(res.head, conf_threshold=conf_threshold, nms_iou=0.45)
            for (b, t), d in zip(mask.nonzero().tolist(), dets):
                d = d.float().numpy()
                parts[sc.views[b]].append(boxes_from_detections(
                    d[:, :4], d[:, 4], d[:, 5].astype(np.int64), int(batch["t_us"][b, t]), class_scores=d[:, 6]))
        out[sc.name] = {v: np.concatenate(p) for v, p in parts.items() if p}
    return out


__all__ = ["MultiViewRecipe", "predict_multiview", "train_multiview"]
