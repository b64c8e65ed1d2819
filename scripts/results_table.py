"""Print the README's results table from the reports the runs wrote (results/recipes/*.json)."""

from __future__ import annotations

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MAIN = {
    "test/pearson": "Pearson",
    "test/spearman": "Spearman",
    "test/accuracy": "accuracy",
    "test/f1_macro": "macro-F1",
    "test/f1": "entity F1",
    "test/precision": "precision",
    "test/recall": "recall",
    "test/bleu": "BLEU",
    "test/chrf": "chrF",
    "test/chrf++": "chrF++",
    "test/rouge1": "ROUGE-1",
    "test/rouge2": "ROUGE-2",
    "test/rougeL": "ROUGE-L",
}


# 0-100 scale, as SacreBLEU's
PERCENT = {"test/bleu", "test/chrf", "test/chrf++", "test/rouge1", "test/rouge2", "test/rougeL"}


def value(key: str, x: float) -> str:
    return f"{x:.2f}" if key in PERCENT else f"{x:.4f}"


def main() -> None:
    print("| recipe | test split | test metrics | checkpoint chosen on validation | fit time | machine | date |")
    print("|---|---|---|---|---|---|---|")
    for path in sorted((ROOT / "results/recipes").glob("*.json")):
        r = json.loads(path.read_text())
        metrics = ", ".join(f"{name} {value(key, r['test'][key])}" for key, name in MAIN.items() if key in r["test"])
        best = Path(r["best_checkpoint"]).name.removesuffix(".ckpt") if r.get("best_checkpoint") else "last"
        minutes = f"{r['fit_wall_s'] / 60:.0f} min"
        print(f"| `{r['command']}` | {r.get('test_file', '')} | {metrics} | {best} | {minutes} | "
              f"{r['machine']} | {r['date']} |")  # fmt: skip


if __name__ == "__main__":
    main()
