"""`SequenceTask`: the N21 shape (a text or a pair → class, classes, or score) as a LightningModule."""

from __future__ import annotations

from typing import Any

import torch
from torchmetrics import MetricCollection, PearsonCorrCoef, SpearmanCorrCoef
from torchmetrics.classification import (
    MulticlassAccuracy,
    MulticlassF1Score,
    MultilabelAccuracy,
    MultilabelF1Score,
)

from n2m.backbones import resolve_backbone
from n2m.data.encoding import PairEncoding
from n2m.models.encoder import build_encoder
from n2m.models.pooling import Pooling
from n2m.models.sequence import Objective, SequenceModel
from n2m.outputs import decode_outputs, prediction_rows
from n2m.schema import TaskSchema
from n2m.tasks.base import BaseTask, Schedule
from n2m.tasks.losses import LossName, compute_loss, resolve_loss

MAIN_METRIC = {"regression": "pearson", "classification": "accuracy", "multilabel": "f1_macro"}


def build_metrics(objective: Objective, num_labels: int) -> MetricCollection:
    if objective == "regression":
        return MetricCollection({"pearson": PearsonCorrCoef(), "spearman": SpearmanCorrCoef()})
    if objective == "classification":
        return MetricCollection(
            {
                "accuracy": MulticlassAccuracy(num_labels, average="micro"),
                "f1_macro": MulticlassF1Score(num_labels, average="macro"),
            }
        )
    return MetricCollection(
        {
            "accuracy": MultilabelAccuracy(num_labels, average="micro"),
            "f1_macro": MultilabelF1Score(num_labels, average="macro"),
        }
    )


class SequenceTask(BaseTask):
    """N21: encoder + pooling + head, its loss, its metrics, its outputs.

    Args:
        backbone: short name (`e5-small`, `minilm-l6`), local HF folder, or hub id.
        backbone_config: settings of the backbone's config to replace, e.g. `{attention_probs_dropout_prob: 0.0}`.
        objective: `regression` (a score), `classification` (one class), `multilabel` (any of the classes).
        pair_encoding: `cross` (one sequence `A </s></s> B`) or `bi` (each text alone, shared encoder).
        pooling: `cls` or `mean` over tokens.
        loss: `auto` picks MSE / CE / BCE; regression also takes `l1`, `smooth_l1`, `cosent`.
        class_weights: per-class weights for CE (pos_weight for BCE), in `label_names` order.
        label_names: classes, in head order; set from the training data by the CLI.
        score_range: (low, high) of regression labels; scores are learned on [0, 1]. Set from the data.
        layer_lr_decay: LR of layer i is lr · decay^(layers − i); 1.0 turns it off.
        head_lr: LR of the head (defaults to `lr`).
        init_from: a checkpoint or exported folder to take matching weights from (intermediate training).
        early_stopping_patience: stop after this many validations without improvement (off when None).
        backbone_dir: the folder the backbone is loaded from; set by the data (a vocabulary-trimmed copy
            with `data.trim_vocab`), else resolved from `backbone`.
    """

    shape = "N21"

    def __init__(
        self,
        backbone: str = "e5-small",
        backbone_config: dict[str, Any] | None = None,
        objective: Objective = "regression",
        pair_encoding: PairEncoding = "cross",
        pooling: Pooling = "mean",
        loss: LossName = "auto",
        class_weights: list[float] | None = None,
        label_smoothing: float = 0.0,
        label_names: list[str] | None = None,
        score_range: tuple[float, float] | None = None,
        dropout: float = 0.1,
        lr: float = 5e-5,
        weight_decay: float = 0.01,
        warmup_ratio: float = 0.1,
        schedule: Schedule = "linear",
        layer_lr_decay: float = 1.0,
        head_lr: float | None = None,
        freeze_embeddings: bool = False,
        freeze_layers: int = 0,
        init_from: str | None = None,
        early_stopping_patience: int | None = None,
        backbone_dir: str | None = None,
    ) -> None:
        super().__init__()
        if objective != "regression" and not label_names:
            raise ValueError(f"a {objective} task needs `label_names` (the CLI reads them from the training data)")
        self.save_hyperparameters()
        self.hparams.score_range = list(score_range) if score_range else None  # plain types in checkpoints
        self.loss_name = resolve_loss(loss, objective)
        num_labels = len(label_names) if label_names else 1
        self.model = SequenceModel(
            build_encoder(backbone_dir or resolve_backbone(backbone), overrides=backbone_config),
            objective,
            num_labels,
            pair_encoding,
            pooling,
            dropout,
            tuple(score_range) if score_range else (0.0, 1.0),
        )
        self.register_buffer(
            "class_weights", torch.tensor(class_weights, dtype=torch.float) if class_weights else None, persistent=False
        )
        self.main_metric = f"val/{MAIN_METRIC[objective]}"
        self.val_metrics = build_metrics(objective, num_labels).clone(prefix="val/")
        self.test_metrics = build_metrics(objective, num_labels).clone(prefix="test/")
        self.model.train()  # from_pretrained returns eval mode, and Lightning keeps module modes as they are
        self.apply_freezing()
        self.warm_start()

    def _loss(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if self.hparams.objective == "regression":
            target = self.model.normalize_target(target)
        return compute_loss(self.loss_name, logits, target, self.class_weights, self.hparams.label_smoothing)

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        loss = self._loss(self.model(batch), batch["target"])
        self.log("train/loss", loss, prog_bar=True, batch_size=batch["target"].shape[0])
        return loss

    def _evaluate(self, batch: dict[str, Any], metrics: MetricCollection, prefix: str) -> None:
        logits = self.model(batch)
        target = batch["target"]
        self.log(f"{prefix}/loss", self._loss(logits, target), sync_dist=True, batch_size=target.shape[0])
        outputs = self.model.to_outputs(logits)
        metrics.update(outputs, target.long() if self.hparams.objective == "multilabel" else target)

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self._evaluate(batch, self.val_metrics, "val")

    def test_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self._evaluate(batch, self.test_metrics, "test")

    def on_validation_epoch_end(self) -> None:
        self.log_dict(self.val_metrics.compute(), prog_bar=True)
        self.val_metrics.reset()

    def on_test_epoch_end(self) -> None:
        self.log_dict(self.test_metrics.compute())
        self.test_metrics.reset()

    def predict_step(self, batch: dict[str, Any], batch_idx: int) -> dict[str, torch.Tensor]:
        return {"index": batch["index"], "outputs": self.model.to_outputs(self.model(batch))}

    def prediction_rows(self, batches: list[dict[str, torch.Tensor]], datamodule: Any) -> list[dict[str, Any]]:
        """Batch outputs (in length order) → rows in file order, with the input file's ids."""
        index = torch.cat([b["index"] for b in batches])
        outputs = torch.cat([b["outputs"] for b in batches])
        ordered = torch.empty_like(outputs)
        ordered[index] = outputs
        schema = TaskSchema.from_hparams(self.hparams, datamodule.hparams)
        ids = [ex.id for ex in datamodule.examples["predict"]]
        return prediction_rows(decode_outputs(ordered, schema), ids)
