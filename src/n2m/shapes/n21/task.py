"""`SequenceTask`: the N21 shape (a text or a pair → class, classes, or score) as a LightningModule."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from n2m.core.card import ModelCard
from n2m.core.datamodule import DataSpec
from n2m.core.encoder import Pooling, build_encoder
from n2m.core.task import BaseTask, Optimization
from n2m.shapes.n21.losses import LossName, compute_loss, multiple_negatives_ranking_loss, resolve_loss
from n2m.shapes.n21.metrics import MAIN_METRIC, build_metrics, ranking_candidates
from n2m.shapes.n21.model import SequenceModel
from n2m.shapes.n21.outputs import decode_output


class SequenceTask(BaseTask):
    """N21: encoder + pooling + head, its loss, its metrics, its outputs. What the data is (objective, pair
    encoding, labels, score range, backbone) comes from the DataModule's `spec`.

    Args:
        spec: from the data (`SequenceTask.from_data(data, ...)`; the CLI passes it).
        backbone_config: settings of the backbone's config to replace, e.g. `{attention_probs_dropout_prob: 0.0}`.
        pooling: `cls` or `mean` over tokens.
        loss: `auto` picks MSE / CE / BCE (retrieval: `mnrl`, InfoNCE with in-batch negatives); regression
            also takes `l1`, `smooth_l1`, `cosent`.
        class_weights: per-class weights for CE (pos_weight for BCE), in label order.
        label_smoothing: of the cross-entropy.
        dropout: before the head.
        temperature: retrieval: cosines are divided by it before the softmax (0.05: sentence-transformers' scale 20).
        symmetric: retrieval: add the passage → query direction to the loss.
        monitor: the validation metric that chooses the checkpoint (and stops early), one the objective reports
            (classification: `accuracy` or `f1_macro`, for classes of unequal size); default `MAIN_METRIC`'s.
        optimization: learning rates, schedule, freezing, warm start (`n2m.core.task.Optimization`).

    A retrieval task is validated and tested by ranking: each held-out query against its split's corpus, scored
    by MRR@10, Recall@1, Recall@10 and nDCG@10 (`val/mrr10` chooses checkpoints); its `<split>/loss` is the
    same InfoNCE over the whole corpus.
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
        temperature: float = 0.05,
        symmetric: bool = False,
        monitor: str | None = None,
        optimization: Optimization | None = None,
    ) -> None:
        super().__init__()
        self.setup_task(spec, optimization)
        objective = self.spec.task
        pair_encoding = self.spec.settings["pair_encoding"]
        if objective not in ("regression", "retrieval") and not self.spec.labels:
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
        self.split_metrics = torch.nn.ModuleDict(
            {split: build_metrics(objective, num_labels).clone(prefix=f"{split}/") for split in ("val", "test")}  # type: ignore[arg-type]
        )
        reported = list(self.split_metrics["val"].keys(keep_base=True))
        if monitor is not None and monitor not in reported:
            raise ValueError(f"monitor {monitor!r}: a {objective} task reports {reported}")
        self.main_metric = f"val/{monitor or MAIN_METRIC[objective]}"
        # retrieval: vectors of a ranked split's queries and passages, gathered over its batches
        self.ranked: dict[str, dict[str, list[Any]]] = {}
        self.prepare_weights()

    def card(self) -> ModelCard:
        return self.spec.card(pooling=self.hparams.pooling)

    def loss_of(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if self.spec.task == "regression":
            target = self.model.normalize_target(target)
        return compute_loss(self.loss_name, logits, target, self.class_weights, self.hparams.label_smoothing)

    def loss(self, batch: dict[str, Any]) -> torch.Tensor:
        if self.spec.task == "retrieval":
            queries, *passages = self.model.embed_many(*(batch[k] for k in ("a", "b", "c") if k in batch))
            passages = torch.cat(passages)  # hard negatives (`c`): more passages, each a negative for every query
            return multiple_negatives_ranking_loss(queries, passages, self.hparams.temperature, self.hparams.symmetric)
        return self.loss_of(self.model(batch), batch["target"])

    def evaluate(self, batch: dict[str, Any], split: str) -> None:
        if self.spec.task == "retrieval":
            self.collect_ranked(batch, split)
            return
        logits = self.model(batch)
        target = batch["target"]
        self.log(f"{split}/loss", self.loss_of(logits, target), sync_dist=True, batch_size=target.shape[0])
        outputs = self.model.to_outputs(logits)
        self.split_metrics[split].update(outputs, target.long() if self.spec.task == "multilabel" else target)

    def epoch_scores(self, split: str) -> dict[str, Any]:
        if self.spec.task == "retrieval":
            return self.ranking_scores(split)
        scores = self.split_metrics[split].compute()
        self.split_metrics[split].reset()
        return scores

    def collect_ranked(self, batch: dict[str, Any], split: str) -> None:
        state = self.ranked.setdefault(split, {"queries": [], "query_ids": [], "relevant": [], "passages": [],
                                               "passage_ids": []})  # fmt: skip
        if "a" in batch:
            state["queries"].append(F.normalize(self.model.embed(batch["a"]).float(), dim=-1).cpu())
            state["query_ids"] += batch["query_id"].tolist()
            state["relevant"] += batch["relevant"]
        if "b" in batch:
            state["passages"].append(F.normalize(self.model.embed(batch["b"]).float(), dim=-1).cpu())
            state["passage_ids"] += batch["passage_id"].tolist()

    def ranking_scores(self, split: str) -> dict[str, Any]:
        """Every collected query against every collected passage (all ranks' under DDP, each item once)."""
        state = self.ranked.pop(split, None)
        if not state or not state["queries"] or not state["passages"]:
            return {}  # e.g. the sanity check's two batches held only passages
        parts = [(torch.cat(state["queries"]), state["query_ids"], state["relevant"], torch.cat(state["passages"]),
                  state["passage_ids"])]  # fmt: skip
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            gathered: list[Any] = [None] * torch.distributed.get_world_size()
            torch.distributed.all_gather_object(gathered, parts[0])
            parts = gathered
        queries: dict[int, tuple[torch.Tensor, list[int]]] = {}
        passages: dict[int, torch.Tensor] = {}
        for q_vectors, q_ids, relevant, p_vectors, p_ids in parts:
            queries.update({q: (v, r) for q, v, r in zip(q_ids, q_vectors, relevant, strict=True) if q not in queries})
            passages.update({p: v for p, v in zip(p_ids, p_vectors, strict=True) if p not in passages})
        row = {pid: i for i, pid in enumerate(passages)}
        kept = [(v, [row[p] for p in r if p in row]) for v, r in queries.values()]
        kept = [(v, r) for v, r in kept if r]  # a partial pass (sanity check) may lack a query's passages
        if not kept:
            return {}
        scores = torch.stack([v for v, _ in kept]) @ torch.stack(list(passages.values())).T
        relevant = [r for _, r in kept]
        metrics = self.split_metrics[split]
        preds, target, indexes = ranking_candidates(scores, relevant)
        metrics.update(preds.to(self.device), target.to(self.device), indexes=indexes.to(self.device))
        out = metrics.compute()
        metrics.reset()
        first = torch.tensor([r[0] for r in relevant])
        out[f"{split}/loss"] = F.cross_entropy(scores / self.hparams.temperature, first)
        return out

    def predict_batch(self, batch: dict[str, Any]) -> list[Any]:
        outputs = self.model.to_outputs(self.model(batch))
        return [decode_output(row, self.spec.task, self.spec.labels) for row in outputs]


Task = SequenceTask
