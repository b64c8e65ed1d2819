"""Entity scores against seqeval itself on the same predictions; tag accuracy; states that add up across ranks."""

from __future__ import annotations

import copy
import random

import pytest
import torch
from seqeval.metrics import classification_report, f1_score, precision_score, recall_score

from n2m.shapes.n2n.metrics import EntityScores, TagAccuracy
from n2m.shapes.n2n.spans import bio_to_spans

TYPES = ["LOC", "ORG", "PER"]


def noisy_copy(rng: random.Random, tags: list[str]) -> list[str]:
    """A prediction: the gold tags with some changed (ill-formed sequences included)."""
    choices = ["O", *(f"{p}-{t}" for p in "BI" for t in TYPES)]
    return [rng.choice(choices) if rng.random() < 0.25 else t for t in tags]


def gold_sentences(rng: random.Random, n: int) -> list[list[str]]:
    sentences = []
    for _ in range(n):
        tags: list[str] = []
        while len(tags) < rng.randint(1, 15):
            if rng.random() < 0.3:
                kind = rng.choice(TYPES)
                tags += [f"B-{kind}"] + [f"I-{kind}"] * rng.randint(0, 2)
            else:
                tags.append("O")
        sentences.append(tags)
    return sentences


def scores_of(gold: list[list[str]], predicted: list[list[str]]) -> dict[str, float]:
    metric = EntityScores(TYPES)
    metric.update([bio_to_spans(p) for p in predicted], [bio_to_spans(g) for g in gold])
    return {k: float(v) for k, v in metric.compute().items()}


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_entity_scores_equal_seqeval(seed):
    rng = random.Random(seed)
    gold = gold_sentences(rng, 200)
    predicted = [noisy_copy(rng, g) for g in gold]
    ours = scores_of(gold, predicted)
    assert 0.2 < ours["f1"] < 0.95  # a mixed case, not a trivial one
    assert ours["precision"] == pytest.approx(precision_score(gold, predicted), abs=1e-6)
    assert ours["recall"] == pytest.approx(recall_score(gold, predicted), abs=1e-6)
    assert ours["f1"] == pytest.approx(f1_score(gold, predicted), abs=1e-6)
    report = classification_report(gold, predicted, output_dict=True, zero_division=0)
    for kind in TYPES:
        assert ours[f"f1_{kind}"] == pytest.approx(report[kind]["f1-score"], abs=1e-6)


def test_entity_scores_edge_cases():
    assert scores_of([["O", "O"]], [["O", "O"]])["f1"] == 0.0  # nothing to find, nothing found: 0, as seqeval
    assert scores_of([["B-PER", "I-PER"]], [["B-PER", "I-PER"]])["f1"] == 1.0
    assert scores_of([["B-PER", "I-PER"]], [["B-PER", "O"]])["f1"] == 0.0  # a boundary off is a miss
    assert scores_of([["B-PER"]], [["B-ORG"]])["f1"] == 0.0  # so is the wrong type
    with pytest.raises(ValueError, match="not one of"):
        scores_of([["B-XYZ"]], [["O"]])


def test_states_add_up_across_ranks():
    """Under DDP each rank updates its own share and the states are summed: the result must be the whole set's
    F1, not the mean of per-rank F1s."""
    rng = random.Random(5)
    gold = gold_sentences(rng, 100)
    predicted = [noisy_copy(rng, g) for g in gold]
    ranks = [EntityScores(TYPES), EntityScores(TYPES)]
    for i, (g, p) in enumerate(zip(gold, predicted, strict=True)):
        ranks[i % 2].update([bio_to_spans(p)], [bio_to_spans(g)])
    per_rank = [float(copy.deepcopy(m).compute()["f1"]) for m in ranks]  # copies: compute() caches
    states = [{k: v.clone() for k, v in m.metric_state.items()} for m in ranks]
    merged = ranks[0]
    merged.merge_state(ranks[1])  # what the reduction of a DDP sync does
    for name in ("correct", "predicted", "gold"):  # summed (not stacked, not averaged)
        assert torch.equal(merged.metric_state[name], states[0][name] + states[1][name]), name
    assert float(merged.compute()["f1"]) == pytest.approx(f1_score(gold, predicted), abs=1e-6)
    assert float(merged.compute()["f1"]) != pytest.approx(sum(per_rank) / 2, abs=1e-9)


def test_tag_accuracy_counts_unknown_and_unseen_as_wrong():
    metric = TagAccuracy()
    predicted = torch.tensor([0, 1, 2, -1, 3])  # -1: the model never saw this word (cut off)
    gold = torch.tensor([0, 1, 0, 2, -1])  # -1: a tag the model does not know
    metric.update(predicted, gold, torch.ones(5, dtype=torch.bool))
    assert float(copy.deepcopy(metric).compute()) == pytest.approx(2 / 5)
    other = TagAccuracy()
    other.update(torch.tensor([1]), torch.tensor([1]), torch.tensor([True]))
    metric.merge_state(other)
    assert float(metric.compute()) == pytest.approx(3 / 6)
