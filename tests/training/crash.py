"""A simulated crash for resume tests: a callback that raises when a given optimiser step is about to start."""

import lightning as L


class Kill(L.Callback):
    """Raises ``RuntimeError("killed at step N")`` when optimiser step ``at_step`` is about to start."""

    def __init__(self, at_step: int):
        self.at_step = at_step

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.global_step == self.at_step:
            raise RuntimeError(f"killed at step {self.at_step}")
