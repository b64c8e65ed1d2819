"""Ensemble weights fitted on validation data (greedy selection with replacement)."""

from __future__ import annotations

import pytest
import torch

from n2m.core.card import ModelCard
from n2m.errors import DataError
from n2m.shapes.n21.ensemble import ensemble_score, fitted_weights, validation_targets
from n2m.shapes.n21.examples import Columns


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
    assert ensemble_score(mixed, target, "regression") > ensemble_score(a, target, "regression")


def test_classification_scores_accuracy():
    target = torch.tensor([0, 1, 1, 0])
    right = torch.tensor([[0.9, 0.1], [0.2, 0.8], [0.4, 0.6], [0.7, 0.3]])
    wrong = 1 - right
    assert fitted_weights([wrong, right], target, "classification") == [0.0, 1.0]


def test_validation_file_with_an_unknown_class_names_file_line_and_column(tmp_path):
    path = tmp_path / "dev.tsv"
    path.write_text("text\tlabel\n좋다\tpos\n싫다\tneg\n그저 그렇다\tmeh\n", encoding="utf-8")
    card = ModelCard("N21", "classification", ["text"], "e5-small", labels=["neg", "pos"])
    with pytest.raises(DataError, match=r"dev.tsv, line 4, column 'label': label 'meh' never appears"):
        validation_targets(path, Columns(), card)
    path.write_text("text\tlabel\n좋다\tpos\n싫다\tneg\n", encoding="utf-8")
    inputs, target = validation_targets(path, Columns(), card)
    assert inputs == ["좋다", "싫다"] and target.tolist() == [1, 0]
