"""Answers of the trained Korean chatbot (recipes/ko-chatbot.yaml) to held-out questions chosen by a fixed seed.

The questions come from the recipe's test split (never trained on, never used to choose the checkpoint),
`--n` of them picked by `torch.randperm` with `--seed`: not by hand. The best checkpoint of the run is
exported (if it is not already) and answers with the recipe's decoding, through the exported Predictor.
Writes benchmarks/results/chatbot_samples.md (question, the model's answer, the dataset's answer).

    n2m fit --config recipes/ko-chatbot.yaml
    python benchmarks/chatbot_samples.py
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from _measure import machine, today  # noqa: E402
from docs_pages import write_pages  # noqa: E402

RECIPE = ROOT / "recipes/ko-chatbot.yaml"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", default=str(ROOT / "runs/ko-chatbot"), help="the recipe's default_root_dir")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--n", type=int, default=5)
    parser.add_argument("--out", default=str(ROOT / "benchmarks/results/chatbot_samples.md"))
    args = parser.parse_args()

    from n2m.core.export import chosen_checkpoint, export_checkpoint
    from n2m.core.predictor import Predictor
    from n2m.shapes.n2m.data import Seq2SeqDataModule
    from n2m.shapes.n2m.examples import Seq2SeqColumns

    run = Path(args.run)
    report = json.loads((run / "results.json").read_text(encoding="utf-8"))
    model_dir = run / "model"
    if not (model_dir / "n2m.json").is_file():
        export_checkpoint(chosen_checkpoint(run), model_dir)  # the one its validation chose, wherever the run lies
    predictor = Predictor.from_pretrained(model_dir)

    config = yaml.safe_load(RECIPE.read_text(encoding="utf-8"))
    data_cfg = dict(config["data"], columns=Seq2SeqColumns(**config["data"]["columns"]))
    test = Seq2SeqDataModule(**data_cfg).read_splits("test")["test"]
    picks = sorted(torch.randperm(len(test), generator=torch.Generator().manual_seed(args.seed))[: args.n].tolist())
    chosen = [test[i] for i in picks]
    answers = predictor.predict([ex.source for ex in chosen])

    test_scores = {k.removeprefix("test/"): round(v, 2) for k, v in report["test"].items() if k != "test/loss"}
    lines = [
        f"Korean chatbot (recipes/ko-chatbot.yaml): {args.n} held-out test questions picked by "
        f"`torch.randperm(seed={args.seed})` from the {len(test)}-question test split; decoding as in the recipe "
        f"({predictor.generation.num_beams} beams). Test scores of this checkpoint: {test_scores} "
        f"(BLEU with SacreBLEU `char` tokenization). {today()}, {machine()}.",
        "",
        "| # | question (test split) | model's answer | dataset's answer |",
        "|---|---|---|---|",
    ]
    for n, (ex, answer) in enumerate(zip(chosen, answers, strict=True), start=1):
        cells = [str(n), ex.source, answer.text, ex.references[0]]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    write_pages("chatbot_samples", written_to=out.parent)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
