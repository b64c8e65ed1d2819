"""KorSTS, the training loop like for like: n2m against sentence-transformers on the same model and loss.

Both sides train the same folder (e5-small cut to the pieces KorSTS train and dev use, written once by
`trimmed_backbone` and given to both; n2m's own trimming is off) as a bi-encoder: mean pooling, cosine
similarity of the two sentence vectors trained against score / 5 by mean squared error
(sentence-transformers' `CosineSimilarityLoss`, n2m's `loss: mse` on a cosine head). Every other setting is
read from recipes/korsts.yaml: epochs, batch size, learning rate, linear warm-up, weight decay, gradient
clipping (the recipe's `gradient_clip_val`; none: ST's `max_grad_norm` 0), max_length, the "query: " prefix,
seed (each side's training order and dropout: ST's `seed` and `data_seed`, n2m's `seed_everything`). Each side
keeps the epoch whose dev Pearson is best.

(a) sentence-transformers: `SentenceTransformerTrainer` + `CosineSimilarityLoss`, what a user writes a
    bi-encoder with; after each epoch, dev Pearson (its time kept apart) and the best model saved.
(b) `n2m fit --config recipes/korsts.yaml --data.backbone <that folder> --data.trim_vocab false`.

What differs is each tool's own design and loop, which is what this table measures: n2m groups lengths into
batches, encodes both sides of a pair in one forward pass and reads pre-tokenized ids; sentence-transformers
shuffles, tokenizes each batch and encodes each side alone. `--design-rows` adds n2m without length grouping,
so the table shows what that part is worth.

Both trained models are scored by one function: the test pairs encoded, the cosine of each pair, Pearson and
Spearman against the gold scores. Training throughput is training pairs × epochs / seconds of the training
loop (validation excluded: `_measure.TrainTimer` for n2m, the callback's own dev pass for ST); peak RSS is each
child's own. Results: benchmarks/results/sts_same_model.json (or .quick / .gpu) and a Markdown table.

    python benchmarks/sts_same_model.py --quick             # a sample, 1 epoch: a few minutes
    python benchmarks/sts_same_model.py                     # the full data: results/sts_same_model.json
    python benchmarks/sts_same_model.py --resume            # rerun only the sides not yet finished
    python benchmarks/sts_same_model.py --seeds 0 1 2       # each side once per seed, figures averaged
    python benchmarks/sts_same_model.py --accelerator gpu   # one GPU, bf16 autocast: sts_same_model.gpu.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from _measure import (  # noqa: E402
    ACCELERATOR_ARGS,
    keep_other_sides,
    machine,
    peak_gpu_mb,
    peak_rss_mb,
    recipe_settings,
    run_or_resume,
    today,
    train_timer_arg,
    write_results,
)
from docs_pages import write_pages  # noqa: E402
from sts_vs_hf import korsts_files, read_korsts  # noqa: E402

RECIPE = ROOT / "recipes/korsts.yaml"
SIDES = ("n2m", "st", "n2m_random_order")  # n2m_random_order: the design row, n2m without length grouping
ENCODE_BATCH = 64


def pairs(path: str) -> tuple[list[str], list[str], list[float]]:
    rows = read_korsts(Path(path), None)
    return [r["sentence1"] for r in rows], [r["sentence2"] for r in rows], [float(r["score"]) for r in rows]


def sts_scores(encode: Any, path: str) -> dict[str, float]:
    """Pearson and Spearman of the cosine of each pair's unit vectors against the gold scores: the one scoring
    function for both sides. `encode(texts)` → unit vectors (N, H), the recipe's prefix put on by each side."""
    import numpy as np
    from scipy.stats import pearsonr, spearmanr

    first, second, gold = pairs(path)
    u, v = encode(first), encode(second)
    cosine = np.sum(u * v, axis=1)
    return {"pearson": float(pearsonr(cosine, gold)[0]), "spearman": float(spearmanr(cosine, gold)[0])}


def same_backbone(files: dict[str, str], setup: dict[str, Any], backbone: str) -> str:
    """The folder both sides train: `backbone` cut to the pieces of train and dev, as n2m's `trim_vocab` cuts
    it (the recipe's prefix included)."""
    from n2m.backbones import trimmed_backbone

    texts = [setup["text_prefix"] + t for split in ("train", "val") for side in pairs(files[split])[:2] for t in side]
    return str(trimmed_backbone(backbone, texts))


def run_st(files: dict[str, str], setup: dict[str, Any], out: str, backbone_dir: str, accelerator: str) -> dict:
    import torch
    from datasets import Dataset
    from sentence_transformers import (
        SentenceTransformer,
        SentenceTransformerTrainer,
        SentenceTransformerTrainingArguments,
        losses,
        models,
    )
    from transformers import TrainerCallback

    torch.manual_seed(setup["seed"])
    device = "cuda" if accelerator == "gpu" else "cpu"
    # no pooler, as n2m builds the encoder: mean pooling never uses it
    word = models.Transformer(backbone_dir, max_seq_length=setup["max_length"],
                              model_kwargs={"add_pooling_layer": False})  # fmt: skip
    pooling = models.Pooling(word.get_word_embedding_dimension(), setup["pooling"])
    model = SentenceTransformer(modules=[word, pooling], device=device)
    first, second, gold = pairs(files["train"])
    low, high = setup["score_range"]
    train = Dataset.from_dict(
        {"sentence1": first, "sentence2": second, "score": [(s - low) / (high - low) for s in gold]}
    )
    prefix = setup["text_prefix"]
    args = SentenceTransformerTrainingArguments(
        output_dir=f"{out}/trainer", num_train_epochs=setup["epochs"], per_device_train_batch_size=setup["batch_size"],
        learning_rate=setup["lr"], warmup_ratio=setup["warmup_ratio"], lr_scheduler_type=setup["schedule"],
        weight_decay=setup["weight_decay"], max_grad_norm=setup["max_grad_norm"] or 0.0,  # 0: no clipping
        seed=setup["seed"], data_seed=setup["seed"], prompts={"sentence1": prefix, "sentence2": prefix},
        use_cpu=accelerator == "cpu", bf16=accelerator == "gpu", save_strategy="no", eval_strategy="no",
        logging_steps=50, report_to="none", disable_tqdm=True,
    )  # fmt: skip

    def encode(texts: list[str]) -> Any:
        return model.encode([prefix + t for t in texts], batch_size=ENCODE_BATCH, normalize_embeddings=True,
                            convert_to_numpy=True, show_progress_bar=False)  # fmt: skip

    class BestEpoch(TrainerCallback):
        """Dev Pearson after each epoch (its time kept apart from training's), the best model saved."""

        def __init__(self) -> None:
            self.validation_s, self.best, self.best_epoch = 0.0, -2.0, setup["epochs"]

        def on_epoch_end(self, *_: Any, **__: Any) -> None:
            start = time.perf_counter()
            pearson = sts_scores(encode, files["val"])["pearson"]
            if pearson > self.best:
                self.best, self.best_epoch = pearson, round(trainer.state.epoch or 0)
                model.save(f"{out}/best")
            self.validation_s += time.perf_counter() - start

    best = BestEpoch()
    loss = losses.CosineSimilarityLoss(model)
    trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=train, loss=loss, callbacks=[best])
    start = time.perf_counter()
    trainer.train()
    train_s = time.perf_counter() - start - best.validation_s
    peak, peak_gpu = peak_rss_mb(), peak_gpu_mb()
    model = SentenceTransformer(f"{out}/best", device=device)
    return {
        **sts_scores(encode, files["test"]),
        "samples_per_s": round(len(gold) * setup["epochs"] / train_s, 2),
        "wall_s": round(train_s, 1),
        "peak_rss_mb": peak,
        "peak_gpu_mb": peak_gpu,
        "best_epoch": best.best_epoch,
        "val_pearson": best.best,
    }


def run_n2m(
    files: dict[str, str], setup: dict[str, Any], out: str, backbone_dir: str, accelerator: str, *extra: str
) -> dict:
    from n2m import Predictor
    from n2m.cli import main
    from n2m.core.export import export_checkpoint

    main(["fit", "--config", str(RECIPE), "--data.train", files["train"], "--data.val", files["val"],
          "--data.test", files["test"], "--data.backbone", backbone_dir, "--data.trim_vocab", "false",
          "--trainer.max_epochs", str(setup["epochs"]), "--trainer.default_root_dir", out,
          "--seed_everything", str(setup["seed"]),
          "--trainer.enable_progress_bar", "false",
          "--trainer.callbacks+", train_timer_arg(Path(out, "train_time.json")),
          *ACCELERATOR_ARGS[accelerator], *extra])  # fmt: skip
    peak, peak_gpu = peak_rss_mb(), peak_gpu_mb()  # training, validation and n2m's own test; not the export
    report = json.loads(Path(out, "results.json").read_text())
    timer = json.loads(Path(out, "train_time.json").read_text())
    best = report["best_checkpoint"]
    predictor = Predictor.from_pretrained(export_checkpoint(best, Path(out, "model"), vocab="trained"))

    return {
        **sts_scores(lambda texts: predictor.encode(texts, ENCODE_BATCH), files["test"]),  # the card's prefix
        "samples_per_s": round(len(pairs(files["train"])[2]) * setup["epochs"] / timer["train_s"], 2),
        "wall_s": round(timer["train_s"], 1),
        "fit_wall_s": report["fit_wall_s"],
        "peak_rss_mb": peak,
        "peak_gpu_mb": peak_gpu,
        "best_epoch": int(best.split("epoch=")[-1].split("-")[0]) + 1,
        "val_pearson": report["best_val"]["val/pearson"],
        "own_test_pearson": report["test"]["test/pearson"],
    }


def over_seeds(runs: dict[int, dict[str, Any]]) -> dict[str, Any]:
    """One side's figures over its seeds: a single run as it is; several, the mean Pearson, Spearman and
    throughput (the spread of Pearson beside them), the highest peak memory, and every run under `seeds`."""
    if len(runs) == 1:
        return next(iter(runs.values()))
    from statistics import mean, stdev

    every = list(runs.values())
    gpu = [r["peak_gpu_mb"] for r in every if r["peak_gpu_mb"] is not None]
    return {
        **{key: mean(r[key] for r in every) for key in ("pearson", "spearman")},
        "pearson_sd": stdev(r["pearson"] for r in every),
        "samples_per_s": round(mean(r["samples_per_s"] for r in every), 2),
        "wall_s": round(mean(r["wall_s"] for r in every), 1),
        "peak_rss_mb": max(r["peak_rss_mb"] for r in every),
        "peak_gpu_mb": max(gpu) if gpu else None,
        "seeds": {str(seed): r for seed, r in runs.items()},
    }


def table(results: dict[str, Any]) -> str:
    names = {
        "st": "sentence-transformers (`SentenceTransformerTrainer`, `CosineSimilarityLoss`)",
        "n2m": "n2m (`recipes/korsts.yaml`)",
        "n2m_random_order": "n2m, batches in random order (no length grouping)",
    }
    gpu = results["st"]["peak_gpu_mb"] is not None
    head = "| system | Pearson | Spearman | train pairs/s | train s | peak RSS MB |" + (" peak GPU MB |" if gpu else "")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for name in (n for n in names if n in results):
        r = results[name]
        cells = [names[name], f"{r['pearson']:.4f}", f"{r['spearman']:.4f}", r["samples_per_s"], r["wall_s"],
                 r["peak_rss_mb"], *([r["peak_gpu_mb"]] if gpu else [])]  # fmt: skip
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    ratios = results["ratios"]
    lines += ["", f"n2m / sentence-transformers: Pearson {ratios['pearson_delta']:+.4f}, throughput "
                  f"×{ratios['throughput']}, peak RSS ×{ratios['peak_rss']}"
                  + (f", peak GPU memory ×{ratios['peak_gpu']}" if gpu else "")]  # fmt: skip
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="256 sampled training pairs, 1 epoch (CI-sized)")
    parser.add_argument("--epochs", type=int, help="default: the recipe's max_epochs")
    parser.add_argument("--accelerator", choices=list(ACCELERATOR_ARGS), default="cpu")
    parser.add_argument("--backbone", default="e5-small", help="the backbone both sides' folder is cut from")
    parser.add_argument("--design-rows", action="store_true", help="also n2m without length grouping")
    parser.add_argument(
        "--seeds",
        type=int,
        nargs="+",
        help="train each side once per seed and average "
        "(default: the recipe's seed alone); a single seed's test Pearson moves by a few thousandths",
    )
    parser.add_argument("--only", choices=list(SIDES), help="run this side alone, the rest kept from the results file")
    parser.add_argument("--out", default=str(ROOT / "runs/bench-sts-same"))
    parser.add_argument("--results-dir", default=str(ROOT / "benchmarks/results"))
    parser.add_argument("--resume", action="store_true", help="keep a side whose result is already in --out")
    parser.add_argument("--child", choices=list(SIDES))
    parser.add_argument("--config-json")
    args = parser.parse_args()

    if args.child:
        config = json.loads(args.config_json)
        where = (config["files"], config["setup"], f"{config['out']}/{args.child}", config["backbone_dir"],
                 config["accelerator"])  # fmt: skip
        if args.child == "st":
            result = run_st(*where)
        else:
            result = run_n2m(*where, *(["--data.group_by_length", "false"] if args.child != "n2m" else []))
        print(json.dumps(result))
        return

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    setup = recipe_settings(RECIPE, epochs=1 if args.quick else args.epochs)
    files = korsts_files(out, args.quick)
    backbone_dir = same_backbone(files, setup, args.backbone)
    seeds = args.seeds or [setup["seed"]]
    results: dict[str, Any] = {
        "mode": "quick" if args.quick else "full", "machine": machine(), "date": today(),
        "recipe": "recipes/korsts.yaml", "settings": setup, "backbone": args.backbone, "backbone_dir": backbone_dir,
        "precision": "bf16-mixed" if args.accelerator == "gpu" else "fp32",
    }  # fmt: skip
    if len(seeds) > 1:
        results["seeds"] = seeds
    name = "sts_same_model" + (".quick" if args.quick else "") + (".gpu" if args.accelerator == "gpu" else "")
    sides = (args.only,) if args.only else ("n2m", "st") + (("n2m_random_order",) if args.design_rows else ())
    if args.only:
        keep_other_sides(Path(args.results_dir, f"{name}.json"), results, args.only, SIDES, seeds, setup["seed"])
    runs: dict[str, dict[int, dict[str, Any]]] = {side: {} for side in sides}
    for seed in seeds:  # the recipe's seed in `out` itself, as a one-seed run keeps it
        where = out if seed == setup["seed"] else out / f"seed{seed}"
        where.mkdir(exist_ok=True)
        config = {"files": files, "setup": {**setup, "seed": seed}, "out": str(where), "backbone_dir": backbone_dir,
                  "accelerator": args.accelerator}  # fmt: skip
        # n2m first: were the shared machine to grow quieter during the run, the other side would gain from it
        for side in sides:
            runs[side][seed] = run_or_resume(__file__, side, config, where, args.resume)
            print(json.dumps(runs[side][seed]), flush=True)
    results.update({side: over_seeds(runs[side]) for side in sides})
    st, n2m = results["st"], results["n2m"]
    results["ratios"] = {
        "pearson_delta": round(n2m["pearson"] - st["pearson"], 4),
        "throughput": round(n2m["samples_per_s"] / st["samples_per_s"], 2),
        "peak_rss": round(n2m["peak_rss_mb"] / st["peak_rss_mb"], 2),
    }
    if args.accelerator == "gpu":
        results["ratios"]["peak_gpu"] = round(n2m["peak_gpu_mb"] / st["peak_gpu_mb"], 2)
    write_results(Path(args.results_dir), name, results, table(results))
    write_pages("sts_same_model", written_to=args.results_dir)
    print(table(results))


if __name__ == "__main__":
    main()
