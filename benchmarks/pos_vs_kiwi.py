"""Korean POS per word (eojeol): n2m's tagger (recipes/ko-pos.yaml, KLUE-DP) vs Kiwi, on the same test words.

One run: n2m is trained with its recipe (KLUE-DP split by data/splits/klue-dp.json; the epoch chosen on the
validation split), exported, and its Predictor tags the test sentences; Kiwi (`kiwipiepy`, its bundled model)
analyzes the same sentences, and each word's morphemes are joined into KLUE-DP's form (`NNP+JKS`): a morpheme
belongs to the word its first character is in. Both are scored by the same code: word-level exact match of the
whole tag sequence.

Kiwi's tags are mapped to KLUE-DP's where they name the same thing (`SSO`/`SSC` → `SS`, `-R`/`-I` irregular-
conjugation marks dropped). Kiwi has one `MM` where KLUE-DP has `MMD`/`MMN`/`MMA`, so a second, coarse score
collapses those on both sides (and `W_*` web tags, which KLUE-DP has not, stay as they are: wrong).

    python benchmarks/pos_vs_kiwi.py --quick    # 64 training sentences, 1 epoch
    python benchmarks/pos_vs_kiwi.py            # the recipe; writes benchmarks/results/pos_vs_kiwi.json
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from _measure import machine, today, write_results  # noqa: E402
from docs_pages import write_pages  # noqa: E402

SOURCE = ROOT / "data/klue_dp/klue-dp-v1.1_dev.tsv"
SPLIT = ROOT / "data/splits/klue-dp.json"
RECIPE = ROOT / "recipes/ko-pos.yaml"


def kiwi_tag(tag: str) -> str:
    tag = re.sub(r"-[RI]$", "", tag)
    return {"SSO": "SS", "SSC": "SS", "UN": "NA"}.get(tag, tag)


def coarse(sequence: str) -> str:
    return "+".join("MM" if t.startswith("MM") else t for t in sequence.split("+"))


def kiwi_words(kiwi, examples) -> list[list[str]]:
    """Per sentence, per word: Kiwi's morpheme tags joined with '+' (empty when no morpheme starts inside)."""
    out = []
    for ex, tokens in zip(examples, kiwi.tokenize([ex.text for ex in examples]), strict=True):
        tags: list[list[str]] = [[] for _ in ex.units]
        for token in tokens:
            for w, (a, b) in enumerate(ex.units):
                if a <= token.start < b:
                    tags[w].append(kiwi_tag(token.tag))
                    break
        out.append(["+".join(t) for t in tags])
    return out


def accuracy(predicted: list[list[str]], gold: list[list[str]], key=lambda s: s) -> float:
    pairs = [(key(p), key(g)) for ps, gs in zip(predicted, gold, strict=True) for p, g in zip(ps, gs, strict=True)]
    return round(sum(p == g for p, g in pairs) / len(pairs), 4)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="64 training sentences, 1 epoch")
    parser.add_argument("--epochs", type=int, default=None, help="default: the recipe's")
    parser.add_argument("--out", default=str(ROOT / "runs/bench-pos"))
    args = parser.parse_args()

    import kiwipiepy
    from kiwipiepy import Kiwi

    from n2m.cli import main as n2m
    from n2m.core.export import export_checkpoint
    from n2m.core.predictor import Predictor
    from n2m.shapes.n2n.examples import load_token_examples

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    split_file = SPLIT
    spec = json.loads(SPLIT.read_text(encoding="utf-8"))
    if args.quick:
        spec = {"train": spec["train"][:64], "val": spec["val"][:32], "test": spec["test"]}
        split_file = out / "quick-split.json"
        split_file.write_text(json.dumps(spec), encoding="utf-8")
    fit = ["fit", "--config", str(RECIPE), "--data.split_file", str(split_file), "--trainer.default_root_dir",
           str(out / "n2m"), "--trainer.enable_progress_bar", "false"]  # fmt: skip
    if args.quick or args.epochs:
        fit += ["--trainer.max_epochs", str(1 if args.quick else args.epochs)]
    start = time.time()
    n2m(fit)
    fit_s = time.time() - start
    report = json.loads((out / "n2m/results.json").read_text())
    model = export_checkpoint(report["best_checkpoint"], out / "n2m/model")

    by_id = {ex.id: ex for ex in load_token_examples(SOURCE, "klue-dp")}
    test = [by_id[i] for i in spec["test"]]
    gold = [list(ex.tags) for ex in test]
    predictor = Predictor.from_pretrained(model)
    names = predictor.card.labels
    n2m_tags = [[names[t] if t >= 0 else "" for t in tags] for tags, _ in predictor.predict_units(test)]
    start = time.time()
    kiwi = Kiwi()
    kiwi_tags = kiwi_words(kiwi, test)
    kiwi_s = time.time() - start

    known = set(names)
    results = {
        "words": sum(len(g) for g in gold),
        "sentences": len(test),
        "mode": "quick" if args.quick else "full",
        "machine": machine(),
        "date": today(),
        "kiwi": {
            "accuracy": accuracy(kiwi_tags, gold),
            "accuracy_coarse_mm": accuracy(kiwi_tags, gold, coarse),
            "version": f"kiwipiepy {kiwipiepy.__version__}",
            "analyze_s": round(kiwi_s, 1),
        },
        "n2m": {
            "accuracy": accuracy(n2m_tags, gold),
            "accuracy_coarse_mm": accuracy(n2m_tags, gold, coarse),
            "test_accuracy_logged": round(report["test"]["test/accuracy"], 4),
            "epochs_trained": report["epochs"],
            "best_checkpoint": report["best_checkpoint"],
            "fit_s": round(fit_s, 1),
            "tag_sequences_known": len(names),
        },
        "gold_words_with_a_sequence_unseen_in_training": sum(g not in known for gs in gold for g in gs),
    }
    name = "pos_vs_kiwi.quick" if args.quick else "pos_vs_kiwi"
    r = results
    table = (
        f"KLUE-DP test split ({r['sentences']} sentences, {r['words']} words), word-level exact match of the whole "
        f"POS sequence, {r['machine']}, {r['date']}, mode {r['mode']}\n\n"
        "| system | accuracy | accuracy, MMD/MMN/MMA as MM |\n|---|---|---|\n"
        f"| {r['kiwi']['version']} (bundled model, no training) | {r['kiwi']['accuracy']} | "
        f"{r['kiwi']['accuracy_coarse_mm']} |\n"
        f"| n2m (recipes/ko-pos.yaml, e5-small) | {r['n2m']['accuracy']} | {r['n2m']['accuracy_coarse_mm']} |\n\n"
        f"{r['gold_words_with_a_sequence_unseen_in_training']} test words have a tag sequence never seen in "
        "training: n2m cannot get those right.\n"
    )
    write_results(ROOT / "benchmarks/results", name, results, table)
    write_pages("pos_vs_kiwi")
    print(json.dumps(results, indent=2, ensure_ascii=False))
    print(table)


if __name__ == "__main__":
    main()
