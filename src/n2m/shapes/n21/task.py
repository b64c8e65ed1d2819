"""`SequenceTask`: the N21 shape (a text or a pair → class, classes, or score) as a LightningModule."""

from __future__ import annotations

from typing import Any

import torch

from n2m.core.card import ModelCard
from n2m.core.datamodule import DataSpec
from n2m.core.encoder import Pooling, build_encoder
from n2m.core.task import BaseTask, Optimization
from n2m.shapes.n21.losses import LossName, compute_loss, resolve_loss
from n2m.shapes.n21.metrics import MAIN_METRIC, build_metrics
from n2m.shapes.n21.model import SequenceModel
from n2m.shapes.n21.outputs import decode_output


class SequenceTask(BaseTask):
    """N21: encoder + pooling + head, its loss, its metrics, its outputs. What the data is (objective, pair
    encoding, labels, score range, backbone) comes from the DataModule's `spec`.

    Args:
        spec: from the data (`SequenceTask.from_data(data, ...)`; the CLI passes it).
        backbone_config: settings of the backbone's config to replace, e.g. `{attention_probs_dropout_prob: 0.0}`.
        pooling: `cls` or `mean` over tokens.
        loss: `auto` picks MSE / CE / BCE; regression also takes `l1`, `smooth_l1`, `cosent`.
        class_weights: per-class weights for CE (pos_weight for BCE), in label order.
        label_smoothing: of the cross-entropy.
        dropout: before the head.
        optimization: learning rates, schedule, freezing, warm start (`n2m.core.task.Optimization`).
    """

    def __init__(
        self,
        spec: DataSpec | None = None,
        backbone_config: dict[str, Any] | None = None,
        pooling: Pooling = "mean",
        loss: LossName = "auto",
        class_weights: list[float] | None = None,
        label_smoothing: float = 0.0,
        dropout: float = 0.1,
        optimization: Optimization | None = None,
    ) -> None:
        super().__init__()
        self.setup_task(spec, optimization)
        objective = self.spec.task
        pair_encoding = self.spec.settings["pair_encoding"]
        if objective != "regression" and not self.spec.labels:
            raise ValueError(f"a {objective} task needs labels (the data reads them from its training file)")
        self.loss_name = resolve_loss(loss, objective)
        num_labels = len(self.spec.labels or [None])
        score_range = self.spec.settings.get("score_range")
        self.model = SequenceModel(
            build_encoder(self.spec.backbone_dir, overrides=backbone_config),
            objective,  # type: ignore[arg-type]
            num_labels,
            pair_encoding,
            pooling,
            dropout,
            tuple(score_range) if score_range else (0.0, 1.0),
        )
        weights = torch.tensor(class_weights, dtype=torch.float) if class_weights else None
        self.register_buffer("class_weights", weights, persistent=False)
        self.main_metric = f"val/{MAIN_METRIC[objective]}"
        self.split_metrics = torch.nn.ModuleDict(
            {split: build_metrics(objective, num_labels).clone(prefix=f"{split}/") for split in ("val", "test")}  # type: ignore[arg-type]
        )
        self.prepare_weights()

    def card(self) -> ModelCard:
        return self.spec.card(pooling=self.hparams.pooling)

    def loss_of(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if self.spec.task == "regression":
            target = self.model.normalize_target(target)
        return compute_loss(self.loss_name, logits, target, self.class_weights, self.hparams.label_smoothing)

    def loss(self, batch: dict[str, Any]) -> torch.Tensor:
        return self.loss_of(self.model(batch), batch["target"])

    def evaluate(self, batch: dict[str, Any], split: str) -> None:
        logits = self.model(batch)
        target = batch["target"]
        self.log(f"{split}/loss", self.loss_of(logits, target), sync_dist=True, batch_size=target.shape[0])
        outputs = self.model.to_outputs(logits)
        self.split_metrics[split].update(outputs, target.long() if self.spec.task == "multilabel" else target)

    def epoch_scores(self, split: str) -> dict[str, Any]:
        scores = self.split_metrics[split].compute()
        self.split_metrics[split].reset()
        return scores

    def predict_batch(self, batch: dict[str, Any]) -> list[Any]:
        outputs = self.model.to_outputs(self.model(batch))
        return [decode_output(row, self.spec.task, self.spec.labels) for row in outputs]


Task = SequenceTask
