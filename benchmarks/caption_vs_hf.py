"""Korean image captioning, n2m vs Hugging Face `Seq2SeqTrainer`, same machine, model, data, epochs, decoding.

(a) HF, as a user writes it: a `VisionEncoderDecoderModel` of the recipe's image encoder (the same Hugging Face
    class and configuration, from scratch, built by `n2m.shapes.n2m.vision.image_encoder_from_scratch`), the
    same text decoder (the recipe's vocabulary-trimmed e5-small, its first `decoder_layers` layers, new
    cross-attention), the same two learning rates (an AdamW passed to the trainer: the new parts at head_lr),
    `ViTImageProcessor` with the recipe's size, mean and std (bicubic), each image decoded when its row is
    drawn (the usual `Dataset.__getitem__`), the recipe's augmentation applied by n2m's own `augment` (torchvision
    is not installed here, and the point is the same data), `Seq2SeqTrainer` with the recipe's batch size,
    warm-up, schedule, weight decay and label smoothing; evaluation each epoch with greedy generation and CIDEr-D,
    best epoch kept (`load_best_model_at_end`); test with the recipe's decoding. HF's default sampler.
(b) `n2m`: `n2m fit --config recipes/ko-caption.yaml` on HF's settings exactly, i.e. without the recipe's moving
    average of the weights: the same rows and settings; its test is scored on the checkpoint with the best
    validation CIDEr-D, then that checkpoint is scored on the held-out combinations.
(c) `n2m_ema`: the recipe as committed, which validates, chooses, tests and exports an exponential moving average
    of its weights (`n2m.core.averaging.WeightEMA` in its `trainer.callbacks`). `Seq2SeqTrainer` has no such
    setting, so this is n2m's design, shown as its own row, not as HF's settings. Run only for a recipe that
    averages its weights.

Both score with the same BLEU (`char`), chrF and CIDEr-D (`n2m.shapes.n2m.caption_metrics`: COCO's scorer over the
whole split), each image against all its references, on the ordinary test split and on `test_novel` (object-
attribute combinations never seen in training). Training throughput is training rows (image, caption) per second
of the training loop, each epoch's validation taken out (as the other benchmarks time it: reading and batching
the images count, HF's per-row decoding as n2m's cache), and, apart, per second of the optimizer steps alone
(the model's compute and the loop around it, no data loading); generation throughput is generated tokens per
second of the test split's batches with the test decoding (the split's scoring at its end excluded; n2m's
batches still count their BLEU and chrF n-grams, HF's `predict` does not). Each system runs in its own child
process, so its peak RSS is its own.
Writes benchmarks/results/caption_vs_hf.json (or .quick.json) and a Markdown table beside it.

    python benchmarks/caption_vs_hf.py --quick   # 256 training rows, 32 val, 32 test, 1 epoch: a few minutes
    python benchmarks/caption_vs_hf.py           # the recipe as committed
    python benchmarks/caption_vs_hf.py --resume  # after a crash: rerun only the side without a result in --out
    python benchmarks/caption_vs_hf.py --seeds 0 1 2   # each side once per seed; the figures are their means
    python benchmarks/caption_vs_hf.py --seeds 0 1 2 --only n2m_ema   # one side; the others kept from the file

A single seed's test CIDEr-D moves by a few points between seeds on either side, more than the two tools differ
by, so the comparison of quality is made over seeds (each side's seed sets its initialization, dropout and batch
order; the recipe's seed is one of them).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import yaml
from lightning.pytorch.callbacks import Callback

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from _measure import (  # noqa: E402
    keep_other_sides,
    machine,
    peak_rss_mb,
    repo_path,
    result_file,
    run_or_resume,
    today,
    write_results,
)
from docs_pages import write_pages  # noqa: E402

RECIPE = ROOT / "recipes/ko-caption.yaml"
NOVEL = ROOT / "data/ko-caption/test_novel.jsonl"
METRICS = ["bleu", "chrf", "cider"]
QUICK = {"max_train_samples": 256, "max_val_samples": 32, "max_test_samples": 32}
SIDES = ("n2m", "hf", "n2m_ema")  # n2m: HF's settings exactly; n2m_ema: the recipe, its weights averaged


class StepTimer(Callback):
    """n2m side: seconds spent in training steps, and tokens generated per second of test batches."""

    def __init__(self, out: str) -> None:
        self.out = out
        self.train_s = 0.0
        self.val_s = 0.0
        self.samples = 0

    def on_train_start(self, trainer, pl_module) -> None:  # type: ignore[override]
        self._fit_t = time.perf_counter()

    def on_train_end(self, trainer, pl_module) -> None:  # type: ignore[override]
        self.fit_s = time.perf_counter() - self._fit_t

    def on_validation_start(self, trainer, pl_module) -> None:  # type: ignore[override]
        self._val_t = time.perf_counter()

    def on_validation_end(self, trainer, pl_module) -> None:  # type: ignore[override]
        self.val_s += time.perf_counter() - self._val_t

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:  # type: ignore[override]
        self._t = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:  # type: ignore[override]
        self.train_s += time.perf_counter() - self._t
        self.samples += len(batch["index"])

    def on_test_start(self, trainer, pl_module) -> None:  # type: ignore[override]
        self.test_s, self._tokens = 0.0, pl_module.generated_tokens

    # test batches alone: the split's scoring at epoch end is not generation (HF's side times `predict` alone)
    def on_test_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0) -> None:  # type: ignore[override]
        self._t = time.perf_counter()

    def on_test_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:  # type: ignore[override]
        self.test_s += time.perf_counter() - self._t

    def on_test_end(self, trainer, pl_module) -> None:  # type: ignore[override]
        if Path(self.out).is_file():  # the first test only (the ordinary split)
            return
        report = {
            "train_step_s": round(self.train_s, 1),
            "fit_s": round(self.fit_s, 1),
            "val_s": round(self.val_s, 1),
            "train_samples": self.samples,
            "test_s": round(self.test_s, 1),
            "test_tokens": pl_module.generated_tokens - self._tokens,
        }
        Path(self.out).write_text(json.dumps(report) + "\n", encoding="utf-8")


def recipe_data(recipe: Path, quick: bool, test: str | None = None) -> Any:
    """The recipe's DataModule (its files, image settings), sliced in quick mode; `test` replaces its test file."""
    from n2m.shapes.n2m.data import Seq2SeqDataModule
    from n2m.shapes.n2m.examples import Seq2SeqColumns
    from n2m.shapes.n2m.images import ImageOptions

    config = yaml.safe_load(recipe.read_text(encoding="utf-8"))
    data = dict(config["data"])
    data["columns"] = Seq2SeqColumns(**data["columns"])
    data["images"] = ImageOptions(**data["images"])
    data.update(QUICK if quick else {})
    if test:
        data["test"] = test
    return Seq2SeqDataModule(**data)


def seed_args(seed: int, recipe_seed: int) -> list[str]:
    """n2m's arguments for a seed: `seed_everything` sets initialization and dropout; the batch order follows
    `data.split_seed` (which also carves ratio splits; ko-caption's are files), moved off its default for any
    seed but the recipe's, so the recipe's own run is the suite's."""
    import inspect

    from n2m.shapes.n2m.data import Seq2SeqDataModule

    if seed == recipe_seed:
        return []
    split_seed = inspect.signature(Seq2SeqDataModule).parameters["split_seed"].default
    return ["--seed_everything", str(seed), "--data.split_seed", str(split_seed + seed)]


def recipe_callbacks(recipe: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The recipe's `trainer.callbacks`: (those that average its weights, the others)."""
    import importlib

    from lightning.pytorch.callbacks import WeightAveraging

    def averages(entry: dict[str, Any]) -> bool:
        module, _, name = entry["class_path"].rpartition(".")
        return issubclass(getattr(importlib.import_module(module), name), WeightAveraging)

    entries = (yaml.safe_load(recipe.read_text(encoding="utf-8")).get("trainer") or {}).get("callbacks") or []
    return [e for e in entries if averages(e)], [e for e in entries if not averages(e)]


def run_n2m(config: dict[str, Any], out: str, averaged: bool) -> dict[str, Any]:
    """`averaged`: the recipe as it is; otherwise without its weight averaging (HF's settings exactly)."""
    import lightning as L

    from n2m.cli import main
    from n2m.shapes.n2m.task import Seq2SeqTask

    timer_file = Path(out, "timer.json")
    Path(out).mkdir(parents=True, exist_ok=True)
    timer_file.unlink(missing_ok=True)
    timer = {"class_path": "caption_vs_hf.StepTimer", "init_args": {"out": str(timer_file)}}
    averaging, others = recipe_callbacks(Path(config["recipe"]))
    callbacks = [*others, *(averaging if averaged else []), timer]
    args = ["fit", "--config", config["recipe"], "--trainer.default_root_dir", out,
            "--trainer.enable_progress_bar", "false", "--trainer.max_epochs", str(config["epochs"]),
            "--trainer.callbacks", json.dumps(callbacks), "--model.metrics", json.dumps(METRICS),
            "--model.monitor", "cider", *seed_args(config["seed"], config["recipe_seed"])]  # fmt: skip
    for key, value in (QUICK if config["quick"] else {}).items():
        args += [f"--data.{key}", str(value)]
    main(args)
    report = json.loads(Path(out, "results.json").read_text(encoding="utf-8"))
    timing = json.loads(timer_file.read_text(encoding="utf-8"))
    # the chosen checkpoint on the held-out combinations
    task = Seq2SeqTask.load_from_checkpoint(report["best_checkpoint"], map_location="cpu", weights_only=True)
    novel = recipe_data(Path(config["recipe"]), config["quick"], config["novel"])
    # its root: where the task writes the split's test_generations.jsonl (Lightning's default is the working folder)
    trainer = L.Trainer(logger=False, enable_progress_bar=False, enable_checkpointing=False, accelerator="cpu",
                        default_root_dir=str(Path(out, "novel")))  # fmt: skip
    novel_scores = trainer.test(task, datamodule=novel)[0]
    return {
        **{m: round(report["test"][f"test/{m}"], 2) for m in METRICS},
        "novel_combo_cider": round(novel_scores["test/cider"], 2),
        "train_images_per_s": round(timing["train_samples"] / (timing["fit_s"] - timing["val_s"]), 2),
        "step_images_per_s": round(timing["train_samples"] / timing["train_step_s"], 2),
        "gen_tokens_per_s": round(timing["test_tokens"] / timing["test_s"], 1),
        "peak_rss_mb": peak_rss_mb(),
        "wall_s": timing["fit_s"],
        "best_checkpoint": report["best_checkpoint"],
        "best_val": report["best_val"],
    }


def run_hf(config: dict[str, Any], out: str) -> dict[str, Any]:
    """The ordinary tool, as a user writes it (only the rows come from n2m, so both see the same examples)."""
    import torch
    from PIL import Image
    from transformers import (
        AutoModelForCausalLM,
        AutoTokenizer,
        GenerationConfig,
        Seq2SeqTrainer,
        Seq2SeqTrainingArguments,
        TrainerCallback,
        VisionEncoderDecoderModel,
        ViTImageProcessor,
    )

    from n2m.shapes.n2m.caption_metrics import CaptionMetrics
    from n2m.shapes.n2m.images import ImageAugmentation, augment
    from n2m.shapes.n2m.vision import VisionSize, image_encoder_from_scratch

    recipe = yaml.safe_load(Path(config["recipe"]).read_text(encoding="utf-8"))
    model_cfg, data_cfg = recipe["model"], recipe["data"]
    opt_cfg, vision, images = model_cfg["optimization"], model_cfg["vision"], data_cfg["images"]
    data = recipe_data(Path(config["recipe"]), config["quick"])
    fit, test = data.read_splits("fit"), data.read_splits("test")["test"]
    novel = recipe_data(Path(config["recipe"]), config["quick"], config["novel"]).read_splits("test")["test"]
    folder = data.backbone_dir  # the same trimmed e5-small n2m builds from
    torch.manual_seed(config["seed"])
    tokenizer = AutoTokenizer.from_pretrained(folder)
    # the recipe's image encoder, the same Hugging Face model class and configuration on both sides
    encoder = image_encoder_from_scratch(VisionSize(**vision), images["size"])
    decoder = AutoModelForCausalLM.from_pretrained(
        folder, is_decoder=True, add_cross_attention=True, num_hidden_layers=model_cfg["decoder_layers"]
    )
    model = VisionEncoderDecoderModel(encoder=encoder, decoder=decoder)
    model.config.decoder_start_token_id = tokenizer.cls_token_id
    model.config.eos_token_id = tokenizer.sep_token_id
    model.config.pad_token_id = tokenizer.pad_token_id
    model.config.vocab_size = model.config.decoder.vocab_size
    if model_cfg.get("cross_attention_init") == "self_attention":  # the same start as n2m's model
        for layer in model.decoder.bert.encoder.layer:
            layer.crossattention.load_state_dict(layer.attention.state_dict())
    # the same two learning rates: e5's weights at lr, what is new (the ViT, cross-attention, ...) at head_lr
    new_parts = ("encoder.", "crossattention", "cls.predictions.transform", "cls.predictions.bias", "enc_to_dec_proj")
    no_decay = ("bias", "LayerNorm.weight", "layernorm.weight")
    groups: dict[tuple[float, float], list] = {}
    for name, param in model.named_parameters():
        new = name.startswith(new_parts[0]) or any(k in name for k in new_parts[1:])
        lr = (opt_cfg.get("head_lr") or opt_cfg["lr"]) if new else opt_cfg["lr"]
        decay = 0.0 if name.endswith(no_decay) or param.ndim == 1 else 0.01
        groups.setdefault((lr, decay), []).append(param)
    # fused: the optimizer n2m trains with, and HF's own default (`adamw_torch_fused`)
    optimizer = torch.optim.AdamW(
        [{"params": p, "lr": lr, "weight_decay": wd} for (lr, wd), p in groups.items()], fused=True
    )

    size = images["size"]
    processor = ViTImageProcessor(do_resize=True, size={"height": size, "width": size}, resample=Image.BICUBIC,
                                  do_rescale=True, do_normalize=True, image_mean=images["mean"],
                                  image_std=images["std"])  # fmt: skip
    how = ImageAugmentation(**images.get("augment", {}))
    mean = torch.tensor(images["mean"]).view(1, 3, 1, 1)
    std = torch.tensor(images["std"]).view(1, 3, 1, 1)

    class Rows(torch.utils.data.Dataset):
        """(image, caption) rows; the image decoded and processed each time its row is drawn."""

        def __init__(self, examples, train: bool = False):
            self.images = [e.source for e in examples]
            labels = tokenizer(text_target=[e.target or "" for e in examples], truncation=True,
                               max_length=data_cfg["max_target_length"] + 1)["input_ids"]  # fmt: skip
            self.labels = [ids[1:] for ids in labels]  # drop <s>: the decoder is fed it (as n2m does)
            self.train = train

        def __len__(self):
            return len(self.images)

        def __getitem__(self, i):
            with Image.open(self.images[i]) as image:
                pixels = processor(image.convert("RGB"), return_tensors="pt")["pixel_values"][0]
            return {"pixel_values": pixels, "labels": self.labels[i], "train": self.train}

    def collate(rows):
        pixels = torch.stack([r["pixel_values"] for r in rows])
        if rows[0]["train"] and how.active:  # the recipe's augmentation, on 0-1 values
            pixels = (augment(((pixels * std + mean) * 255).round().clamp(0, 255).to(torch.uint8), how) - mean) / std
        longest = max(len(r["labels"]) for r in rows)
        labels = torch.tensor([r["labels"] + [-100] * (longest - len(r["labels"])) for r in rows])
        # as DataCollatorForSeq2Seq(model=...) does: the trainer's label smoother takes `labels` away
        decoder_input_ids = model.prepare_decoder_input_ids_from_labels(labels=labels)
        return {"pixel_values": pixels, "labels": labels, "decoder_input_ids": decoder_input_ids}

    def decode(ids):
        ids = [[t for t in row if t >= 0] for row in ids.tolist()]
        return [tokenizer.decode(row, skip_special_tokens=True, clean_up_tokenization_spaces=False).strip()
                for row in ids]  # fmt: skip

    val_refs = [list(e.references) for e in fit["val"]]

    def compute_metrics(prediction):
        metrics = CaptionMetrics(METRICS, model_cfg["bleu_tokenize"])
        metrics.update(decode(prediction.predictions), val_refs)
        return metrics.compute()

    class StepClock(TrainerCallback):
        train_s = 0.0

        def on_step_begin(self, args, state, control, **kwargs):
            self._t = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):
            StepClock.train_s += time.perf_counter() - self._t

    val_gen = model_cfg["val_generation"]
    ids = {"decoder_start_token_id": tokenizer.cls_token_id, "bos_token_id": tokenizer.cls_token_id,
           "eos_token_id": tokenizer.sep_token_id, "pad_token_id": tokenizer.pad_token_id}  # fmt: skip
    args = Seq2SeqTrainingArguments(
        output_dir=out, per_device_train_batch_size=data_cfg["batch_size"],
        per_device_eval_batch_size=data_cfg["eval_batch_size"], learning_rate=opt_cfg["lr"],
        num_train_epochs=config["epochs"], warmup_steps=float(opt_cfg["warmup_ratio"]),  # a float is a ratio
        lr_scheduler_type=opt_cfg["schedule"], weight_decay=0.01, label_smoothing_factor=model_cfg["label_smoothing"],
        seed=config["seed"], eval_strategy="epoch", save_strategy="epoch", save_total_limit=1,
        load_best_model_at_end=True,
        metric_for_best_model="cider", greater_is_better=True, predict_with_generate=True,
        generation_config=GenerationConfig(max_new_tokens=val_gen["max_new_tokens"], num_beams=1, **ids),
        logging_steps=20, report_to=[], use_cpu=True, save_only_model=True, remove_unused_columns=False,
        max_grad_norm=recipe.get("trainer", {}).get("gradient_clip_val") or 0.0,  # the recipe's clipping (none: 0)
    )  # fmt: skip

    class TimedTrainer(Seq2SeqTrainer):
        eval_s = 0.0  # the epochs' validation (generation and CIDEr-D), taken out of the training loop's time

        def evaluate(self, *args, **kwargs):
            t = time.perf_counter()
            try:
                return super().evaluate(*args, **kwargs)
            finally:
                TimedTrainer.eval_s += time.perf_counter() - t

    trainer = TimedTrainer(
        model=model,
        args=args,
        train_dataset=Rows(fit["train"], train=True),
        eval_dataset=Rows(fit["val"]),
        data_collator=collate,
        processing_class=tokenizer,
        compute_metrics=compute_metrics,
        callbacks=[StepClock()],
        optimizers=(optimizer, None),  # HF builds the warm-up + linear decay schedule from `args`
    )
    start = time.perf_counter()
    trainer.train()
    wall = time.perf_counter() - start
    gen = model_cfg["generation"]
    trainer.compute_metrics = None  # it scores against the validation references; test is scored below
    decoding = {"max_new_tokens": gen["max_new_tokens"], "num_beams": gen["num_beams"]}

    def score(examples) -> tuple[dict[str, float], int, float]:
        t = time.perf_counter()
        prediction = trainer.predict(Rows(examples), **decoding)
        seconds = time.perf_counter() - t
        generated = prediction.predictions[:, 1:]  # position 0 is the decoder start token
        tokens = int(((generated != tokenizer.pad_token_id) & (generated >= 0)).sum())
        metrics = CaptionMetrics(METRICS, model_cfg["bleu_tokenize"])
        metrics.update(decode(prediction.predictions), [list(e.references) for e in examples])
        return metrics.compute(), tokens, seconds

    scores, tokens, test_s = score(test)
    novel_scores, _, _ = score(novel)
    return {
        **{m: round(scores[m], 2) for m in METRICS},
        "novel_combo_cider": round(novel_scores["cider"], 2),
        "train_images_per_s": round(len(fit["train"]) * config["epochs"] / (wall - TimedTrainer.eval_s), 2),
        "step_images_per_s": round(len(fit["train"]) * config["epochs"] / StepClock.train_s, 2),
        "gen_tokens_per_s": round(tokens / test_s, 1),
        "peak_rss_mb": peak_rss_mb(),
        "wall_s": round(wall, 1),
        "best_checkpoint": trainer.state.best_model_checkpoint,
        "best_val": {"eval_cider": trainer.state.best_metric},
    }


FIELDS = (
    "bleu",
    "chrf",
    "cider",
    "novel_combo_cider",
    "train_images_per_s",
    "step_images_per_s",
    "gen_tokens_per_s",
    "peak_rss_mb",
)


def table(results: dict[str, Any]) -> str:
    names = {"hf": "HF Seq2SeqTrainer", "n2m": "n2m, HF's settings (the recipe without its weight average)",
             "n2m_ema": "n2m, the recipe (+ a moving average of the weights: design)"}  # fmt: skip
    d = results["details"]
    lines = [
        f"Korean image captioning, {results['mode']} run, {results['date']}, {results['machine']}; "
        f"{d['epochs']} epoch(s), {d['train_rows']} training rows, {d['test_images']} test images, "
        f"{d['novel_images']} held-out-combination images.",
        "",
        "| system | BLEU (char) | chrF | CIDEr-D | CIDEr-D, unseen combinations | train rows/s | rows/s in steps "
        "| generated tokens/s | peak RSS MB | wall s (train + val) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for system in (s for s in names if s in results):
        r = results[system]
        cells = [names[system], *(r[f] for f in FIELDS), d[system]["wall_s"]]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="256 / 32 / 32 rows, 1 epoch (CI-sized)")
    parser.add_argument("--epochs", type=int, default=None, help="default: the recipe's max_epochs")
    parser.add_argument("--out", default=str(ROOT / "runs/bench-caption"))
    parser.add_argument("--recipe", default=str(RECIPE), help="an image-captioning recipe like the default")
    parser.add_argument("--novel", default=str(NOVEL), help="the test file of held-out combinations")
    parser.add_argument("--resume", action="store_true", help="keep a side whose result is already in --out")
    parser.add_argument(
        "--seeds",
        type=int,
        nargs="+",
        help="train each side once per seed and average (default: the recipe's seed alone)",
    )
    parser.add_argument("--only", choices=SIDES, help="run this side alone, the others kept from the results file")
    parser.add_argument("--child", choices=SIDES)
    parser.add_argument("--config-json")
    args = parser.parse_args()

    if args.child:
        config = json.loads(args.config_json)
        out = f"{config['out']}/{args.child}"
        if args.child == "hf":
            print(json.dumps(run_hf(config, out)))
        else:
            print(json.dumps(run_n2m(config, out, averaged=args.child == "n2m_ema")))
        return

    recipe = Path(args.recipe).resolve()
    recipe_epochs = yaml.safe_load(recipe.read_text(encoding="utf-8"))["trainer"]["max_epochs"]
    epochs = 1 if args.quick else (args.epochs or recipe_epochs)
    config = {"quick": args.quick, "epochs": epochs, "out": args.out, "recipe": str(recipe), "novel": args.novel}
    data = recipe_data(recipe, args.quick)
    novel = recipe_data(recipe, args.quick, args.novel)
    details: dict[str, Any] = {
        "epochs": epochs,
        "train_rows": len(data.read_splits("fit")["train"]),
        "test_images": len(data.read_splits("test")["test"]),
        "novel_images": len(novel.read_splits("test")["test"]),
        "hf_adamw": "fused",  # as n2m's (files before 2026-12-03's last run: PyTorch's default, foreach)
    }
    name = repo_path(recipe)
    results: dict[str, Any] = {"mode": "quick" if args.quick else "full", "machine": machine(), "date": today(),
                               "recipe": name}  # fmt: skip
    recipe_seed = yaml.safe_load(recipe.read_text(encoding="utf-8")).get("seed_everything", 0)
    seeds = args.seeds or [recipe_seed]
    if len(seeds) > 1:
        results["seeds"] = seeds
    name = "caption_vs_hf.quick" if args.quick else "caption_vs_hf"
    target = ROOT / "benchmarks/results" if recipe == RECIPE else Path(args.out)
    averages = bool(recipe_callbacks(recipe)[0])
    if args.only == "n2m_ema" and not averages:
        raise SystemExit(f"--only n2m_ema: {repo_path(recipe)} averages no weights, so n2m_ema would be n2m")
    sides = (args.only,) if args.only else ("n2m", "hf") + (("n2m_ema",) if averages else ())
    if args.only:
        earlier = keep_other_sides(target / f"{name}.json", results, args.only, SIDES, seeds, recipe_seed)
        details.update({side: earlier["details"][side] for side in SIDES if side in earlier and side != args.only})
    runs: dict[str, dict[int, dict[str, Any]]] = {side: {} for side in sides}
    for seed in seeds:  # the recipe's seed in --out itself, as a one-seed run keeps it
        where = Path(args.out) if seed == recipe_seed else Path(args.out, f"seed{seed}")
        where.mkdir(parents=True, exist_ok=True)
        for system in sides:
            child = {**config, "seed": seed, "recipe_seed": recipe_seed, "out": str(where)}
            kept = args.resume and result_file(where, system).is_file()  # measured by an earlier run
            runs[system][seed] = {**run_or_resume(__file__, system, child, where, args.resume), "kept": kept}
            print(json.dumps(runs[system][seed]), flush=True)
    for system in sides:
        results[system], details[system] = over_seeds(runs[system])
    results["details"] = details
    write_results(target, name, results, table(results))
    write_pages("caption_vs_hf", written_to=target)
    print(table(results))


def over_seeds(runs: dict[int, dict[str, Any]]) -> tuple[dict[str, Any], dict[str, Any]]:
    """One side's (figures, details) over its seeds: a single run as it is; several, each figure's mean (peak
    RSS: the highest), and every run's figures and details under `seeds`."""

    def split(full: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        return {f: full[f] for f in FIELDS}, {k: v for k, v in full.items() if k not in FIELDS}

    if len(runs) == 1:
        return split(next(iter(runs.values())))
    from statistics import mean

    every = [split(full) for full in runs.values()]
    figures = {f: round(mean(fig[f] for fig, _ in every), 2) for f in FIELDS if f != "peak_rss_mb"}
    figures["peak_rss_mb"] = max(fig["peak_rss_mb"] for fig, _ in every)
    figures["seeds"] = {str(seed): fig for seed, (fig, _) in zip(runs, every, strict=True)}
    details = {"wall_s": round(mean(d["wall_s"] for _, d in every), 1),
               "seeds": {str(seed): d for seed, (_, d) in zip(runs, every, strict=True)}}  # fmt: skip
    return figures, details


if __name__ == "__main__":
    main()
