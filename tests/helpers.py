"""Test-only callbacks, importable by class path from the CLI (`helpers.CrashAtStep`)."""

from __future__ import annotations

from lightning.pytorch.callbacks import Callback


class CrashAtStep(Callback):
    """Raise at a given global step, as a killed job would stop: mid-epoch, no checkpoint of its own."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:  # type: ignore[override]
        if trainer.global_step >= self.step:
            raise RuntimeError(f"simulated crash at step {trainer.global_step}")
