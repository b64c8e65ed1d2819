"""KorSTS, n2m vs the ordinary tool, side by side in one run on the same machine, data, backbone, epochs, seed.

(a) Hugging Face `Trainer` + `BertForSequenceClassification` (num_labels=1, MSE): the cross-encoder a user
    writes by hand (../shared/MODELS.md's bar), on e5-small as converted, batch 32, AdamW, lr 5e-5,
    10% linear warm-up, the recipe's gradient clipping (none), scored on KorSTS test after the last epoch.
(b) `n2m fit --config recipes/korsts.yaml` (bi-encoder, trimmed vocabulary, epoch chosen on KorSTS dev).
(c) optionally (`--ensemble K`) an ensemble of K n2m models, scored once on test: (b)'s bi-encoder and the
    cross-encoder of recipes/korsts-cross.yaml, weights fitted on KorSTS dev (`--ensemble-kind mix`, K = 2);
    the recipe with seeds 0 … K-1 on all of train (`seeds`; seed 0 is (b)'s model); or `n2m kfold --folds K`
    (`kfold`). `seeds` and `kfold` weigh members by their dev scores.

Each system runs in its own child process so its peak RSS is its own. Training throughput is training
pairs × epochs / seconds spent training: HF's `trainer.train()` (tokenization before it, no evaluation), and
n2m's training loop with its per-epoch validation subtracted (`_measure.TrainTimer`); `fit_wall_s` is n2m's
whole `fit` (data checks, vocabulary trimming, validation). Writes benchmarks/results/sts_vs_hf.json (or
sts_vs_hf.quick.json) and a Markdown table.

`--accelerator gpu` trains both sides on one GPU in bf16 autocast (HF `bf16=True`, n2m `bf16-mixed`) and adds
each side's peak GPU memory; its results go to sts_vs_hf.gpu.json. `--backbone DIR` gives both sides another
copy of e5-small, such as one cut to KorSTS's pieces where the full one cannot travel (benchmarks/sts_gpu.sh).

    python benchmarks/sts_vs_hf.py --quick      # a sample, 1 epoch: a few minutes
    python benchmarks/sts_vs_hf.py --ensemble 2 --ensemble-kind mix   # full data, 3 epochs: results/sts_vs_hf.json
    python benchmarks/sts_vs_hf.py --ensemble 2 --ensemble-kind mix --resume   # rerun only what is not done
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import sys
import time
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from _measure import (  # noqa: E402
    ACCELERATOR_ARGS,
    kept_or_run,
    machine,
    peak_gpu_mb,
    peak_rss_mb,
    recipe_settings,
    run_or_resume,
    size_mb,
    today,
    train_timer_arg,
    write_results,
)
from docs_pages import write_pages  # noqa: E402

KORSTS = ROOT / "data/korsts"
# the recipe's gradient clipping for both sides (none: HF's `max_grad_norm` 0, not its default 1.0)
CLIP = recipe_settings(ROOT / "recipes/korsts.yaml")["max_grad_norm"] or 0.0


def read_korsts(path: Path, limit: int | None) -> list[dict[str, str]]:
    """The file's rows, or a seeded sample of `limit` of them: KorSTS is ordered by genre (short image captions
    first), so its first rows would make a quick run's speed unlike the full one's."""
    with path.open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    return random.Random(0).sample(rows, limit) if limit else rows


def write_slice(rows: list[dict[str, str]], path: Path) -> Path:
    """Rows back to KorSTS's own form: tab-separated, quotes as plain text (read with QUOTE_NONE, no field
    holds a tab or a newline, so joining them is exact)."""
    fields = list(rows[0])
    lines = ["\t".join(fields)] + ["\t".join(row[f] for f in fields) for row in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def korsts_files(out: Path, quick: bool) -> dict[str, str]:
    """KorSTS's train, dev and test files, or (`quick`) seeded samples of 256 / 200 / 200 rows written to `out`."""
    if not quick:
        return {k: str(KORSTS / f"sts-{k if k != 'val' else 'dev'}.tsv") for k in ("train", "val", "test")}
    sizes = {"train": ("sts-train.tsv", 256), "val": ("sts-dev.tsv", 200), "test": ("sts-test.tsv", 200)}
    return {k: str(write_slice(read_korsts(KORSTS / name, n), out / name)) for k, (name, n) in sizes.items()}


def run_hf(files: dict[str, str], epochs: int, out: str, backbone: str = "e5-small", accelerator: str = "cpu") -> dict:
    """The ordinary tool, as a user writes it."""
    import numpy as np
    import torch
    from scipy.stats import pearsonr, spearmanr
    from transformers import AutoTokenizer, BertForSequenceClassification, Trainer, TrainingArguments

    from n2m.backbones import resolve_backbone

    torch.manual_seed(0)
    backbone = resolve_backbone(backbone)
    tokenizer = AutoTokenizer.from_pretrained(backbone)
    model = BertForSequenceClassification.from_pretrained(backbone, num_labels=1)

    class Pairs(torch.utils.data.Dataset):
        def __init__(self, rows):
            self.enc = tokenizer([r["sentence1"] for r in rows], [r["sentence2"] for r in rows], truncation=True,
                                 max_length=128)  # fmt: skip
            self.labels = [float(r["score"]) for r in rows]

        def __len__(self):
            return len(self.labels)

        def __getitem__(self, i):
            return {**{k: v[i] for k, v in self.enc.items()}, "labels": self.labels[i]}

    train = read_korsts(Path(files["train"]), None)
    test = read_korsts(Path(files["test"]), None)
    args = TrainingArguments(
        output_dir=out, per_device_train_batch_size=32, per_device_eval_batch_size=64, learning_rate=5e-5,
        num_train_epochs=epochs, warmup_steps=0.1,  # a float below 1 is a ratio in transformers 5
        lr_scheduler_type="linear", weight_decay=0.01, seed=0, max_grad_norm=CLIP,
        save_strategy="no", eval_strategy="no", logging_steps=50, report_to=[], use_cpu=accelerator == "cpu",
        bf16=accelerator == "gpu",
    )  # fmt: skip
    trainer = Trainer(model=model, args=args, train_dataset=Pairs(train), processing_class=tokenizer)
    start = time.time()
    trainer.train()
    wall = time.time() - start
    preds = trainer.predict(Pairs(test)).predictions.reshape(-1)
    gold = np.array([float(r["score"]) for r in test])
    trainer.save_model(f"{out}/model")
    return {
        "pearson": float(pearsonr(preds, gold)[0]),
        "spearman": float(spearmanr(preds, gold)[0]),
        "samples_per_s": round(len(train) * epochs / wall, 2),
        "wall_s": round(wall, 1),
        "peak_rss_mb": peak_rss_mb(),
        "peak_gpu_mb": peak_gpu_mb(),
        "checkpoint_mb": size_mb(f"{out}/model/model.safetensors"),
    }


def run_n2m(
    files: dict[str, str], epochs: int, out: str, seed: int = 0, recipe: str = "recipes/korsts.yaml",
    backbone: str = "e5-small", accelerator: str = "cpu",
) -> dict:  # fmt: skip
    from n2m.cli import main
    from n2m.core.export import export_checkpoint

    args = ["fit", "--config", str(ROOT / recipe), "--data.train", files["train"],
            "--data.val", files["val"], "--data.test", files["test"], "--trainer.max_epochs", str(epochs),
            "--seed_everything", str(seed), "--trainer.default_root_dir", out,
            "--trainer.enable_progress_bar", "false",
            "--trainer.callbacks+", train_timer_arg(Path(out, "train_time.json")),
            "--data.backbone", backbone, *ACCELERATOR_ARGS[accelerator]]  # fmt: skip
    main(args)
    report = json.loads(Path(out, "results.json").read_text())
    timer = json.loads(Path(out, "train_time.json").read_text())
    train_s = timer["train_s"]
    model = export_checkpoint(report["best_checkpoint"], Path(out, "model"))
    train_pairs = len(read_korsts(Path(files["train"]), None))
    return {
        "pearson": report["test"]["test/pearson"],
        "spearman": report["test"]["test/spearman"],
        "samples_per_s": round(train_pairs * epochs / train_s, 2),
        "wall_s": round(train_s, 1),
        "fit_wall_s": report["fit_wall_s"],
        "peak_rss_mb": peak_rss_mb(),
        "peak_rss_mb_after_training": timer["peak_rss_mb_after_training"],
        "peak_gpu_mb": peak_gpu_mb(),
        "checkpoint_mb": size_mb(model / "model.safetensors"),
        "best_epoch_by_dev": int(report["best_checkpoint"].split("epoch=")[-1].split("-")[0]) + 1,
        "val_pearson": report["best_val"]["val/pearson"],
    }


def score_ensemble(members: list[Path], files: dict[str, str], out: Path, weighting: str = "validation") -> dict:
    """Write an ensemble of exported models (weighted by dev score, or with weights fitted on dev) and score
    it once on the test file."""
    from scipy.stats import pearsonr, spearmanr

    from n2m import Predictor
    from n2m.shapes.n21.ensemble import save_ensemble
    from n2m.shapes.n21.examples import Columns

    columns = Columns(text="sentence1", text_pair="sentence2", label="score")
    save_ensemble(out, members, weighting=weighting, val_file=files["val"], columns=columns)
    test = read_korsts(Path(files["test"]), None)
    preds = Predictor.from_pretrained(out).predict_outputs([(r["sentence1"], r["sentence2"]) for r in test])
    gold = [float(r["score"]) for r in test]
    return {
        "pearson": float(pearsonr(preds.tolist(), gold)[0]),
        "spearman": float(spearmanr(preds.tolist(), gold)[0]),
        "weights": [round(w, 4) for w in json.loads(Path(out, "n2m.json").read_text())["settings"]["weights"]],
    }


def with_single(kind: str, files: dict[str, str], epochs: int, out: str, runs: dict[str, dict], weighting: str) -> dict:
    """An ensemble of (b)'s single model (`<out>/../n2m`) and the members in `runs` (name → `run_n2m`'s result,
    its model in `<out>/<name>/model`), scored once on test; its time is all members' training together, its peak
    RSS the largest of theirs."""
    folders = [Path(out).parent / "n2m/model"] + [Path(out, name, "model") for name in runs]
    single = json.loads(Path(out).parent.joinpath("n2m.result.json").read_text(encoding="utf-8"))
    members = [single, *runs.values()]
    train_pairs = len(read_korsts(Path(files["train"]), None))
    wall = sum(r["wall_s"] for r in members)
    return {
        **score_ensemble(folders, files, Path(out, "ensemble"), weighting),
        "samples_per_s": round(train_pairs * epochs * len(members) / wall, 2),
        "wall_s": round(wall, 1),
        "peak_rss_mb": max([peak_rss_mb()] + [r["peak_rss_mb"] for r in members]),  # members kept by resume too
        "peak_gpu_mb": max(r.get("peak_gpu_mb") or 0.0 for r in members) or None,
        "checkpoint_mb": round(sum(size_mb(f / "model.safetensors") for f in folders), 1),
        "members": len(folders),
        "kind": kind,
        "member_test_pearson": [r["pearson"] for r in members],
    }


def run_n2m_seeds(files: dict[str, str], epochs: int, out: str, members: int, resume: bool, **options: str) -> dict:
    """The recipe trained with seeds 1 … K-1 beside the single model (seed 0), all on the full training set;
    each keeps the epoch its dev score chose, and the ensemble weighs them by that score. With `resume`, a member
    already finished (`seed<k>/member.json`) is kept."""
    runs = {
        f"seed{seed}": kept_or_run(Path(out, f"seed{seed}", "member.json"), resume,
                                   partial(run_n2m, files, epochs, f"{out}/seed{seed}", seed=seed, **options))
        for seed in range(1, members)
    }  # fmt: skip
    return with_single("seeds", files, epochs, out, runs, "validation")


def run_n2m_mix(files: dict[str, str], epochs: int, out: str, members: int, resume: bool, **options: str) -> dict:
    """(b)'s bi-encoder and a cross-encoder (recipes/korsts-cross.yaml, seed 0, its epoch chosen on dev), with
    weights fitted on dev; with `resume`, a finished cross-encoder (`cross/member.json`) is kept."""
    if members != 2:
        raise SystemExit("--ensemble-kind mix has two members: --ensemble 2")
    train_cross = partial(run_n2m, files, epochs, f"{out}/cross", recipe="recipes/korsts-cross.yaml", **options)
    cross = kept_or_run(Path(out, "cross", "member.json"), resume, train_cross)
    return with_single("mix", files, epochs, out, {"cross": cross}, "fit")


def run_n2m_kfold(
    files: dict[str, str], epochs: int, out: str, members: int, resume: bool, backbone: str = "e5-small",
    accelerator: str = "cpu",
) -> dict:  # fmt: skip
    """`n2m kfold`, which trains its folds in one call: with `resume`, an unfinished k-fold run restarts whole."""
    from n2m.cli import main

    start = time.time()
    main(["kfold", "--folds", str(members), "--config", str(ROOT / "recipes/korsts.yaml"), "--data.train",
          files["train"], "--data.test", files["test"], "--trainer.max_epochs", str(epochs),
          "--trainer.default_root_dir", out, "--trainer.enable_progress_bar", "false", "--data.backbone", backbone,
          *ACCELERATOR_ARGS[accelerator]])  # fmt: skip
    wall = time.time() - start
    folders = [Path(out, f"fold{i}/model") for i in range(members)]
    train_pairs = len(read_korsts(Path(files["train"]), None))
    return {
        **score_ensemble(folders, files, Path(out, "ensemble-by-val")),
        "samples_per_s": round(train_pairs * (members - 1) / members * epochs * members / wall, 2),
        "wall_s": round(wall, 1),
        "peak_rss_mb": peak_rss_mb(),
        "peak_gpu_mb": peak_gpu_mb(),
        "checkpoint_mb": round(sum(size_mb(f / "model.safetensors") for f in folders), 1),
        "members": members,
        "kind": "kfold",
    }


def table(results: dict) -> str:
    systems = [s for s in ("hf", "n2m", "n2m_ensemble") if s in results]
    names = {
        "hf": "HF Trainer (cross-encoder)",
        "n2m": "n2m (recipes/korsts.yaml)",
        "n2m_ensemble": f"n2m ensemble ({results.get('n2m_ensemble', {}).get('kind')}, "
        f"{results.get('n2m_ensemble', {}).get('members')} models)",
    }
    gpu = "peak_gpu" in results["ratios"]
    lines = [
        "| system | Pearson | Spearman | train pairs/s | train s | peak RSS MB |" + (" peak GPU MB |" if gpu else "")
        + " model MB |",
        "|---|---|---|---|---|---|---|" + ("---|" if gpu else ""),
    ]  # fmt: skip
    for s in systems:
        r = results[s]
        cells = [names[s], f"{r['pearson']:.4f}", f"{r['spearman']:.4f}", r["samples_per_s"], r["wall_s"],
                 r["peak_rss_mb"], *([r["peak_gpu_mb"]] if gpu else []), r["checkpoint_mb"]]  # fmt: skip
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    ratios = results["ratios"]
    lines.append("")
    lines.append(f"n2m / HF: Pearson {ratios['pearson_delta']:+.4f}, throughput ×{ratios['throughput']}, "
                 f"peak RSS ×{ratios['peak_rss']}, " + (f"peak GPU memory ×{ratios['peak_gpu']}, " if gpu else "")
                 + f"model size ×{ratios['checkpoint']}")  # fmt: skip
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="256 sampled training pairs, 1 epoch (CI-sized)")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--ensemble", type=int, default=0, help="also train an ensemble of K models (K ≥ 2)")
    parser.add_argument("--ensemble-kind", choices=["mix", "seeds", "kfold"], default="mix",
                        help="mix: the single bi-encoder + a cross-encoder (K = 2), weights fitted on dev; "
                        "seeds: the single model + K-1 more seeds on all of train; kfold: K folds")  # fmt: skip
    parser.add_argument(
        "--accelerator",
        choices=list(ACCELERATOR_ARGS),
        default="cpu",
        help="gpu: one GPU, bf16 autocast on both sides; results in sts_vs_hf.gpu.json",
    )
    parser.add_argument("--backbone", default="e5-small", help="both sides' backbone: a short name or a folder")
    parser.add_argument("--out", default=str(ROOT / "runs/bench-sts"))
    parser.add_argument("--results-dir", default=str(ROOT / "benchmarks/results"), help="where the results go")
    parser.add_argument("--resume", action="store_true", help="keep a system whose result is already in --out")
    parser.add_argument("--child", choices=["hf", "n2m", "n2m_ensemble"])
    parser.add_argument("--config-json")
    args = parser.parse_args()

    if args.child:
        config = json.loads(args.config_json)
        if args.child == "n2m_ensemble":
            runner = {"mix": run_n2m_mix, "seeds": run_n2m_seeds, "kfold": run_n2m_kfold}[config["ensemble_kind"]]
            extra = {"members": config["members"], "resume": config["resume"]}
        else:
            runner, extra = {"hf": run_hf, "n2m": run_n2m}[args.child], {}
        options = {"backbone": config["backbone"], "accelerator": config["accelerator"]}
        result = runner(config["files"], config["epochs"], f"{config['out']}/{args.child}", **extra, **options)
        print(json.dumps(result))
        return

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    epochs = 1 if args.quick else args.epochs
    files = korsts_files(out, args.quick)
    config = {"files": files, "epochs": epochs, "out": str(out), "members": args.ensemble,
              "ensemble_kind": args.ensemble_kind, "resume": args.resume, "backbone": args.backbone,
              "accelerator": args.accelerator}  # fmt: skip
    results: dict = {"mode": "quick" if args.quick else "full", "machine": machine(), "date": today(),
                     "epochs": epochs, "data": files, "backbone": args.backbone,
                     "precision": "bf16-mixed" if args.accelerator == "gpu" else "fp32"}  # fmt: skip
    for system in ("hf", "n2m") + (("n2m_ensemble",) if args.ensemble else ()):
        results[system] = run_or_resume(__file__, system, config, out, args.resume)
        print(json.dumps(results[system]), flush=True)
    hf, n2m = results["hf"], results["n2m"]
    results["ratios"] = {
        "pearson_delta": round(n2m["pearson"] - hf["pearson"], 4),
        "throughput": round(n2m["samples_per_s"] / hf["samples_per_s"], 2),
        "peak_rss": round(n2m["peak_rss_mb"] / hf["peak_rss_mb"], 2),
        "checkpoint": round(n2m["checkpoint_mb"] / hf["checkpoint_mb"], 2),
    }
    if args.accelerator == "gpu":
        results["ratios"]["peak_gpu"] = round(n2m["peak_gpu_mb"] / hf["peak_gpu_mb"], 2)
    name = "sts_vs_hf" + (".quick" if args.quick else "") + (".gpu" if args.accelerator == "gpu" else "")
    write_results(Path(args.results_dir), name, results, table(results))
    write_pages("sts_vs_hf", written_to=args.results_dir)
    print(table(results))


if __name__ == "__main__":
    main()
