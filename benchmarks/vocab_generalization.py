"""What a vocabulary-trimmed tokenizer costs on text from other sources, and what `n2m export` (full vocabulary by
default) gives back. Three measurements, into benchmarks/results/vocab_generalization.json (+ .md):

1. `tokenizers`: on Korean corpora other than KorSTS (news, chatbot, hate-speech comments and news titles, KLUE-NER
   sentences, question pairs), the share of pieces that are `<unk>` and the share of texts segmented differently
   from the untouched e5-small, for the KorSTS recipe's trimmed tokenizer and for the tokenizer of the full export.
2. `zero_shot`: the untouched e5-small bi-encoder (no training) on KorSTS test, Pearson of cosine against gold,
   read through the full tokenizer, through one trimmed to KorSTS train+dev (the recipe's cut) and through one
   trimmed to the news corpus: the weights are the same, only the tokenizer differs.
3. `fine_tuned`: the quick start's KorSTS model (recipes/korsts.yaml for 60 batches, as scripts/quickstart.sh
   trains it; `--full-recipe`: the whole recipe, best epoch on dev, about 45 minutes on 2 cores) exported both ways
   (`--vocab full`, the default, and `--vocab trained`), scored on KorSTS test (Pearson) and on
   korean_question_pair test (the score as a duplicate score: ROC AUC, duplicates being `is_duplicate == 0`), with
   the untouched backbone on the same sets for reference.

    python benchmarks/vocab_generalization.py          # trains once (~5 min on 2 cores), then ~5 min
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from _measure import machine, today, write_results  # noqa: E402
from docs_pages import write_pages  # noqa: E402

from n2m.backbones import resolve_backbone, trimmed_backbone  # noqa: E402
from n2m.core.export import export_checkpoint  # noqa: E402

DATA = ROOT / "data"
QUICK_START = ["--trainer.max_epochs", "1", "--trainer.limit_train_batches", "60"]  # as scripts/quickstart.sh
PREFIX = "query: "  # the KorSTS recipe's text_prefix (e5's convention)


def tsv_rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))


def corpora() -> dict[str, list[str]]:
    """Korean text from sources other than KorSTS, as each file has it."""
    news = [
        line.strip()
        for split in ("dev", "test")
        for line in (DATA / f"ko_en_news_park/korean-english-park.{split}.ko").read_text(encoding="utf-8").splitlines()
    ]
    with (DATA / "korean_chatbot/ChatbotData.csv").open(encoding="utf-8", newline="") as f:
        chatbot = [text for row in csv.DictReader(f) for text in (row["Q"], row["A"])]
    hate = [r["comments"] for split in ("train", "dev") for r in tsv_rows(DATA / f"korean_hate_speech/{split}.tsv")]
    hate += (DATA / "korean_hate_speech/dev.news_title.txt").read_text(encoding="utf-8").splitlines()
    ner = [
        re.sub(r"<([^<>:]+):[A-Z]{2}>", r"\1", line.split("\t", 1)[1])
        for line in (DATA / "klue_ner/klue-ner-v1.1_dev.tsv").read_text(encoding="utf-8").splitlines()
        if line.startswith("## klue-ner")
    ]
    pairs = [q for r in question_pairs("train") for q in (r["question1"], r["question2"])]
    found = {"news": news, "chatbot": chatbot, "hate_speech": hate, "klue_ner": ner, "question_pair": pairs}
    return {name: [t for t in texts if t.strip()] for name, texts in found.items()}


def question_pairs(split: str) -> list[dict[str, str]]:
    return tsv_rows(DATA / f"korean_question_pair/{split}.txt")


def korsts(split: str) -> list[dict[str, str]]:
    return tsv_rows(DATA / f"korsts/sts-{split}.tsv")


def segmentations(folder: Path, texts: list[str]) -> tuple[list[list[str]], int]:
    """Each text's pieces, and how many of them are unknown: by id, as the model sees them (a Unigram tokenizer
    names an unknown piece by its own text but gives it the `<unk>` id)."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    encodings = tokenizer.backend_tokenizer.encode_batch(texts, add_special_tokens=False)
    unknown = sum(i == tokenizer.unk_token_id for e in encodings for i in e.ids)
    return [e.tokens for e in encodings], unknown


def tokenizer_stats(folders: dict[str, Path], texts: dict[str, list[str]]) -> dict[str, dict[str, dict]]:
    """Per corpus and tokenizer: `<unk>` share of pieces, and share of texts segmented unlike the full one."""
    out: dict[str, dict[str, dict]] = {}
    for corpus, lines in texts.items():
        full, _ = segmentations(folders["backbone"], lines)
        out[corpus] = {"texts": len(lines), "pieces": sum(map(len, full))}
        for name, folder in folders.items():
            pieces, unk = segmentations(folder, lines)
            changed = sum(a != b for a, b in zip(pieces, full, strict=True))
            out[corpus][name] = {
                "unk_rate": round(unk / max(1, sum(map(len, pieces))), 5),
                "changed_texts": round(changed / len(lines), 4),
            }
        print(corpus, out[corpus], flush=True)
    return out


def embed(folder: Path, texts: list[str], batch_size: int = 64) -> np.ndarray:
    """e5's own recipe for a sentence vector: prefix, mean pooling, unit length (no fine-tuning)."""
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    model = AutoModel.from_pretrained(str(folder), add_pooling_layer=False).eval()
    vectors = []
    with torch.inference_mode():
        for i in range(0, len(texts), batch_size):
            batch = tokenizer([PREFIX + t for t in texts[i : i + batch_size]], padding=True, truncation=True,
                              max_length=64, return_tensors="pt")  # fmt: skip
            hidden = model(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1)
            vectors.append(torch.nn.functional.normalize(pooled, dim=-1).numpy())
    return np.concatenate(vectors)


def pair_scores(score: Callable[[list[str], list[str]], np.ndarray]) -> dict[str, float]:
    """KorSTS test Pearson and question-pair test AUC of one way of scoring pairs."""
    from torchmetrics.functional.classification import binary_auroc

    sts = korsts("test")
    gold = np.array([float(r["score"]) for r in sts])
    predicted = score([r["sentence1"] for r in sts], [r["sentence2"] for r in sts])
    qp = question_pairs("test")
    duplicate = torch.tensor([r["is_duplicate"] == "0" for r in qp], dtype=torch.long)  # 0 = the same question
    qp_scores = torch.tensor(score([r["question1"] for r in qp], [r["question2"] for r in qp]), dtype=torch.float)
    return {
        "korsts_test_pearson": round(float(np.corrcoef(predicted, gold)[0, 1]), 4),
        "question_pair_auc": round(float(binary_auroc(qp_scores, duplicate)), 4),
    }


def cosine_scorer(folder: Path) -> Callable[[list[str], list[str]], np.ndarray]:
    return lambda a, b: (embed(folder, a) * embed(folder, b)).sum(1)


def export_scorer(folder: Path) -> Callable[[list[str], list[str]], np.ndarray]:
    from n2m.core.predictor import Predictor

    predictor = Predictor.from_pretrained(folder)

    def score(a: list[str], b: list[str]) -> np.ndarray:
        inputs = [{"text": x, "text_pair": y} for x, y in zip(a, b, strict=True)]
        return np.array([p.score for p in predictor.predict(inputs, batch_size=64)])

    return score


def train_recipe(run: Path, overrides: list[str]) -> Path:
    """The KorSTS recipe's best checkpoint (on dev), trained once into `run`."""
    results = run / "results.json"
    if not results.is_file():
        subprocess.run([sys.executable, "-m", "n2m.cli", "fit", "--config", str(ROOT / "recipes/korsts.yaml"),
                        "--trainer.default_root_dir", str(run), *overrides], check=True, cwd=ROOT)  # fmt: skip
    return Path(json.loads(results.read_text(encoding="utf-8"))["best_checkpoint"])


def markdown(results: dict) -> str:
    lines = [
        "# Vocabulary trimming on text from other sources",
        "",
        f"{results['machine']}, {results['date']}. Written by `benchmarks/vocab_generalization.py`; fine-tuned: "
        f"`n2m fit --config {results['recipe']}`.",
        "",
        "## Tokenizers: `<unk>` share of pieces / share of texts segmented unlike e5-small",
        "",
        "| corpus | texts | e5-small (untouched) | KorSTS-trimmed | full export |",
        "|---|---:|---|---|---|",
    ]
    for corpus, row in results["tokenizers"].items():
        cells = [f"{row[k]['unk_rate']:.2%} / {row[k]['changed_texts']:.1%}" for k in ("backbone", "trimmed", "export")]
        lines.append(f"| {corpus} | {row['texts']} | " + " | ".join(cells) + " |")
    lines += ["", "## Zero-shot e5-small (no training): only the tokenizer differs", "",
              "| tokenizer | KorSTS test Pearson | question-pair AUC |", "|---|---:|---:|"]  # fmt: skip
    for name, row in results["zero_shot"].items():
        lines.append(f"| {name} | {row['korsts_test_pearson']:.4f} | {row['question_pair_auc']:.4f} |")
    lines += ["", "## The KorSTS recipe, fine-tuned, exported two ways", "",
              "| export | KorSTS test Pearson | question-pair AUC |", "|---|---:|---:|"]  # fmt: skip
    for name, row in results["fine_tuned"].items():
        lines.append(f"| {name} | {row['korsts_test_pearson']:.4f} | {row['question_pair_auc']:.4f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--full-recipe", action="store_true", help="fine-tune with the whole recipe (3 epochs)")
    args = parser.parse_args()
    run = ROOT / ("runs/vocab-generalization-full" if args.full_recipe else "runs/vocab-generalization")
    checkpoint = train_recipe(run, [] if args.full_recipe else QUICK_START)
    trimmed = Path(torch.load(checkpoint, map_location="cpu", weights_only=True, mmap=True)["n2m_backbone_dir"])
    exports = {vocab: export_checkpoint(checkpoint, run / f"export-{vocab}", vocab=vocab)
               for vocab in ("full", "trained")}  # fmt: skip
    backbone = resolve_backbone("e5-small")
    texts = corpora()
    news_cut = trimmed_backbone("e5-small", texts["news"])
    results = {
        "machine": machine(),
        "date": today(),
        "recipe": "recipes/korsts.yaml" + ("" if args.full_recipe else " " + " ".join(QUICK_START)),
        "checkpoint": str(checkpoint.relative_to(ROOT)),
        "trimmed_pieces": len(json.loads((trimmed / "n2m-trim.json").read_text())["kept"]),
        "tokenizers": tokenizer_stats({"backbone": backbone, "trimmed": trimmed, "export": exports["full"]}, texts),
        "zero_shot": {
            "e5-small, full tokenizer": pair_scores(cosine_scorer(backbone)),
            "cut to KorSTS train+dev (the recipe's)": pair_scores(cosine_scorer(trimmed)),
            "cut to the news corpus": pair_scores(cosine_scorer(news_cut)),
        },
        "fine_tuned": {
            "--vocab full (default)": pair_scores(export_scorer(exports["full"])),
            "--vocab trained": pair_scores(export_scorer(exports["trained"])),
        },
    }
    print(json.dumps(results["zero_shot"], indent=1), json.dumps(results["fine_tuned"], indent=1), flush=True)
    name = "vocab_generalization.full-recipe" if args.full_recipe else "vocab_generalization"
    write_results(ROOT / "benchmarks/results", name, results, markdown(results))
    write_pages("vocab_generalization")


if __name__ == "__main__":
    main()
