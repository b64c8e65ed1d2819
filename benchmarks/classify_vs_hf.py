"""The four Korean N21 classification recipes, n2m against the ordinary tool (HF `Trainer`) on the same committed
splits: recipes/ko-hate-speech.yaml (macro-F1), ko-question-pair-cls.yaml (accuracy, macro-F1), klue-nli.yaml
(accuracy) and ko-chatbot-topic.yaml (macro-F1), one run of each side per recipe.

Both sides get every setting read from the recipe: the split files and columns (a pair as one cross-encoded
sequence, `text_prefix` before both texts as n2m puts it; `swap_pairs`: each training pair also as (B, A)), labels,
max_length, batch size (evaluation: twice that), epochs, learning rate (and `head_lr` for the new parameters),
linear warm-up over the same number of steps, weight decay (not on biases and norms), fused AdamW, gradient
clipping (the recipe's `gradient_clip_val`; none: HF's `max_grad_norm` 0, not its default 1.0), dropout before the
head, seed. Each side keeps the epoch its validation score chose (the recipe's `monitor`: macro-F1 or accuracy;
HF: `load_best_model_at_end`, `metric_for_best_model`) and scores the test split once, with torchmetrics'
`MulticlassAccuracy` (micro) and `MulticlassF1Score` (macro), n2m's own `build_metrics`. A recipe setting the HF
side does not mirror stops the script.

(a) `hf`: `AutoModelForSequenceClassification` + `Trainer` as a user writes it: the full e5-small as converted
    (250k-piece vocabulary), HF's head (the first token through a new dense + tanh pooler: e5-small ships no
    pooler weights), random-order batches padded by `DataCollatorWithPadding`.
(b) `hf_same_model`: the same, on the vocabulary-trimmed folder n2m's recipe trains (`TextDataModule.backbone_dir`,
    cut to the train + val texts): (a) against (b) is what the model (trimming) changes, (b) against n2m is what
    n2m's design changes (mean pooling, no pooler, length-grouped batches where the recipe keeps them, its loop).
(c) `n2m`: read from a finished `n2m bench` run (`--n2m-from`, default runs/bench/korean: each task's
    results.json, its bench.json recipe_sha256 checked against the recipe file, its test_predictions.jsonl against
    the test file), or trained here (`--run-n2m`: `n2m fit --config RECIPE`, its own run folder; also with
    `--quick`), which also measures its training throughput and peak RSS.

Each side runs in its own child process, so its peak RSS (VmHWM) is its own. Training throughput: training
examples (swapped pairs included) × epochs / seconds of training, validation taken out on both sides (HF's
`eval_runtime`, n2m's `_measure.TrainTimer`); the page shows ratios. Each HF side's test rows go to
`<out>/<task>/<side>/test_predictions.jsonl` in n2m's format.

    python benchmarks/classify_vs_hf.py --quick --only klue-nli   # 64 / 32 / 64 sampled rows, 1 epoch, n2m trained
    python benchmarks/classify_vs_hf.py                           # the full run: results/classify_vs_hf.json
    python benchmarks/classify_vs_hf.py --run-n2m --resume        # n2m trained here; finished sides kept
"""

from __future__ import annotations

import argparse
import json
import math
import random
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from _measure import (  # noqa: E402
    machine,
    peak_rss_mb,
    recipe_settings,
    repo_path,
    run_or_resume,
    today,
    train_timer_arg,
    write_results,
)
from docs_pages import write_pages  # noqa: E402

RECIPES = ROOT / "recipes"
# recipe → the test metrics it is known by (the first: the suite's, recipes/suites/korean.yaml); both sides
# report accuracy and macro-F1 for every task
TASKS: dict[str, tuple[str, ...]] = {
    "ko-hate-speech": ("f1_macro",),
    "ko-question-pair-cls": ("accuracy", "f1_macro"),
    "klue-nli": ("accuracy",),
    "ko-chatbot-topic": ("f1_macro",),
}
SIDES = ("hf", "hf_same_model", "n2m")
METRICS = ("accuracy", "f1_macro")
QUICK_ROWS = {"train": 64, "val": 32, "test": 64}
TEST_PREDICTIONS = "test_predictions.jsonl"
# what the HF side mirrors of a recipe; any other setting stops the script rather than go unmatched
MIRRORED = {
    "top": {"seed_everything", "model", "data", "trainer"},
    "model": {"pooling", "monitor", "dropout", "optimization"},
    "optimization": {"lr", "warmup_ratio", "weight_decay", "schedule", "head_lr"},
    "data": {"backbone", "objective", "pair_encoding", "train", "val", "test", "columns", "label_names",
             "text_prefix", "swap_pairs", "batch_size", "max_length", "trim_vocab",
             "group_by_length"},  # HF's batches are in a random order: n2m's too where a recipe turns grouping off
    "trainer": {"max_epochs", "default_root_dir", "gradient_clip_val"},
}  # fmt: skip
HF_SCHEDULES = {"linear": "linear", "cosine": "cosine", "constant": "constant_with_warmup"}


# ---- what both sides are given ------------------------------------------------------------------------------------
def task_settings(task: str, epochs: int | None = None) -> dict[str, Any]:
    """`recipe_settings` and the classification settings of the task's recipe: columns, labels, pairs, monitor,
    head learning rate and dropout. Raises SystemExit naming a recipe setting the HF side would not match."""
    recipe = RECIPES / f"{task}.yaml"
    config = yaml.safe_load(recipe.read_text(encoding="utf-8"))
    model, data = config["model"], config["data"]
    sections = {"top": config, "model": model, "optimization": model.get("optimization", {}), "data": data,
                "trainer": config.get("trainer", {})}  # fmt: skip
    unmatched = [f"{name}.{key}" for name, part in sections.items() for key in part if key not in MIRRORED[name]]
    if data.get("objective") != "classification" or data.get("pair_encoding", "cross") != "cross":
        unmatched.append("data.objective/pair_encoding (classification, cross-encoded pairs only)")
    if unmatched:
        raise SystemExit(f"{recipe}: the HF side does not mirror {unmatched}; extend benchmarks/classify_vs_hf.py")
    return {
        **recipe_settings(recipe, epochs),
        "columns": data["columns"],
        "label_names": data["label_names"],
        "swap_pairs": bool(data.get("swap_pairs")) and "text_pair" in data["columns"],
        "monitor": model.get("monitor") or "accuracy",  # n2m's MAIN_METRIC for classification
        "head_lr": model.get("optimization", {}).get("head_lr"),
        "dropout": model.get("dropout", 0.1),  # SequenceTask's default
    }


def task_files(task: str, out: Path, quick: bool) -> dict[str, str]:
    """The recipe's split files, or (`quick`) seeded samples of their rows written to `out`: the raw lines, so a
    sample reads exactly as the file does."""
    data = yaml.safe_load((RECIPES / f"{task}.yaml").read_text(encoding="utf-8"))["data"]
    files = {split: str(ROOT / data[split]) for split in ("train", "val", "test")}
    if not quick:
        return files
    for split, rows in QUICK_ROWS.items():
        header, *lines = Path(files[split]).read_text(encoding="utf-8").splitlines()
        target = out / f"{split}.tsv"
        target.write_text("\n".join([header, *random.Random(0).sample(lines, rows)]) + "\n", encoding="utf-8")
        files[split] = str(target)
    return files


def read_split(path: str, setup: dict[str, Any], train: bool = False) -> list[Any]:
    """A split file's examples, read and validated by n2m's reader; training pairs also swapped when the recipe
    says `swap_pairs`, as n2m's DataModule does."""
    from n2m.shapes.n21.examples import Columns, SequenceExample, load_sequence_examples

    examples = load_sequence_examples(path, Columns(**setup["columns"]), "classification")
    if train and setup["swap_pairs"]:
        examples += [SequenceExample(ex.text_pair, ex.text, ex.label, ex.id, ex.line) for ex in examples]
    return examples


def scores(probabilities: Any, gold: list[int], num_labels: int) -> dict[str, float]:
    """Accuracy and macro-F1 as n2m's validation and test compute them (`n2m.shapes.n21.metrics`)."""
    import torch

    from n2m.shapes.n21.metrics import build_metrics

    metrics = build_metrics("classification", num_labels)
    metrics.update(torch.as_tensor(probabilities).float(), torch.tensor(gold))
    return {k: round(float(v), 4) for k, v in metrics.compute().items()}


# ---- the sides ----------------------------------------------------------------------------------------------------
def run_hf(config: dict[str, Any]) -> dict[str, Any]:
    """HF `Trainer` + `AutoModelForSequenceClassification` on `config["backbone_dir"]`."""
    import numpy as np
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, Trainer, TrainingArguments, set_seed

    setup, files, out = config["setup"], config["files"], Path(config["out"])
    names = setup["label_names"]
    label_id = {name: i for i, name in enumerate(names)}
    split = {name: read_split(files[name], setup, train=name == "train") for name in ("train", "val", "test")}
    tokenizer = AutoTokenizer.from_pretrained(config["backbone_dir"])
    set_seed(setup["seed"])  # the new head's initial weights
    model, loading = AutoModelForSequenceClassification.from_pretrained(
        config["backbone_dir"], num_labels=len(names), id2label=dict(enumerate(names)), label2id=label_id,
        classifier_dropout=setup["dropout"], output_loading_info=True,
    )  # fmt: skip
    prefix = setup["text_prefix"]

    class Examples(torch.utils.data.Dataset):
        def __init__(self, examples: list[Any]) -> None:
            texts = [prefix + ex.text for ex in examples]
            pairs = [prefix + ex.text_pair for ex in examples] if examples[0].text_pair is not None else None
            self.enc = tokenizer(texts, pairs, truncation=True, max_length=setup["max_length"])
            self.labels = [label_id[ex.label] for ex in examples]

        def __len__(self) -> int:
            return len(self.labels)

        def __getitem__(self, i: int) -> dict[str, Any]:
            return {**{k: v[i] for k, v in self.enc.items()}, "labels": self.labels[i]}

    def compute_metrics(prediction: Any) -> dict[str, float]:
        logits = torch.from_numpy(np.asarray(prediction.predictions))
        return scores(logits.softmax(-1), prediction.label_ids.tolist(), len(names))

    batch, epochs, monitor = setup["batch_size"], setup["epochs"], setup["monitor"]
    total_steps = math.ceil(len(split["train"]) / batch) * epochs
    args = TrainingArguments(
        output_dir=str(out / "trainer"), per_device_train_batch_size=batch, per_device_eval_batch_size=2 * batch,
        num_train_epochs=epochs, learning_rate=setup["lr"], lr_scheduler_type=HF_SCHEDULES[setup["schedule"]],
        warmup_steps=int(setup["warmup_ratio"] * total_steps),  # n2m's count of steps (HF's ratio rounds up)
        weight_decay=setup["weight_decay"], max_grad_norm=setup["max_grad_norm"] or 0.0,  # 0: no clipping
        seed=setup["seed"], data_seed=setup["seed"], eval_strategy="epoch", save_strategy="epoch",
        save_only_model=True, save_total_limit=1, load_best_model_at_end=True, metric_for_best_model=monitor,
        greater_is_better=True, logging_steps=50, report_to=[], use_cpu=True, disable_tqdm=True,
    )  # fmt: skip
    # n2m's parameter groups: the parameters the backbone lacks (head, pooler) at `head_lr`, the rest at `lr`;
    # no decay on biases and norms (every 1-d parameter of a BERT)
    new = set(loading["missing_keys"])
    groups: dict[tuple[float, float], list[torch.nn.Parameter]] = {}
    for name, param in model.named_parameters():
        lr = (setup["head_lr"] or setup["lr"]) if name in new else setup["lr"]
        groups.setdefault((lr, 0.0 if param.ndim == 1 else setup["weight_decay"]), []).append(param)
    params = [{"params": p, "lr": lr, "weight_decay": wd} for (lr, wd), p in groups.items()]
    optimizer = torch.optim.AdamW(params, lr=setup["lr"], fused=True)  # HF's default `adamw_torch_fused`
    trainer = Trainer(
        model=model, args=args, train_dataset=Examples(split["train"]), eval_dataset=Examples(split["val"]),
        processing_class=tokenizer, compute_metrics=compute_metrics, optimizers=(optimizer, None),
    )  # fmt: skip
    start = time.perf_counter()
    trainer.train()
    wall = time.perf_counter() - start
    peak_after_training = peak_rss_mb()
    history = trainer.state.log_history
    validation_s = sum(entry.get("eval_runtime", 0.0) for entry in history)
    evaluations = [entry for entry in history if f"eval_{monitor}" in entry]
    best = max(evaluations, key=lambda entry: entry[f"eval_{monitor}"])  # the first of equals, as HF keeps it

    logits = torch.from_numpy(np.asarray(trainer.predict(Examples(split["test"])).predictions))
    probabilities = logits.float().softmax(-1)
    test = split["test"]
    rows = [{"index": i, "gold": {"text": ex.text, "text_pair": ex.text_pair, "label": ex.label, "id": ex.id},
             "prediction": {"label": names[int(p.argmax())],
                            "probabilities": dict(zip(names, p.tolist(), strict=True))}}
            for i, (ex, p) in enumerate(zip(test, probabilities, strict=True))]  # fmt: skip
    (out / TEST_PREDICTIONS).write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    shutil.rmtree(out / "trainer", ignore_errors=True)  # epoch checkpoints: the full model is 470 MB
    train_s = wall - validation_s
    return {
        **scores(probabilities, [label_id[ex.label] for ex in test], len(names)),
        "best_epoch": round(best["epoch"]),
        f"val_{monitor}": round(best[f"eval_{monitor}"], 4),
        "train_examples_per_s": round(len(split["train"]) * epochs / train_s, 2),
        "train_s": round(train_s, 1),
        "peak_rss_mb": peak_rss_mb(),
        "peak_rss_mb_after_training": peak_after_training,
        "backbone_dir": config["backbone_dir"],
    }


def n2m_figures(run_dir: Path, monitor: str) -> dict[str, Any]:
    """n2m's test figures and chosen epoch, from a run folder's results.json."""
    report = json.loads((run_dir / "results.json").read_text(encoding="utf-8"))
    test, best = report["test"], report["best_checkpoint"]
    return {
        **{k: round(float(test[f"test/{k}"]), 4) for k in METRICS},
        "best_epoch": int(best.split("epoch=")[-1].split("-")[0]) + 1,
        f"val_{monitor}": round(float(report["best_val"][f"val/{monitor}"]), 4),
    }


def run_n2m(config: dict[str, Any]) -> dict[str, Any]:
    """`n2m fit --config RECIPE` on the same files, in its own run folder."""
    from n2m.cli import main

    setup, files, out = config["setup"], config["files"], Path(config["out"])
    timer = out / "train_time.json"
    main(["fit", "--config", str(RECIPES / f"{config['task']}.yaml"), "--data.train", files["train"],
          "--data.val", files["val"], "--data.test", files["test"], "--data.backbone", config["backbone"],
          "--trainer.max_epochs", str(setup["epochs"]), "--trainer.default_root_dir", str(out),
          "--trainer.enable_progress_bar", "false", "--trainer.callbacks+", train_timer_arg(timer)])  # fmt: skip
    timed = json.loads(timer.read_text(encoding="utf-8"))
    train_examples = len(read_split(files["train"], setup, train=True))
    return {
        **n2m_figures(out, setup["monitor"]),
        "train_examples_per_s": round(train_examples * setup["epochs"] / timed["train_s"], 2),
        "train_s": round(timed["train_s"], 1),
        "peak_rss_mb": peak_rss_mb(),
        "peak_rss_mb_after_training": timed["peak_rss_mb_after_training"],
        "run_dir": str(out),
    }


def n2m_from_bench(run_dir: Path, task: str, setup: dict[str, Any], test_file: str) -> dict[str, Any]:
    """n2m's figures from a finished `n2m bench` task folder, after checking it ran the current recipe file as it
    is (its sha256, no overrides) and tested the current test file (its test_predictions.jsonl's gold rows).
    Raises SystemExit saying what is wrong."""
    from n2m.bench.suite import BENCH_FILE, recipe_digest

    recipe = RECIPES / f"{task}.yaml"
    rerun = f"rerun `n2m bench --only {task}`, or pass --run-n2m to train n2m here"
    if not (run_dir / "results.json").is_file() or not (run_dir / BENCH_FILE).is_file():
        raise SystemExit(f"{run_dir}: no finished `n2m bench` run ({BENCH_FILE} and results.json); {rerun}")
    record = json.loads((run_dir / BENCH_FILE).read_text(encoding="utf-8"))
    if record.get("recipe_sha256") != recipe_digest(recipe):
        raise SystemExit(f"{run_dir}: its {BENCH_FILE} recipe_sha256 is not the sha256 of {recipe} as it is now "
                         f"(the recipe changed since that run); {rerun}")  # fmt: skip
    overrides = (record.get("arguments") or [])[2:]  # after `--config RECIPE`
    if overrides:
        raise SystemExit(f"{run_dir}: trained with overrides {overrides}, not the recipe as it is; {rerun}")
    predictions = run_dir / TEST_PREDICTIONS
    if predictions.is_file():
        gold = [json.loads(line)["gold"] for line in predictions.read_text(encoding="utf-8").splitlines()]
        tested = [(g["text"], g["text_pair"], g["label"]) for g in gold]
        if tested != [(ex.text, ex.text_pair, ex.label) for ex in read_split(test_file, setup)]:
            raise SystemExit(f"{run_dir}: its test rows are not those of {test_file} now; {rerun}")
    return {**n2m_figures(run_dir, setup["monitor"]), "train_examples_per_s": None, "peak_rss_mb": None,
            "run_dir": str(run_dir)}  # fmt: skip


def ratios(entry: dict[str, Any]) -> dict[str, Any]:
    """n2m against each HF side, and HF's trimmed model against its full one: metric differences, and ratios of
    training throughput and peak RSS (only for sides measured in this run)."""

    def ratio(a: float | None, b: float | None) -> float | None:
        return round(a / b, 2) if a is not None and b else None

    out: dict[str, Any] = {}
    for name, (a, b) in {"n2m_vs_hf": ("n2m", "hf"), "n2m_vs_hf_same_model": ("n2m", "hf_same_model"),
                         "hf_same_model_vs_hf": ("hf_same_model", "hf")}.items():  # fmt: skip
        x, y = entry[a], entry[b]
        out[name] = {
            **{f"{k}_delta": round(x[k] - y[k], 4) for k in METRICS},
            "throughput": ratio(x.get("train_examples_per_s"), y.get("train_examples_per_s")),
            "peak_rss": ratio(x.get("peak_rss_mb"), y.get("peak_rss_mb")),
        }
    return out


def table(results: dict[str, Any]) -> str:
    """The results file's figures as Markdown: test scores, then the chosen epochs and the ratios."""
    lines = ["| task | metric | HF, full e5-small | HF, n2m's trimmed e5-small | n2m |", "|---|---|---|---|---|"]
    for task, entry in results["tasks"].items():
        for k in TASKS[task]:
            lines.append(f"| {task} | {k} | " + " | ".join(str(entry[s][k]) for s in SIDES) + " |")
    lines += ["", "| task | best epoch (HF, HF trimmed, n2m) | n2m / HF trimmed: examples/s, peak RSS |"]
    lines.append("|---|---|---|")
    for task, entry in results["tasks"].items():
        q = entry["ratios"]["n2m_vs_hf_same_model"]
        epochs = ", ".join(str(entry[s]["best_epoch"]) for s in SIDES)
        measured = ", ".join("—" if q[k] is None else f"×{q[k]}" for k in ("throughput", "peak_rss"))
        lines.append(f"| {task} | {epochs} | {measured} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="64 / 32 / 64 sampled rows of each split, 1 epoch; n2m "
                        "is trained here")  # fmt: skip
    parser.add_argument("--only", nargs="+", choices=list(TASKS), metavar="TASK", help=f"some of {list(TASKS)}")
    bench_help = "a finished `n2m bench` folder to read n2m's figures from (default: %(default)s)"
    parser.add_argument("--n2m-from", default=str(ROOT / "runs/bench/korean"), help=bench_help)
    parser.add_argument("--run-n2m", action="store_true", help="train n2m here instead (`n2m fit --config RECIPE`)")
    parser.add_argument("--backbone", default="e5-small", help="every side's backbone: a short name or a folder")
    parser.add_argument("--out", default=None, help="run folders (default: runs/bench-classify[-quick])")
    parser.add_argument("--results-dir", default=str(ROOT / "benchmarks/results"))
    parser.add_argument("--resume", action="store_true", help="keep a side whose result is already in --out")
    parser.add_argument("--child", choices=SIDES)
    parser.add_argument("--config-json")
    args = parser.parse_args()
    if args.child:
        config = json.loads(args.config_json)
        runner = run_n2m if args.child == "n2m" else run_hf
        print(json.dumps(runner({**config, "out": str(Path(config["out"], args.child))})))
        return

    from n2m.backbones import resolve_backbone
    from n2m.shapes.n21.data import TextDataModule

    tasks = args.only or list(TASKS)
    run_n2m_here = args.run_n2m or args.quick  # a quick run's sampled splits are not the bench's
    out = Path(args.out or ROOT / f"runs/bench-classify{'-quick' if args.quick else ''}")
    settings = {task: task_settings(task, 1 if args.quick else None) for task in tasks}
    files = {}
    for task in tasks:
        (out / task).mkdir(parents=True, exist_ok=True)
        files[task] = task_files(task, out / task, args.quick)
    # every task's bench run is checked before anything trains
    bench = {} if run_n2m_here else {
        task: n2m_from_bench(Path(args.n2m_from, task), task, settings[task], files[task]["test"]) for task in tasks
    }  # fmt: skip
    n2m_source = "trained here" if run_n2m_here else repo_path(args.n2m_from)
    results: dict[str, Any] = {"mode": "quick" if args.quick else "full", "machine": machine(), "date": today(),
                               "backbone": args.backbone, "n2m": n2m_source, "tasks": {}}  # fmt: skip
    for task in tasks:
        setup = settings[task]
        print(f"{task} …", flush=True)
        recipe_data = yaml.safe_load((RECIPES / f"{task}.yaml").read_text(encoding="utf-8"))["data"]
        # the folder n2m's recipe trains from: the backbone cut to the train + val texts, as `n2m fit` cuts it
        data = TextDataModule(**{**recipe_data, **files[task], "backbone": args.backbone})
        config = {"task": task, "setup": setup, "files": files[task], "backbone": args.backbone, "out": str(out / task)}
        backbones = {"hf": str(resolve_backbone(args.backbone)), "hf_same_model": data.backbone_dir}
        entry: dict[str, Any] = {
            "metric": TASKS[task][0], "metrics": list(TASKS[task]), "monitor": setup["monitor"], "settings": setup,
            "files": {k: repo_path(v) for k, v in files[task].items()},
            "train_examples": len(read_split(files[task]["train"], setup, train=True)),
            "test_examples": len(read_split(files[task]["test"], setup)),
        }  # fmt: skip
        for side in SIDES:
            if side == "n2m" and not run_n2m_here:
                entry[side] = bench[task]
                continue
            side_config = {**config, "backbone_dir": backbones.get(side)}
            entry[side] = run_or_resume(__file__, side, side_config, out / task, args.resume)
            print(json.dumps(entry[side]), flush=True)
        entry["ratios"] = ratios(entry)
        results["tasks"][task] = entry
    name = "classify_vs_hf" + (".quick" if args.quick else "")
    earlier = Path(args.results_dir, f"{name}.json")
    if args.only and earlier.is_file():  # the other tasks keep their figures from an earlier run of the same kind
        kept = json.loads(earlier.read_text(encoding="utf-8"))
        if all(kept.get(k) == results[k] for k in ("mode", "backbone", "n2m")):
            results["tasks"] = {t: results["tasks"].get(t) or kept["tasks"][t] for t in TASKS
                                if t in results["tasks"] or t in kept["tasks"]}  # fmt: skip
    write_results(Path(args.results_dir), name, results, table(results))
    write_pages("classify_vs_hf", written_to=args.results_dir)
    print(table(results))


if __name__ == "__main__":
    main()
