"""N21's metrics (torchmetrics), and which one chooses checkpoints."""

from __future__ import annotations

from torchmetrics import MetricCollection, PearsonCorrCoef, SpearmanCorrCoef
from torchmetrics.classification import MulticlassAccuracy, MulticlassF1Score, MultilabelAccuracy, MultilabelF1Score

from n2m.shapes.n21.examples import Objective

MAIN_METRIC = {"regression": "pearson", "classification": "accuracy", "multilabel": "f1_macro"}


def build_metrics(objective: Objective, num_labels: int) -> MetricCollection:
    if objective == "regression":
        return MetricCollection({"pearson": PearsonCorrCoef(), "spearman": SpearmanCorrCoef()})
    if objective == "classification":
        accuracy, f1 = MulticlassAccuracy(num_labels, average="micro"), MulticlassF1Score(num_labels, average="macro")
    else:
        accuracy, f1 = MultilabelAccuracy(num_labels, average="micro"), MultilabelF1Score(num_labels, average="macro")
    return MetricCollection({"accuracy": accuracy, "f1_macro": f1})
