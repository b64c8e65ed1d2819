"""N21's metrics (torchmetrics), and which one chooses checkpoints."""

from __future__ import annotations

import torch
from torchmetrics import MetricCollection, PearsonCorrCoef, SpearmanCorrCoef
from torchmetrics.classification import MulticlassAccuracy, MulticlassF1Score, MultilabelAccuracy, MultilabelF1Score
from torchmetrics.retrieval import RetrievalMRR, RetrievalNormalizedDCG, RetrievalRecall

from n2m.shapes.n21.examples import Objective

MAIN_METRIC = {"regression": "pearson", "classification": "accuracy", "multilabel": "f1_macro", "retrieval": "mrr10"}
RANKING_DEPTH = 10  # the deepest cut-off of the retrieval metrics: MRR@10, Recall@10, nDCG@10


def build_metrics(objective: Objective, num_labels: int) -> MetricCollection:
    if objective == "regression":
        return MetricCollection({"pearson": PearsonCorrCoef(), "spearman": SpearmanCorrCoef()})
    if objective == "retrieval":
        return MetricCollection(
            {
                "mrr10": RetrievalMRR(top_k=10),
                "recall1": RetrievalRecall(top_k=1),
                "recall10": RetrievalRecall(top_k=10),
                "ndcg10": RetrievalNormalizedDCG(top_k=10),
            },
            compute_groups=False,  # the four read the same states, but grouping them saves nothing here
        )
    if objective == "classification":
        accuracy, f1 = MulticlassAccuracy(num_labels, average="micro"), MulticlassF1Score(num_labels, average="macro")
    else:
        accuracy, f1 = MultilabelAccuracy(num_labels, average="micro"), MultilabelF1Score(num_labels, average="macro")
    return MetricCollection({"accuracy": accuracy, "f1_macro": f1})


def ranking_candidates(
    scores: torch.Tensor, relevant: list[list[int]], depth: int = RANKING_DEPTH
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Queries × corpus scores → the (preds, target, indexes) torchmetrics' retrieval metrics take, holding per
    query only its `depth` best documents and its relevant ones. Every metric with a cut-off ≤ `depth` comes out
    as over the whole corpus (recall and nDCG count all relevant documents), in O(queries · depth) memory.
    """
    depth = min(depth, scores.shape[1])
    top = scores.topk(depth, dim=1).indices
    preds, target, indexes = [], [], []
    for q, docs in enumerate(relevant):
        chosen = torch.unique(torch.cat([top[q], torch.tensor(docs, dtype=torch.long, device=top.device)]))
        preds.append(scores[q, chosen])
        target.append(torch.isin(chosen, torch.tensor(docs, dtype=torch.long, device=top.device)))
        indexes.append(torch.full_like(chosen, q))
    return torch.cat(preds), torch.cat(target), torch.cat(indexes)
