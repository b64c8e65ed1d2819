"""Weight averaging ("model soup", Wortsman et al. 2022) of the KorSTS recipe's seed runs, judged on dev only.

A soup is one model: the element-wise mean of the weights of runs fine-tuned from the same backbone, at a single
model's cost to predict. This reads the exported seed models of the full benchmark (`sts_vs_hf.py --ensemble 3
--ensemble-kind seeds`: seed 0 in runs/bench-sts-full/n2m/model, seeds 1 and 2 beside it), averages each
combination and writes each one's KorSTS dev Pearson to benchmarks/results/sts_seed_soup.json.

    python benchmarks/sts_seed_soup.py      # about 2 minutes on 2 CPU cores
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from itertools import combinations
from pathlib import Path

from safetensors.torch import load_file, save_file
from scipy.stats import pearsonr

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from _measure import machine, today  # noqa: E402
from docs_pages import write_pages  # noqa: E402
from sts_vs_hf import read_korsts  # noqa: E402

RUNS = ROOT / "runs/bench-sts-full"
SEEDS = {0: RUNS / "n2m/model", 1: RUNS / "n2m_ensemble_seeds/seed1/model", 2: RUNS / "n2m_ensemble_seeds/seed2/model"}


def soup(folders: list[Path], out: Path) -> Path:
    """`folders`' mean weights in a copy of the first (same backbone, vocabulary and config: checked by key)."""
    shutil.copytree(folders[0], out, dirs_exist_ok=True)
    weights = [load_file(f / "model.safetensors") for f in folders]
    if any(w.keys() != weights[0].keys() for w in weights):
        raise ValueError(f"{folders} do not share one architecture")
    mean = {k: sum(w[k] for w in weights) / len(weights) for k in weights[0]}
    save_file(mean, out / "model.safetensors", metadata={"format": "pt"})
    return out


def main() -> None:
    from n2m import Predictor

    dev = read_korsts(ROOT / "data/korsts/sts-dev.tsv", None)
    pairs, gold = [(r["sentence1"], r["sentence2"]) for r in dev], [float(r["score"]) for r in dev]

    def dev_pearson(folder: Path) -> float:
        return round(float(pearsonr(Predictor.from_pretrained(folder).predict_outputs(pairs).tolist(), gold)[0]), 4)

    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for size in (1, 2, 3):
            for seeds in combinations(SEEDS, size):
                folders = [SEEDS[s] for s in seeds]
                folder = folders[0] if size == 1 else soup(folders, Path(tmp, "-".join(map(str, seeds))))
                name = "+".join(f"seed{s}" for s in seeds)
                results[name] = dev_pearson(folder)
                print(name, results[name], flush=True)
    out = {"dev_pearson": results, "machine": machine(), "date": today()}
    path = ROOT / "benchmarks/results/sts_seed_soup.json"
    path.write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
    write_pages("sts_seed_soup")


if __name__ == "__main__":
    main()
