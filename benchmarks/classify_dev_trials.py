"""Korean classification: which of n2m's design choices a recipe's score depends on, judged on the validation
split only (`--test_after_fit false`: the test split is not read).

`classify_vs_hf.py` found n2m 0.045 macro-F1 under HF `Trainer` on `recipes/ko-hate-speech.yaml`, on the same
trimmed model, with validation agreeing (0.5767 against 0.6089). What differs there is n2m's design, not the
model: mean pooling where HF's head reads the first token, and length-grouped batches where HF's are in a random
order. Each trial is `n2m fit --config RECIPE` plus its overrides, in runs/trial-<recipe>-<name>; its validation
metrics after each epoch, training examples/s and peak RSS go to benchmarks/results/classify_dev_trials.json,
under the recipe's name. A change the recipe takes is the trial with the best validation score of its monitored
metric, and its test figure is then the next suite's.

    python benchmarks/classify_dev_trials.py --recipe recipes/ko-hate-speech.yaml   # every trial, ~7 min each
    python benchmarks/classify_dev_trials.py --recipe recipes/ko-hate-speech.yaml --collect   # runs/ only
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from _measure import machine, n2m_command, repo_path, today, train_timer_arg, val_by_epoch  # noqa: E402
from docs_pages import write_pages  # noqa: E402

TRIALS: dict[str, list[str]] = {
    "recipe": [],  # as committed: mean pooling, length-grouped batches
    "random_order": ["--data.group_by_length", "false"],  # batches in a random order, as HF's Trainer draws them
    "cls_pooling": ["--model.pooling", "cls"],  # the first token's vector, as HF's classification head reads
    "cls_pooling_random_order": ["--model.pooling", "cls", "--data.group_by_length", "false"],
}
METRICS = ("f1_macro", "accuracy")


def run_trials(recipe: Path, names: list[str], collect: bool) -> None:
    out = ROOT / "benchmarks/results/classify_dev_trials.json"
    results = json.loads(out.read_text(encoding="utf-8")) if out.exists() else {}
    config = yaml.safe_load(recipe.read_text(encoding="utf-8"))
    monitor = config["model"].get("monitor", "f1_macro")
    trials = results.setdefault(recipe.stem, {"recipe": repo_path(recipe), "monitor": monitor, "trials": {}})
    for name in names:
        root = ROOT / f"runs/trial-{recipe.stem}-{name}"
        if not collect:
            shutil.rmtree(root, ignore_errors=True)  # a fresh run: `val_by_epoch` reads every logged version in it
            n2m_command("fit", "--config", str(recipe), "--test_after_fit", "false", "--trainer.default_root_dir",
                        str(root), "--trainer.enable_progress_bar", "false", *TRIALS[name],
                        "--trainer.callbacks+", train_timer_arg(root / "train_time.json"))  # fmt: skip
        metrics = val_by_epoch(root, METRICS)
        best = max(range(len(metrics[monitor])), key=metrics[monitor].__getitem__)
        timer = json.loads((root / "train_time.json").read_text(encoding="utf-8"))
        earlier = trials["trials"].get(name, {})
        trials["trials"][name] = {
            "overrides": TRIALS[name],
            "val_by_epoch": metrics,
            "best_epoch": best + 1,
            "best": {m: metrics[m][best] for m in METRICS},
            "train_s": round(timer["train_s"], 1),
            "peak_rss_mb": timer["peak_rss_mb_after_training"],
            "machine": earlier.get("machine", machine()) if collect else machine(),
            "date": earlier.get("date", today()) if collect else today(),
        }
        out.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        print(name, trials["trials"][name]["best"], flush=True)
    write_pages("classify_dev_trials")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help=f"trials to run, of {', '.join(TRIALS)} (default: all)")
    parser.add_argument("--recipe", default=str(ROOT / "recipes/ko-hate-speech.yaml"))
    parser.add_argument("--collect", action="store_true", help="read finished trials in runs/, train nothing")
    args = parser.parse_args()
    unknown = set(args.names) - set(TRIALS)
    if unknown:
        parser.error(f"unknown trials {sorted(unknown)}; known: {', '.join(TRIALS)}")
    run_trials(Path(args.recipe).resolve(), args.names or list(TRIALS), args.collect)
