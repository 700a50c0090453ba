"""Monitors: loss CV, divergence stop, memory (driven with a stand-in trainer)."""

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from evdet.training.monitors import (DivergenceStop, LossMonitor, MemoryMonitor, coefficient_of_variation,
                                     peak_rss_mb)


class FakeModule:
    def __init__(self):
        self.logged = {}
        self.device = torch.device("cpu")

    def log(self, name, value, **kw):
        self.logged[name] = value


def fake_trainer(step=0):
    return SimpleNamespace(global_step=step, should_stop=False, callback_metrics={})


def test_cv_by_hand():
    # mean 2, population std sqrt(2/3)
    assert coefficient_of_variation([1.0, 2.0, 3.0]) == pytest.approx(np.sqrt(2 / 3) / 2)


def test_loss_monitor_uses_the_last_window_values():
    mon, mod, tr = LossMonitor(window=3), FakeModule(), fake_trainer()
    for v in [100.0, 1.0, 2.0, 3.0]:
        mon.on_train_batch_end(tr, mod, {"loss": torch.tensor(v)}, None, 0)
    assert mod.logged["monitor/loss_cv"] == pytest.approx(np.sqrt(2 / 3) / 2)
    restored = LossMonitor(window=3)
    restored.load_state_dict(mon.state_dict())
    assert list(restored._values) == [1.0, 2.0, 3.0]


def test_divergence_stop_on_nan_says_why():
    cb, tr = DivergenceStop(factor=20.0), fake_trainer(step=17)
    cb.on_train_batch_end(tr, FakeModule(), torch.tensor(float("nan")), None, 0)
    assert tr.should_stop and "nan" in cb.reason and "17" in cb.reason
    assert float(tr.callback_metrics["monitor/diverged"]) == 1.0


def test_divergence_stop_on_ratio_to_running_median():
    cb, tr = DivergenceStop(factor=20.0, window=50, min_steps=10), fake_trainer(step=12)
    for _ in range(10):
        cb.on_train_batch_end(tr, FakeModule(), torch.tensor(1.0), None, 0)
    cb.on_train_batch_end(tr, FakeModule(), torch.tensor(19.0), None, 0)
    assert not tr.should_stop and cb.reason is None
    cb.on_train_batch_end(tr, FakeModule(), torch.tensor(25.0), None, 0)
    assert tr.should_stop and "20 x running median 1" in cb.reason


def test_memory_monitor_logs_peak_rss():
    mod = FakeModule()
    MemoryMonitor(every_n_steps=5).on_train_batch_end(fake_trainer(step=10), mod, None, None, 0)
    assert mod.logged["monitor/peak_rss_mb"] == pytest.approx(peak_rss_mb(), rel=0.5)
    assert mod.logged["monitor/peak_rss_mb"] > 10
