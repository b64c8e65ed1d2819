"""Does the warm-started decoder use its source? A memorization probe that chose the N2M recipes' warm-start settings.

The translation recipe as first written (random cross-attention, one learning rate 3e-4 for everything)
trained for 2 epochs and then answered every Korean sentence with the same English one: the decoder had
learned an English language model and ignored the encoder. This probe asks, cheaply, which settings make
the decoder attend to the source: 64 training pairs of the recipe's split, 25 epochs, the recipe's model
(e5-small's first 6 / 3 layers, trimmed vocabulary), then greedy generation on those same 64 sources. A
decoder that uses its source reproduces many different targets (high BLEU, many distinct outputs); one that
does not writes the same sentence for every input. Training data only: no validation or test row is used.

    python benchmarks/seq2seq_warm_start_probe.py     # ~6 min on 2 CPU cores

Writes benchmarks/results/seq2seq_warm_start_probe.json.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import torch
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from _measure import machine, today  # noqa: E402
from docs_pages import write_pages  # noqa: E402

RECIPE = ROOT / "recipes/ko-en-translation.yaml"
VARIANTS = [
    {"cross_attention_init": "random", "lr": 3e-4, "head_lr": 3e-4},
    {"cross_attention_init": "random", "lr": 1e-4, "head_lr": 1e-3},
    {"cross_attention_init": "self_attention", "lr": 1e-4, "head_lr": 1e-3},
]
PAIRS, EPOCHS = 64, 25


def probe(variant: dict, data, folder: str) -> dict:
    from n2m.shapes.n2m.generation import GenerationOptions, decode, generate_ids
    from n2m.shapes.n2m.metrics import GenerationMetrics
    from n2m.shapes.n2m.model import NEW_IN_WARM_START, Seq2SeqModel, build_seq2seq

    torch.manual_seed(0)
    net = build_seq2seq("warm_start", folder, data.tokenizer, encoder_layers=6, decoder_layers=3,
                        cross_attention_init=variant["cross_attention_init"])  # fmt: skip
    model = Seq2SeqModel(net, label_smoothing=0.1).train()
    named = list(model.named_parameters())
    new = [p for n, p in named if any(part in n for part in NEW_IN_WARM_START)]
    old = [p for n, p in named if not any(part in n for part in NEW_IN_WARM_START)]
    optimizer = torch.optim.AdamW([{"params": old, "lr": variant["lr"]}, {"params": new, "lr": variant["head_lr"]}])
    start = time.time()
    losses = []
    for _ in range(EPOCHS):
        total = 0.0
        for batch in data.train_dataloader():
            loss = model.loss(model(batch), batch["labels"])
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
            total += loss.item()
        losses.append(round(total / len(data.train_dataloader()), 3))
    model.eval()
    metrics = GenerationMetrics(["bleu", "chrf", "chrf++"])  # chrF (characters only) and chrF++
    outputs = []
    for batch in data.loader(data.datasets["train"], 32, None):
        ids = generate_ids(net, batch["input_ids"], batch["attention_mask"], GenerationOptions(max_new_tokens=40))
        texts = [decode(data.tokenizer, row) for row in ids]
        metrics.update(texts, batch["references"])
        outputs += texts
    scores = metrics.compute()
    return {
        **variant,
        "train_loss_by_epoch": losses,
        "memorization_bleu": round(scores["bleu"], 2),
        "memorization_chrf": round(scores["chrf"], 2),
        "memorization_chrf++": round(scores["chrf++"], 2),
        "distinct_outputs": len(set(outputs)),
        "examples": [
            {"output": o, "target": ex.target} for o, ex in zip(outputs[:3], data.examples["train"], strict=False)
        ],
        "wall_s": round(time.time() - start, 1),
    }


def main() -> None:
    from n2m.shapes.n2m.data import Seq2SeqDataModule
    from n2m.shapes.n2m.examples import Seq2SeqColumns

    config = dict(yaml.safe_load(RECIPE.read_text(encoding="utf-8"))["data"])
    config["columns"] = Seq2SeqColumns(**config["columns"])
    folder = Seq2SeqDataModule(**config).backbone_dir  # the recipe's own trimmed e5-small
    data = Seq2SeqDataModule(**config, max_train_samples=PAIRS, max_val_samples=1)
    data.__dict__["backbone_dir"] = folder  # same vocabulary as the recipe, not one trimmed to 64 pairs
    data.setup("fit")
    results = []
    for variant in VARIANTS:
        results.append(probe(variant, data, folder))
        print(json.dumps(results[-1], ensure_ascii=False), flush=True)
    report = {"machine": machine(), "date": today(), "recipe": str(RECIPE.relative_to(ROOT)), "pairs": PAIRS,
              "epochs": EPOCHS, "variants": results}  # fmt: skip
    out = ROOT / "benchmarks/results/seq2seq_warm_start_probe.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    write_pages("seq2seq_warm_start_probe")


if __name__ == "__main__":
    main()
