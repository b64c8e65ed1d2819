"""`TokenTask`: the N2N shape (a tag per word or per character: named entities, POS) as a LightningModule."""

from __future__ import annotations

from typing import Any, Literal

import torch
import torch.nn.functional as F

from n2m.backbones import resolve_backbone
from n2m.metrics_spans import EntityScores, TagAccuracy
from n2m.models.encoder import build_encoder
from n2m.models.token import TokenModel
from n2m.outputs import prediction_rows
from n2m.predictor_token import decode_prediction
from n2m.spans import bio_to_spans, bio_transitions, decode_units, entity_types, predicted_spans
from n2m.tasks.base import BaseTask, Schedule

Scheme = Literal["bio", "tags"]
Unit = Literal["word", "char"]


class TokenTask(BaseTask):
    """N2N: encoder + per-unit head, cross-entropy over the units the model reads, entity or tag metrics.

    Args:
        backbone: short name (`e5-small`, `minilm-l6`), local HF folder, or hub id (needs a fast tokenizer).
        backbone_config: settings of the backbone's config to replace, e.g. `{attention_probs_dropout_prob: 0.0}`.
        scheme: `bio` (entities as B-/I-/O tags; scored by entity P/R/F1, seqeval's default mode) or `tags`
            (one tag per unit, e.g. POS; scored by accuracy).
        constrained_decoding: for `bio`, decode the most probable path with no `I-X` after `O` / another type
            (Viterbi over the unit tags) instead of each unit's argmax. Both are logged (`f1_constrained`,
            `f1_argmax`); `f1` is the one chosen here.
        label_names: tags in head order; set from the training data by the CLI.
        unit: `word` or `char`, what the data labels; set from the data, kept for prediction on raw text.
        backbone_dir: the folder the backbone is loaded from (vocabulary-trimmed with `data.trim_vocab`).
        The optimization arguments are those of `SequenceTask`.
    """

    shape = "N2N"

    def __init__(
        self,
        backbone: str = "e5-small",
        backbone_config: dict[str, Any] | None = None,
        scheme: Scheme = "bio",
        constrained_decoding: bool = True,
        label_names: list[str] | None = None,
        unit: Unit = "word",
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
        if not label_names:
            raise ValueError("an N2N task needs `label_names` (the CLI reads them from the training data)")
        self.save_hyperparameters()
        self.model = TokenModel(
            build_encoder(backbone_dir or resolve_backbone(backbone), overrides=backbone_config),
            len(label_names),
            dropout,
        )
        self.transitions = bio_transitions(label_names) if scheme == "bio" else None
        if scheme == "bio":
            types = entity_types(label_names)
            self.main_metric = "val/f1"
            self.val_metrics = torch.nn.ModuleDict({m: EntityScores(types) for m in ("argmax", "constrained")})
            self.test_metrics = torch.nn.ModuleDict({m: EntityScores(types) for m in ("argmax", "constrained")})
        else:
            self.main_metric = "val/accuracy"
            self.val_metrics = torch.nn.ModuleDict({"argmax": TagAccuracy()})
            self.test_metrics = torch.nn.ModuleDict({"argmax": TagAccuracy()})
        self.model.train()  # from_pretrained returns eval mode, and Lightning keeps module modes as they are
        self.apply_freezing()
        self.warm_start()

    @property
    def decoding(self) -> str:
        return "constrained" if self.hparams.scheme == "bio" and self.hparams.constrained_decoding else "argmax"

    def _loss(self, logits: torch.Tensor, batch: dict[str, Any]) -> torch.Tensor:
        labels = batch["labels"]
        trained = (labels >= 0) & (batch["unit_token"] >= 0)
        if not trained.any():
            return logits.sum() * 0.0
        return F.cross_entropy(logits[trained].float(), labels[trained])

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        loss = self._loss(self.model(batch), batch)
        self.log("train/loss", loss, prog_bar=True, batch_size=batch["input_ids"].shape[0])
        return loss

    def _evaluate(self, batch: dict[str, Any], metrics: torch.nn.ModuleDict, prefix: str) -> None:
        logits = self.model(batch)
        size = batch["input_ids"].shape[0]
        self.log(f"{prefix}/loss", self._loss(logits, batch), sync_dist=True, batch_size=size)
        log_probs = logits.float().log_softmax(-1).cpu()
        covered, labels = (batch["unit_token"] >= 0).cpu(), batch["labels"].cpu()
        names = self.hparams.label_names
        for b, n in enumerate(batch["num_units"].tolist()):
            gold = labels[b, :n]
            if self.hparams.scheme == "tags":
                predicted = torch.tensor(decode_units(log_probs[b, :n], covered[b, :n]))
                metrics["argmax"].update(predicted, gold, torch.ones_like(gold, dtype=torch.bool))
                continue
            gold_spans = [bio_to_spans([names[i] for i in gold.tolist()])]
            for mode, transitions in (("argmax", None), ("constrained", self.transitions)):
                tags = decode_units(log_probs[b, :n], covered[b, :n], transitions)
                metrics[mode].update([predicted_spans(tags, names)], gold_spans)

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self._evaluate(batch, self.val_metrics, "val")

    def test_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self._evaluate(batch, self.test_metrics, "test")

    def _log_metrics(self, metrics: torch.nn.ModuleDict, prefix: str) -> None:
        if self.hparams.scheme == "tags":
            self.log(f"{prefix}/accuracy", metrics["argmax"].compute(), prog_bar=True)
        else:
            for mode, metric in metrics.items():
                scores = metric.compute()
                self.log(f"{prefix}/f1_{mode}", scores["f1"])
                if mode == self.decoding:
                    self.log_dict({f"{prefix}/{k}": v for k, v in scores.items()}, prog_bar=False)
        for metric in metrics.values():
            metric.reset()

    def on_validation_epoch_end(self) -> None:
        self._log_metrics(self.val_metrics, "val")

    def on_test_epoch_end(self) -> None:
        self._log_metrics(self.test_metrics, "test")

    def predict_step(self, batch: dict[str, Any], batch_idx: int) -> dict[str, Any]:
        probs = self.model(batch).float().softmax(-1).cpu()
        covered = (batch["unit_token"] >= 0).cpu()
        transitions = self.transitions if self.decoding == "constrained" else None
        decoded = []
        for b, n in enumerate(batch["num_units"].tolist()):
            tags = decode_units(probs[b, :n].log(), covered[b, :n], transitions)
            decoded.append((tags, probs[b, :n]))
        return {"index": batch["index"].tolist(), "decoded": decoded}

    def prediction_rows(self, batches: list[dict[str, Any]], datamodule: Any) -> list[dict[str, Any]]:
        """Per input sentence in file order: its entities (`bio`) or its tagged words (`tags`)."""
        examples = datamodule.examples["predict"]
        results: list[Any] = [None] * len(examples)
        for batch in batches:
            for index, (tags, probs) in zip(batch["index"], batch["decoded"], strict=True):
                ex = examples[index]
                results[index] = decode_prediction(
                    ex.text, ex.units, tags, probs, self.hparams.label_names, self.hparams.scheme
                )
        return prediction_rows(results, [ex.id for ex in examples])
