"""`TokenTask`: the N2N shape (a tag per word or per character: named entities, POS) as a LightningModule."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from n2m.core.card import ModelCard
from n2m.core.datamodule import DataSpec
from n2m.core.encoder import build_encoder
from n2m.core.task import BaseTask, Optimization
from n2m.shapes.n2n.metrics import EntityScores, TagAccuracy
from n2m.shapes.n2n.model import TokenModel
from n2m.shapes.n2n.outputs import decode_prediction
from n2m.shapes.n2n.spans import bio_to_spans, bio_transitions, decode_units, entity_types, predicted_spans


class TokenTask(BaseTask):
    """N2N: encoder + per-unit head, cross-entropy over the units the model reads, entity or tag metrics.

    The backbone, the scheme (`bio` or `tags`), the label names, the unit and the encoding come from the data
    (`spec`; `TokenTask.from_data(data)`).

    Args:
        backbone_config: settings of the backbone's config to replace, e.g. `{attention_probs_dropout_prob: 0.0}`.
        constrained_decoding: for `bio`, decode the most probable path with no `I-X` after `O` / another type
            (Viterbi over the unit tags) instead of each unit's argmax. Both are logged (`f1_constrained`,
            `f1_argmax`); `f1` is the one chosen here.
        dropout: of the tag head.
        optimization: learning rates, schedule, freezing, warm start (`Optimization`).
    """

    def __init__(
        self,
        spec: DataSpec | None = None,
        backbone_config: dict[str, Any] | None = None,
        constrained_decoding: bool = True,
        dropout: float = 0.1,
        optimization: Optimization | None = None,
    ) -> None:
        super().__init__()
        self.setup_task(spec, optimization)
        labels = self.spec.labels
        if not labels:
            raise ValueError("an N2N task needs the data's label names (`data.label_names` or a `train` file)")
        self.scheme = self.spec.task
        self.model = TokenModel(build_encoder(self.spec.backbone_dir, overrides=backbone_config), len(labels), dropout)
        self.transitions = bio_transitions(labels) if self.scheme == "bio" else None
        self.main_metric = "val/f1" if self.scheme == "bio" else "val/accuracy"

        def scorers() -> torch.nn.ModuleDict:
            if self.scheme == "tags":
                return torch.nn.ModuleDict({"argmax": TagAccuracy()})
            return torch.nn.ModuleDict({mode: EntityScores(entity_types(labels)) for mode in ("argmax", "constrained")})

        self.split_metrics = torch.nn.ModuleDict({split: scorers() for split in ("val", "test")})
        self.prepare_weights()

    @property
    def label_names(self) -> list[str]:
        return list(self.spec.labels or [])

    @property
    def decoding(self) -> str:
        return "constrained" if self.scheme == "bio" and self.hparams.constrained_decoding else "argmax"

    def card(self) -> ModelCard:
        return self.spec.card(constrained_decoding=self.hparams.constrained_decoding)

    def loss_of(self, logits: torch.Tensor, batch: dict[str, Any]) -> torch.Tensor:
        """Cross-entropy over the units the model reads and whose tag it knows."""
        labels = batch["labels"]
        trained = (labels >= 0) & (batch["unit_token"] >= 0)
        if not trained.any():
            return logits.sum() * 0.0
        return F.cross_entropy(logits[trained].float(), labels[trained])

    def loss(self, batch: dict[str, Any]) -> torch.Tensor:
        return self.loss_of(self.model(batch), batch)

    def evaluate(self, batch: dict[str, Any], split: str) -> None:
        logits = self.model(batch)
        size = batch["input_ids"].shape[0]
        self.log(f"{split}/loss", self.loss_of(logits, batch), sync_dist=True, batch_size=size)
        metrics = self.split_metrics[split]
        log_probs = logits.float().log_softmax(-1).cpu()
        covered, labels = (batch["unit_token"] >= 0).cpu(), batch["labels"].cpu()
        names = self.label_names
        for b, n in enumerate(batch["num_units"].tolist()):
            gold = labels[b, :n]
            if self.scheme == "tags":
                predicted = torch.tensor(decode_units(log_probs[b, :n], covered[b, :n]))
                metrics["argmax"].update(predicted, gold, torch.ones_like(gold, dtype=torch.bool))
                continue
            gold_spans = [bio_to_spans([names[i] for i in gold.tolist()])]
            for mode, transitions in (("argmax", None), ("constrained", self.transitions)):
                tags = decode_units(log_probs[b, :n], covered[b, :n], transitions)
                metrics[mode].update([predicted_spans(tags, names)], gold_spans)

    def epoch_scores(self, split: str) -> dict[str, Any]:
        """`accuracy` for tags; for entities `f1_argmax`, `f1_constrained`, and the chosen decoding's precision,
        recall and F1 (and per-type figures) without a suffix."""
        metrics = self.split_metrics[split]
        if self.scheme == "tags":
            out = {f"{split}/accuracy": metrics["argmax"].compute()}
        else:
            out = {}
            for mode, metric in metrics.items():
                scores = metric.compute()
                out[f"{split}/f1_{mode}"] = scores["f1"]
                if mode == self.decoding:
                    out.update({f"{split}/{k}": v for k, v in scores.items()})
        for metric in metrics.values():
            metric.reset()
        return out

    def predict_batch(self, batch: dict[str, Any]) -> list[Any]:
        """Per input sentence: its entities (`bio`) or its tagged words (`tags`)."""
        examples = self.trainer.datamodule.examples["predict"]  # type: ignore[attr-defined]
        probs = self.model(batch).float().softmax(-1).cpu()
        covered = (batch["unit_token"] >= 0).cpu()
        transitions = self.transitions if self.decoding == "constrained" else None
        results = []
        for b, (n, index) in enumerate(zip(batch["num_units"].tolist(), batch["index"].tolist(), strict=True)):
            tags = decode_units(probs[b, :n].log(), covered[b, :n], transitions)
            ex = examples[index]
            results.append(decode_prediction(ex.text, ex.units, tags, probs[b, :n], self.label_names, self.scheme))
        return results


Task = TokenTask
