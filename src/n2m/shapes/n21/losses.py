"""Losses for N21 heads. Regression losses see targets normalized to [0, 1]."""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F

LossName = Literal["auto", "mse", "l1", "smooth_l1", "cosent", "ce", "bce", "mnrl"]

DEFAULT_LOSS = {"regression": "mse", "classification": "ce", "multilabel": "bce", "retrieval": "mnrl"}
ALLOWED = {
    "regression": {"mse", "l1", "smooth_l1", "cosent"},
    "classification": {"ce"},
    "multilabel": {"bce"},
    "retrieval": {"mnrl"},
}


def cosent_loss(scores: torch.Tensor, target: torch.Tensor, scale: float = 20.0) -> torch.Tensor:
    """CoSENT (Su 2022): every pair (i, j) with target_i > target_j should have score_i > score_j.

    log(1 + Σ exp(scale·(s_j − s_i))) over such pairs; it ranks, so it optimizes what Pearson/Spearman see.
    """
    diff = scale * (scores[None, :] - scores[:, None])  # diff[i, j] = s_j - s_i
    mask = target[:, None] > target[None, :]
    diff = diff.masked_fill(~mask, -1e12)
    return torch.logsumexp(torch.cat([torch.zeros(1, device=diff.device), diff.flatten()]), dim=0)


def multiple_negatives_ranking_loss(
    queries: torch.Tensor, passages: torch.Tensor, temperature: float = 0.05, symmetric: bool = False
) -> torch.Tensor:
    """InfoNCE with in-batch negatives (sentence-transformers' MultipleNegativesRankingLoss; its scale 20 is a
    temperature of 0.05). Query i's positive is `passages[i]`; every other passage is a negative: the other
    queries' positives and any hard negatives stacked after them (rows B, B + 1, …). `symmetric` adds the same
    loss from each positive passage to its query among the batch's queries, and averages the two.
    """
    q = F.normalize(queries.float(), dim=-1)
    p = F.normalize(passages.float(), dim=-1)
    scores = q @ p.T / temperature  # (B, B + hard negatives)
    target = torch.arange(q.shape[0], device=q.device)
    loss = F.cross_entropy(scores, target)
    if symmetric:
        loss = (loss + F.cross_entropy(scores[:, : q.shape[0]].T, target)) / 2
    return loss


def resolve_loss(name: LossName, objective: str) -> str:
    loss = DEFAULT_LOSS[objective] if name == "auto" else name
    if loss not in ALLOWED[objective]:
        raise ValueError(f"loss {name!r} does not fit a {objective} task; use one of {sorted(ALLOWED[objective])}")
    return loss


def compute_loss(
    name: str,
    logits: torch.Tensor,
    target: torch.Tensor,
    class_weights: torch.Tensor | None = None,
    label_smoothing: float = 0.0,
) -> torch.Tensor:
    logits = logits.float()
    if name == "mse":
        return F.mse_loss(logits, target)
    if name == "l1":
        return F.l1_loss(logits, target)
    if name == "smooth_l1":
        return F.smooth_l1_loss(logits, target, beta=0.1)
    if name == "cosent":
        return cosent_loss(logits, target)
    if name == "ce":
        return F.cross_entropy(logits, target, weight=class_weights, label_smoothing=label_smoothing)
    return F.binary_cross_entropy_with_logits(logits, target, pos_weight=class_weights)
