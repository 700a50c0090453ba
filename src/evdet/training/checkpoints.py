"""Checkpoints: ``last.ckpt`` (resume point) and ``best.ckpt`` (by a named metric), written atomically.

::

    <out_dir>/checkpoints/last.ckpt    # every `every_n_train_steps`, after each validation, at the end
    <out_dir>/checkpoints/best.ckpt    # when the watched metric improves (after a validation)

The watched metric is ``metric`` when some callback logs it (e.g. ``val/prophesee/AP`` from the
evaluation callback), else ``val/loss`` (lower is better); the metric used, the best score and
its step are part of this callback's state, so a resumed run keeps tracking the same best.
"""

from __future__ import annotations

import math
import random
from pathlib import Path
from typing import Literal, Optional

import lightning as L
import numpy as np
import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO

from evdet.utils.atomic import atomic_path
from evdet.utils.safe_load import UnreadableCheckpointError, load_torch_file

FALLBACK_METRIC = "val/loss"
MODULE_ARGS = ("data_cfg", "model_cfg", "loss_cfg", "train_cfg", "num_classes", "input_hw", "in_channels",
               "class_names")   # DetectionModule's arguments, kept as the checkpoint's hyper_parameters


class CheckpointError(ValueError):
    """A file is not a usable evdet checkpoint; the message names the file and the problem."""


def read_checkpoint(path: str | Path, *, trusted: bool = False) -> dict:
    """Load an evdet training checkpoint (CPU tensors) and check that it has what rebuilding needs.

    Args:
        trusted: allow pickled Python objects besides tensors and plain data (``--trusted``; only for a
            file whose source you trust, since unpickling them can run code).
    Raises:
        FileNotFoundError: no such file.
        UntrustedCheckpointError: it holds other Python objects and ``trusted`` is off (names ``--trusted``).
        CheckpointError: unreadable (truncated, not a torch file) or not a checkpoint of ``evdet train``.
    """
    path = Path(path)
    try:
        ckpt = load_torch_file(path, trusted=trusted)
    except UnreadableCheckpointError as err:
        raise CheckpointError(str(err)) from None
    if not isinstance(ckpt, dict) or not isinstance(ckpt.get("state_dict"), dict):
        raise CheckpointError(f"{path}: not a training checkpoint (no 'state_dict'; expected a .ckpt of evdet train)")
    missing = [k for k in MODULE_ARGS if k not in (ckpt.get("hyper_parameters") or {})]
    if missing:
        raise CheckpointError(f"{path}: not an evdet checkpoint: hyper_parameters lack {missing} "
                              "(a model config is needed to rebuild the network)")
    return ckpt


def check_state_dict(path: str | Path, expected: dict, saved: dict, described: str) -> None:
    """Raise ``CheckpointError`` when ``saved`` weights do not fit a model's ``expected`` state dict.

    Args:
        path: the checkpoint file (for the message); described: the model its config describes.
    """
    missing = [k for k in expected if k not in saved]
    unexpected = [k for k in saved if k not in expected]
    reshaped = [k for k in expected if k in saved and tuple(saved[k].shape) != tuple(expected[k].shape)]
    if not (missing or unexpected or reshaped):
        return
    example = (f"e.g. {reshaped[0]} is {tuple(saved[reshaped[0]].shape)} in the file, "
               f"{tuple(expected[reshaped[0]].shape)} in the model" if reshaped else
               f"e.g. {'missing ' + missing[0] if missing else 'unexpected ' + unexpected[0]}")
    levels = [len({k.split(".")[3] for k in sd if k.startswith("model.head.cls_preds.")}) for sd in (saved, expected)]
    if levels[0] != levels[1]:
        example = f"the file's head has {levels[0]} FPN levels, the model's {levels[1]}; {example}"
    raise CheckpointError(f"{path}: the weights do not fit the model its config describes ({described}): "
                          f"{len(missing)} missing, {len(unexpected)} unexpected and {len(reshaped)} reshaped "
                          f"tensors; {example}")


class LastBestCheckpoint(L.Callback):
    """Save last.ckpt and best.ckpt under ``dirpath``.

    Args:
        dirpath: checkpoint folder.
        metric: metric to rank checkpoints by; ``mode`` "max" or "min".
        every_n_train_steps: also refresh last.ckpt every this many optimiser steps (0: never).
    """

    def __init__(self, dirpath: str | Path, metric: str, mode: Literal["max", "min"] = "max",
                 every_n_train_steps: int = 0) -> None:
        if mode not in ("max", "min"):
            raise ValueError(f"checkpoint mode must be 'max' or 'min', got {mode!r}")
        self.dirpath = Path(dirpath)
        self.metric, self.mode = metric, mode
        self.every_n_train_steps = int(every_n_train_steps)
        self.best_metric: Optional[str] = None
        self.best_score: Optional[float] = None
        self.best_step: Optional[int] = None
        self._last_saved_step = -1

    @property
    def last_path(self) -> Path:
        return self.dirpath / "last.ckpt"

    @property
    def best_path(self) -> Path:
        return self.dirpath / "best.ckpt"

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        step = int(trainer.global_step)
        if self.every_n_train_steps > 0 and step > 0 and step % self.every_n_train_steps == 0:
            self._save(trainer, self.last_path)

    def on_validation_end(self, trainer, pl_module) -> None:
        if trainer.sanity_checking:
            return
        metrics = trainer.callback_metrics
        if self.best_metric is not None and self.best_metric in metrics:
            name = self.best_metric  # keep ranking by the metric the best was chosen with
        else:
            name = self.metric if self.metric in metrics else FALLBACK_METRIC
        mode = self.mode if name == self.metric else "min"
        if name in metrics:
            score = float(metrics[name])
            if math.isfinite(score) and self._improves(name, score, mode):
                self.best_metric, self.best_score, self.best_step = name, score, int(trainer.global_step)
                self._save(trainer, self.best_path, force=True)
        if trainer.training or trainer.state.fn == "fit":
            # a stand-alone trainer.validate() holds no optimiser state: never let it replace last.ckpt
            self._save(trainer, self.last_path, force=True)

    def on_train_end(self, trainer, pl_module) -> None:
        self._save(trainer, self.last_path)

    def _improves(self, name: str, score: float, mode: str) -> bool:
        if self.best_score is None or self.best_metric != name:
            return True
        return score > self.best_score if mode == "max" else score < self.best_score

    def _save(self, trainer, path: Path, force: bool = False) -> None:
        step = int(trainer.global_step)
        if path == self.last_path:
            if step == self._last_saved_step and not force:
                return
            self._last_saved_step = step
        # every rank calls it (collective under DDP); rank 0 writes through BesideTargetCheckpointIO
        trainer.save_checkpoint(str(path), weights_only=False)

    def state_dict(self) -> dict:
        return {"metric": self.metric, "mode": self.mode, "best_metric": self.best_metric,
                "best_score": self.best_score, "best_step": self.best_step}

    def load_state_dict(self, state: dict) -> None:
        self.best_metric = state.get("best_metric")
        self.best_score = state.get("best_score")
        self.best_step = state.get("best_step")


class BesideTargetCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint reader and writer for evdet runs: code-free reads, temp files beside the target.

    Lightning's own writer stages the file in the system temp dir (fsspec), where a killed run leaves it;
    this one writes a hidden sibling and renames it (``atomic_path``: deleted on any error, e.g. a full
    disk). Reads (``Trainer.fit(ckpt_path=...)``) go through ``load_torch_file``.

    Args:
        trusted: let resume unpickle arbitrary objects (``--trusted``).
    """

    def __init__(self, trusted: bool = False) -> None:
        self.trusted = trusted

    def save_checkpoint(self, checkpoint: dict, path, storage_options=None) -> None:
        with atomic_path(path) as tmp:
            torch.save(checkpoint, tmp)

    def load_checkpoint(self, path, map_location=None, weights_only=None) -> dict:
        return load_torch_file(path, trusted=self.trusted, map_location=map_location or "cpu")


def rng_states() -> dict:
    """This process's global RNG states: torch (CPU and every CUDA device), numpy, python."""
    return {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []}


def set_rng_states(states: dict) -> None:
    """Restore the states of ``rng_states()`` (CUDA ones when the devices are there)."""
    torch.set_rng_state(states["torch"])
    np.random.set_state(states["numpy"])
    random.setstate(states["python"])
    if states["cuda"] and torch.cuda.is_available() and len(states["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(states["cuda"])
