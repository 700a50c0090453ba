"""Training monitors as Lightning callbacks: loss stability, divergence stop, peak memory."""

from __future__ import annotations

import math
import resource
import sys
from collections import deque
from typing import Any, Optional

import lightning as L
import numpy as np
import torch
from lightning.pytorch.utilities import rank_zero_warn


def _loss_value(outputs: Any) -> Optional[float]:
    """The training loss of a step from ``training_step`` outputs (tensor or dict with 'loss')."""
    if isinstance(outputs, dict):
        outputs = outputs.get("loss")
    if isinstance(outputs, torch.Tensor):
        return float(outputs.detach().float().cpu())
    return None


def coefficient_of_variation(values) -> float:
    """std / |mean| of the values (population std); nan when the mean is 0."""
    arr = np.asarray(list(values), dtype=np.float64)
    mean = arr.mean()
    return float(arr.std() / abs(mean)) if mean != 0 else float("nan")


class LossMonitor(L.Callback):
    """Logs ``monitor/loss_cv``: coefficient of variation of the training loss over the last ``window`` steps.

    A high CV late in training means the loss is noisy (lr too high, batch too small).
    """

    def __init__(self, window: int = 50) -> None:
        if window < 2:
            raise ValueError(f"LossMonitor window must be >= 2, got {window}")
        self.window = window
        self._values: deque[float] = deque(maxlen=window)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        value = _loss_value(outputs)
        if value is None or not math.isfinite(value):
            return
        self._values.append(value)
        if len(self._values) >= 2:
            pl_module.log("monitor/loss_cv", coefficient_of_variation(self._values), batch_size=1)

    def state_dict(self) -> dict:
        return {"values": list(self._values)}

    def load_state_dict(self, state: dict) -> None:
        self._values = deque(state.get("values", []), maxlen=self.window)


class DivergenceStop(L.Callback):
    """Stops training when the loss is NaN / inf or exceeds ``factor`` x its running median.

    The reason is kept in ``self.reason`` and in ``trainer.callback_metrics["monitor/diverged"]``
    (1.0), and printed as a warning, so that the experiment record can say why the run stopped.

    Args:
        factor: loss > factor * median of the last ``window`` finite losses stops training.
        window: median window (steps); the ratio test starts once ``min_steps`` losses were seen.
    """

    def __init__(self, factor: float = 20.0, window: int = 50, min_steps: int = 10) -> None:
        self.factor, self.window, self.min_steps = float(factor), int(window), int(min_steps)
        self._values: deque[float] = deque(maxlen=self.window)
        self.reason: Optional[str] = None

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        value = _loss_value(outputs)
        if value is None:
            return
        step = int(trainer.global_step)
        if not math.isfinite(value):
            self._stop(trainer, f"training loss is {value} at global step {step}")
            return
        if len(self._values) >= self.min_steps:
            median = float(np.median(self._values))
            if median > 0 and value > self.factor * median:
                self._stop(trainer, f"training loss {value:.4g} at global step {step} exceeds "
                                    f"{self.factor:g} x running median {median:.4g} (divergence)")
                return
        self._values.append(value)

    def _stop(self, trainer, reason: str) -> None:
        self.reason = f"stopped by DivergenceStop: {reason}"
        trainer.should_stop = True
        trainer.callback_metrics["monitor/diverged"] = torch.tensor(1.0)
        rank_zero_warn(self.reason)

    def state_dict(self) -> dict:
        return {"values": list(self._values), "reason": self.reason}

    def load_state_dict(self, state: dict) -> None:
        self._values = deque(state.get("values", []), maxlen=self.window)
        self.reason = state.get("reason")


def peak_rss_mb() -> float:
    """Peak resident memory of this process, MiB (ru_maxrss is KiB on Linux, bytes on macOS)."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (1024.0 * 1024.0) if sys.platform == "darwin" else rss / 1024.0


class MemoryMonitor(L.Callback):
    """Logs ``monitor/peak_rss_mb`` and, on CUDA, ``monitor/cuda_max_mem_mb`` every ``every_n_steps``."""

    def __init__(self, every_n_steps: int = 10) -> None:
        self.every_n_steps = max(1, int(every_n_steps))

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_step % self.every_n_steps:
            return
        pl_module.log("monitor/peak_rss_mb", peak_rss_mb(), batch_size=1)
        if torch.cuda.is_available() and pl_module.device.type == "cuda":
            pl_module.log("monitor/cuda_max_mem_mb", torch.cuda.max_memory_allocated(pl_module.device) / 2**20,
                          batch_size=1)
