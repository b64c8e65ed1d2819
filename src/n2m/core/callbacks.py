"""The callbacks and loggers a training run gets unless the recipe names its own."""

from __future__ import annotations

import os
import random
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import (
    BasePredictionWriter,
    Callback,
    Checkpoint,
    EarlyStopping,
    LearningRateMonitor,
    ModelCheckpoint,
    ProgressBar,
    RichModelSummary,
    RichProgressBar,
)
from lightning.pytorch.loggers import CSVLogger, Logger, TensorBoardLogger
from lightning.pytorch.trainer.states import TrainerFn
from lightning.pytorch.utilities import rank_zero_info
from lightning.pytorch.utilities.exceptions import SIGTERMException

from n2m.core.rows import write_rows
from n2m.core.task import BaseTask

RNG_KEY = "n2m_rng"


@dataclass
class CheckpointEvery:
    """How often a fit writes a resumable `last.ckpt` within an epoch (the recipe's `checkpoint_every:`): every
    `minutes` of training and/or every `steps` optimizer steps, whichever comes first; None turns one off. Every
    epoch's end writes one too, and so does SIGTERM."""

    minutes: float | None = 10.0
    steps: int | None = None


def rng_state() -> dict[str, Any]:
    """The global random state of torch (and CUDA), numpy and Python, as plain values and tensors, so checkpoints
    still load with `weights_only=True`."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    version, state, python_gauss = random.getstate()
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []
    return {"torch": torch.get_rng_state(), "cuda": cuda, "numpy": [kind, torch.from_numpy(keys.astype(np.int64)),
            pos, has_gauss, gauss], "python": [version, list(state), python_gauss]}  # fmt: skip


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    kind, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    version, values, python_gauss = state["python"]
    random.setstate((version, tuple(values), python_gauss))


class ResumableCheckpoint(Checkpoint):
    """Writes `<dirpath>/last.ckpt` within epochs (`CheckpointEvery`) and when SIGTERM arrives (then stops the
    fit: `n2m fit` exits 75), so an interrupted run loses at most that interval; puts the random state in every
    checkpoint and restores it on resume, so dropout draws what the uninterrupted run drew. The data order's
    position rides in the DataModule's state (`ShapeDataModule.state_dict`). Lightning writes atomically (a
    temporary file, then a rename), so a kill while saving leaves the previous `last.ckpt` whole. A `Checkpoint`,
    so Lightning runs it after the other callbacks, whose state it saves."""

    def __init__(self, dirpath: str | Path, every: CheckpointEvery | None = None) -> None:
        self.path = str(Path(dirpath) / "last.ckpt")
        self.every = every or CheckpointEvery()
        self.saved_at = 0.0
        self.step_seen = -1
        self.started = False
        self.stopped = False
        self.pending_rng: dict[str, Any] | None = None

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # Not at load time: the sanity check and the loaders come between, and the state must be the one the
        # uninterrupted run had at its next training step.
        if self.pending_rng is not None:
            set_rng_state(self.pending_rng)
            self.pending_rng = None
        self.saved_at, self.step_seen, self.started = time.monotonic(), trainer.global_step, True

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, *_: Any) -> None:
        step = trainer.global_step
        if step == self.step_seen:  # between the batches of an accumulated step nothing resumable exists
            return
        self.step_seen = step
        # One process alone decides on SIGTERM; under DDP Lightning shares it and raises on every rank, and
        # `on_exception` saves (a save is collective: every rank must call it).
        sigterm = trainer.world_size == 1 and trainer.received_sigterm
        steps, minutes = self.every.steps, self.every.minutes
        due = bool(steps and step % steps == 0) or bool(minutes and time.monotonic() - self.saved_at >= 60 * minutes)
        if trainer.world_size > 1:
            due = trainer.strategy.broadcast(due)  # the clocks of the ranks differ
        if due or sigterm:
            self.save(trainer)
        if sigterm:
            self.stopped = True
            raise SIGTERMException

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        """SIGTERM met elsewhere (validation, the end of an epoch, another rank): save where training stands.
        Other exceptions save nothing: a step that failed halfway is no state to resume from."""
        if isinstance(exception, SIGTERMException) and self.started and not self.stopped:
            self.stopped = True
            self.save(trainer)

    def save(self, trainer: L.Trainer) -> None:
        trainer.save_checkpoint(self.path, weights_only=False)  # the whole state: a place to resume from
        self.saved_at = time.monotonic()
        rank_zero_info(f"resumable checkpoint at step {trainer.global_step}: {self.path}")

    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict) -> None:
        if trainer.state.fn == TrainerFn.FITTING:
            checkpoint[RNG_KEY] = self.pending_rng or rng_state()

    def on_load_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict) -> None:
        self.pending_rng = checkpoint.get(RNG_KEY)


def default_callbacks(
    task: BaseTask,
    root_dir: str | Path,
    progress_bar: bool = True,
    checkpoint_every: CheckpointEvery | None = None,
    progress_every: int = 50,
) -> list[Callback]:
    """Best and last checkpoints in `<root>/checkpoints` (a fixed folder, so `--ckpt_path last` finds the
    previous run's last checkpoint), `last.ckpt` also within epochs and on SIGTERM (`ResumableCheckpoint`), early
    stopping on the task's main metric if asked, LR logging."""
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
        ResumableCheckpoint(os.path.join(root_dir, "checkpoints"), checkpoint_every),
        LearningRateMonitor(logging_interval="step"),
    ]
    patience = task.optimization.early_stopping_patience
    if patience:
        callbacks.append(EarlyStopping(monitor=metric, mode=mode, patience=patience))
    if progress_bar:
        callbacks += [progress_display(progress_every), RichModelSummary(max_depth=2)]
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


TEST_PREDICTIONS = "test_predictions.jsonl"


class TestPredictionWriter(Callback):
    """`<root>/test_predictions.jsonl`: every test row's gold example and the model's result, in file order, from
    the batches the test metrics were computed on (what `n2m report` draws). The CLI adds it to the test after a
    fit. A failure here is reported once and does not stop the test."""

    __test__ = False  # not a pytest test class

    def __init__(self, root_dir: str | Path) -> None:
        self.root_dir = Path(root_dir)
        self.results: dict[int, Any] = {}
        self.failed = False

    def on_test_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.results, self.failed = {}, False

    def on_test_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any,
                          batch_idx: int, dataloader_idx: int = 0) -> None:  # fmt: skip
        if self.failed:
            return
        examples = trainer.datamodule.examples  # type: ignore[attr-defined]
        # `predict_batch` reads its texts from the predict split (N2N maps tags back onto them): the test split
        # stands in for it during the call
        kept = examples.get("predict")
        examples["predict"] = examples["test"]
        try:
            self.results.update(zip(batch["index"].tolist(), pl_module.predict_batch(batch), strict=True))  # type: ignore[operator]
        except Exception as err:  # e.g. retrieval, whose test ranks a corpus: no row-by-row results
            self.failed = True
            rank_zero_info(f"test predictions not written ({type(err).__name__}: {err})")
        finally:
            if kept is None:
                examples.pop("predict")
            else:
                examples["predict"] = kept

    def on_test_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.failed or not self.results:
            return
        examples = trainer.datamodule.examples["test"]  # type: ignore[attr-defined]
        rank = trainer.global_rank  # under DDP each process scored its share
        path = self.root_dir / (TEST_PREDICTIONS if rank == 0 else f"test_predictions.rank{rank}.jsonl")
        rows = [{"index": i, "gold": asdict(examples[i]), "prediction": asdict(result)}
                for i, result in sorted(self.results.items())]  # fmt: skip
        write_rows(path, rows)


class ProgressLines(ProgressBar):
    """Progress for a log file (no terminal: nohup, CI), where a bar prints nothing readable: a line every
    `every` optimizer steps (step, loss, speed, time left) and one per validation with its scores."""

    def __init__(self, every: int = 50) -> None:
        super().__init__()
        self.every = every
        self.enabled = True
        self.started = 0.0
        self.first_step = 0
        self.step_seen = -1

    def disable(self) -> None:
        self.enabled = False

    def enable(self) -> None:
        self.enabled = True

    @property
    def is_enabled(self) -> bool:  # what `LightningModule.print` asks every progress bar
        return self.enabled

    @property
    def is_disabled(self) -> bool:
        return not self.enabled

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.started, self.first_step = time.monotonic(), trainer.global_step  # a resumed run starts mid-way

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, *_: Any) -> None:
        step = trainer.global_step
        if not (self.enabled and self.every and trainer.is_global_zero) or step == self.step_seen:
            return
        self.step_seen = step
        if step % self.every:
            return
        speed = (step - self.first_step) / max(1e-9, time.monotonic() - self.started)
        total = trainer.estimated_stepping_batches
        loss = trainer.callback_metrics.get("train/loss")
        line = [f"step {step}" + (f"/{int(total)}" if total != float("inf") else ""), f"epoch {trainer.current_epoch}"]
        if loss is not None:
            line.append(f"loss {float(loss):.4f}")
        line.append(f"{speed:.2f} steps/s")
        if total != float("inf") and speed > 0:
            line.append(f"{clock((total - step) / speed)} left")
        print(" · ".join(line), flush=True)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not self.enabled or trainer.sanity_checking or not trainer.is_global_zero:
            return
        scores = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("val/") and v.numel() == 1}
        shown = " · ".join(f"{k} {v:.4f}" for k, v in sorted(scores.items()))
        print(f"epoch {trainer.current_epoch} validated at step {trainer.global_step}: {shown}", flush=True)


def clock(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def progress_display(every: int) -> ProgressBar:
    """A bar in a terminal; lines every `every` steps in a log file."""
    return RichProgressBar(leave=True) if sys.stdout.isatty() else ProgressLines(every)
