"""What e5-small's attention dropout costs a training step on CPU: bytes saved for backward, and time.

One forward and backward pass of e5-small over one batch (32 sentences of 64
tokens, the recipe's longest), with `attention_probs_dropout_prob` 0.1 (e5's own) and 0. The bytes are those
autograd saves for backward, counted by `saved_tensors_hooks` (a tensor saved by two operations counts twice, so
they are upper bounds; the difference is what the setting changes). Writes
benchmarks/results/attention_dropout_memory.json.

    python benchmarks/attention_dropout_memory.py     # under a minute
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import torch
from transformers import AutoModel

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from _measure import machine, today, write_results  # noqa: E402
from docs_pages import write_pages  # noqa: E402


def measure(backbone: str, dropout: float, repeats: int = 3) -> dict:
    torch.manual_seed(0)
    model = AutoModel.from_pretrained(backbone, attention_probs_dropout_prob=dropout).train()
    ids = torch.randint(5, model.config.vocab_size, (32, 64))
    saved = 0

    def count(t: torch.Tensor) -> torch.Tensor:
        nonlocal saved
        saved += t.numel() * t.element_size()
        return t

    def step() -> None:
        model(input_ids=ids, attention_mask=torch.ones_like(ids)).last_hidden_state.mean().backward()

    with torch.autograd.graph.saved_tensors_hooks(count, lambda t: t):
        step()
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        seconds.append(time.perf_counter() - start)
    return {"saved_mb": round(saved / 2**20), "step_s_median": round(sorted(seconds)[len(seconds) // 2], 2)}


def main() -> None:
    from n2m.backbones import resolve_backbone

    backbone = resolve_backbone("e5-small")  # the recipe trims its vocabulary, which changes no activation
    results = {"machine": machine(), "date": today(), "batch": [32, 64], "settings": {}}
    for dropout in (0.1, 0.0):
        results["settings"][str(dropout)] = measure(backbone, dropout)
        print(dropout, results["settings"][str(dropout)], flush=True)
    lines = ["| attention dropout | saved for backward MB (one side) | fwd + bwd s (median of 3) |", "|---|---|---|"]
    lines += [f"| {k} | {v['saved_mb']} | {v['step_s_median']} |" for k, v in results["settings"].items()]
    write_results(ROOT / "benchmarks/results", "attention_dropout_memory", results, "\n".join(lines) + "\n")
    write_pages("attention_dropout_memory")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
