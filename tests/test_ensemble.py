"""Ensemble weights fitted on validation data (greedy selection with replacement)."""

from __future__ import annotations

import torch

from n2m.ensemble import _score, fitted_weights


def test_noise_member_gets_no_weight():
    torch.manual_seed(0)
    target = torch.randn(500)
    good = target + 0.3 * torch.randn(500)
    noise = torch.randn(500)
    weights = fitted_weights([noise, good], target, "regression")
    assert weights[0] == 0 and weights[1] > 0


def test_members_with_independent_errors_share_weight_and_beat_each_alone():
    torch.manual_seed(0)
    target = torch.randn(2000)
    a = target + 0.5 * torch.randn(2000)
    b = target + 0.7 * torch.randn(2000)  # weaker, but its errors are its own
    weights = fitted_weights([a, b], target, "regression")
    assert weights[0] > weights[1] > 0
    mixed = (weights[0] * a + weights[1] * b) / sum(weights)
    assert _score(mixed, target, "regression") > _score(a, target, "regression")


def test_classification_scores_accuracy():
    target = torch.tensor([0, 1, 1, 0])
    right = torch.tensor([[0.9, 0.1], [0.2, 0.8], [0.4, 0.6], [0.7, 0.3]])
    wrong = 1 - right
    assert fitted_weights([wrong, right], target, "classification") == [0.0, 1.0]
