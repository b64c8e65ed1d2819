"""The callbacks and loggers a training run gets unless the recipe names its own."""

from __future__ import annotations

import os
from pathlib import Path

from lightning.pytorch.callbacks import (
    BasePredictionWriter,
    Callback,
    EarlyStopping,
    LearningRateMonitor,
    ModelCheckpoint,
    RichModelSummary,
    RichProgressBar,
)
from lightning.pytorch.loggers import CSVLogger, Logger, TensorBoardLogger

from n2m.core.rows import write_rows
from n2m.core.task import BaseTask


def default_callbacks(task: BaseTask, root_dir: str | Path, progress_bar: bool = True) -> list[Callback]:
    """Best and last checkpoints in `<root>/checkpoints` (a fixed folder, so `--ckpt_path last` finds the
    previous run's last checkpoint), early stopping on the task's main metric if asked, LR logging."""
    metric, mode = task.main_metric, task.main_mode
    callbacks: list[Callback] = [
        ModelCheckpoint(
            dirpath=os.path.join(root_dir, "checkpoints"),
            filename="best-{epoch}-{step}",
            monitor=metric,
            mode=mode,
            save_top_k=1,
        ),
        # Its own callback: `save_last` above writes last.ckpt only in epochs that also beat the best, so a run
        # interrupted after a worse epoch would resume from an older one.
        ModelCheckpoint(dirpath=os.path.join(root_dir, "checkpoints"), filename="last", enable_version_counter=False),
        LearningRateMonitor(logging_interval="step"),
    ]
    patience = task.optimization.early_stopping_patience
    if patience:
        callbacks.append(EarlyStopping(monitor=metric, mode=mode, patience=patience))
    if progress_bar:
        callbacks += [RichProgressBar(leave=True), RichModelSummary(max_depth=2)]
    return callbacks


def default_loggers(root_dir: str | Path) -> list[Logger]:
    """CSV and TensorBoard logs of one run side by side in `<root>/logs/version_<n>`."""
    csv_logger = CSVLogger(root_dir, name="logs")
    return [csv_logger, TensorBoardLogger(root_dir, name="logs", version=csv_logger.version)]


class PredictionFileWriter(BasePredictionWriter):
    """Writes `n2m predict` results in input order; the task turns its outputs into rows (`prediction_rows`)."""

    def __init__(self, output: str | Path) -> None:
        super().__init__(write_interval="epoch")
        self.output = Path(output)

    def write_on_epoch_end(self, trainer, pl_module, predictions, batch_indices) -> None:  # type: ignore[override]
        batches = predictions[0] if predictions and isinstance(predictions[0], list) else predictions
        rows = pl_module.prediction_rows(batches, trainer.datamodule)
        write_rows(self.output, rows)
        pl_module.print(f"wrote {len(rows)} predictions to {self.output}")
