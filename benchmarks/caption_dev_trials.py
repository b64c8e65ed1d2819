"""Korean captioning: image encoders for `recipes/ko-caption.yaml`, each judged on the validation images only
(`--test_after_fit false`: neither test split is read).

Each trial is `n2m fit --config recipes/ko-caption.yaml` plus its overrides, on one budget for all (`--rows`
training captions, `--epochs`), in runs/trial-caption-<name>; its validation metrics after each epoch (greedy
decoding: CIDEr-D, BLEU, chrF, and how often a caption names exactly the objects and the counts of its image),
its training seconds and peak RSS go to benchmarks/results/caption_dev_trials.json. The encoder the recipe keeps
is the trial with the best validation CIDEr-D.

    python benchmarks/caption_dev_trials.py vit cnn_no_smoothing cnn_random_order cnn_pool_4 --rows 9981 --epochs 4
    python benchmarks/caption_dev_trials.py --collect           # only read the trials already in runs/
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from _measure import machine, n2m_command, today, train_timer_arg, val_by_epoch  # noqa: E402
from docs_pages import write_pages  # noqa: E402

RECIPE = "recipes/ko-caption.yaml"
# Each trial names its whole encoder and label smoothing, so it reruns the same whatever the recipe now holds.
# A ViT of 3 layers, 256 wide, over 16-pixel patches (the recipe's first encoder)
VIT = {"kind": "vit", "hidden_size": 256, "layers": 3, "heads": 4, "ffn_size": 1024, "patch_size": 16,
       "stem": "patch", "dropout": 0.0}  # fmt: skip
# a Swin of about that ViT's cost (0.22 against 0.19 GFLOP a 96-pixel image): 4-pixel patches in windows of 6 × 6,
# three stages of two blocks (24 × 24 patches 48 wide → 12 × 12 → 6 × 6, 192 wide)
SWIN = {"kind": "swin", "hidden_size": 48, "layers": 2, "heads": 3, "ffn_size": 192, "patch_size": 4, "stages": 3,
        "window": 6, "stem": "patch", "dropout": 0.0}  # fmt: skip
# the ViT's patchify layer swapped for stride-2 convolutions (batch norm) and no attention layers: a CNN whose
# 6 × 6 feature map is the decoder's memory (see n2m.shapes.n2m.conv_stem for why); the recipe's encoder
CNN = {**VIT, "layers": 0, "stem": "conv", "stem_norm": "batch"}
CNN_ARGS = ["--model.vision", json.dumps(CNN), "--model.label_smoothing", "0.0"]
TRIALS: dict[str, list[str]] = {
    "vit": ["--model.vision", json.dumps(VIT), "--model.label_smoothing", "0.1"],
    "swin": ["--model.vision", json.dumps(SWIN), "--model.label_smoothing", "0.1"],
    "cnn_no_smoothing": [*CNN_ARGS],
    # a random order instead of length-grouped batches: a length-grouped batch holds captions of like length, so
    # scenes of like object counts, often the same image twice, and batch norm sees that batch's statistics
    "cnn_random_order": [*CNN_ARGS, "--data.group_by_length", "false"],
    # between the two: each batch cut from a shuffled pool of 4 batches sorted by length (70% real caption tokens
    # against 50% in a random order and 83% in pools of 50)
    "cnn_pool_4": [*CNN_ARGS, "--data.group_by_length", "4"],
}
METRICS = ("cider", "bleu", "chrf", "object_accuracy", "count_accuracy")


def main(names: list[str], collect: bool, rows: int, epochs: int) -> None:
    out = ROOT / "benchmarks/results/caption_dev_trials.json"
    results = json.loads(out.read_text(encoding="utf-8")) if out.exists() else {}
    budget = ["--data.max_train_samples", str(rows), "--trainer.max_epochs", str(epochs)]
    for name in names:
        root = ROOT / f"runs/trial-caption-{name}"
        if not collect:
            shutil.rmtree(root, ignore_errors=True)  # a fresh run: `val_by_epoch` reads every logged version in it
            n2m_command("fit", "--config", RECIPE, "--test_after_fit", "false", "--trainer.default_root_dir", str(root),
                        "--trainer.enable_progress_bar", "false", *budget, *TRIALS[name],
                        "--trainer.callbacks+", train_timer_arg(root / "train_time.json"))  # fmt: skip
        metrics = val_by_epoch(root, METRICS)
        best = max(range(len(metrics["cider"])), key=metrics["cider"].__getitem__)
        timer = json.loads((root / "train_time.json").read_text(encoding="utf-8"))
        date = results.get(name, {}).get("date", today()) if collect else today()
        results[name] = {
            "overrides": TRIALS[name],
            "rows": rows,
            "epochs": epochs,
            "val_by_epoch": metrics,
            "best_epoch": best + 1,
            "best": {m: metrics[m][best] for m in METRICS if len(metrics[m]) > best},
            "train_captions_per_s": round(rows * epochs / timer["train_s"], 2),
            "peak_rss_mb": timer["peak_rss_mb_after_training"],
            "machine": machine(),
            "date": date,
        }
        out.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        print(name, results[name]["best"], flush=True)
    write_pages("caption_dev_trials")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help=f"trials to run, of {', '.join(TRIALS)} (default: all)")
    parser.add_argument("--collect", action="store_true", help="read finished trials in runs/, train nothing")
    parser.add_argument("--rows", type=int, default=2000, help="training captions (a seeded subset)")
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args()
    unknown = set(args.names) - set(TRIALS)
    if unknown:
        parser.error(f"unknown trials {sorted(unknown)}; known: {', '.join(TRIALS)}")
    main(args.names or list(TRIALS), args.collect, args.rows, args.epochs)
