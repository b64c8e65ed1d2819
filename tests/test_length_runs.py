"""`length_runs`: how a CPU step cuts a batch into length-sorted runs, each padded only to its own longest row."""

from __future__ import annotations

import torch

from n2m.core.batching import length_runs


def test_runs_cover_every_row_once_longest_first():
    lengths = torch.tensor([7, 30, 12, 30, 5, 18, 9, 25])
    runs = length_runs(lengths, most=3)
    order = torch.cat(runs)
    assert sorted(order.tolist()) == list(range(8))
    assert lengths[order].tolist() == sorted(lengths.tolist(), reverse=True)


def test_as_many_runs_as_cost_least():
    short_and_long = torch.tensor([60] + [10] * 15)
    assert len(length_runs(short_and_long, most=8, overhead=0.0)) == 8  # padding alone: more runs never cost more
    # one 60-token row pads 15 others: a second run saves 400 padded tokens for an overhead of 0.03 × 210
    assert len(length_runs(short_and_long, most=2, overhead=0.03)) == 2
    assert len(length_runs(short_and_long, most=8, overhead=10.0)) == 1  # calls dearer than any padding
    assert len(length_runs(torch.full((16,), 20), most=8, overhead=0.03)) == 1  # nothing to save
    assert len(length_runs(short_and_long, most=1)) == 1
