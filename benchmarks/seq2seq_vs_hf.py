"""Korean → English translation, n2m vs Hugging Face `Seq2SeqTrainer`, same machine, model, data, epochs, decoding.

(a) HF, as a user writes it: `EncoderDecoderModel.from_encoder_decoder_pretrained` on the same (vocabulary-
    trimmed) e5-small folder with the same layer counts, the same cross-attention start (copied from
    self-attention) and the same two learning rates (an AdamW passed to the trainer), `DataCollatorForSeq2Seq`,
    `Seq2SeqTrainer` with the recipe's batch size, warm-up, schedule, weight decay and label smoothing;
    evaluation each epoch with greedy generation and BLEU, best epoch kept (`load_best_model_at_end`); test
    with the recipe's decoding (beam 4, no-repeat-3-gram, max 64 new tokens). HF's default sampler (no
    length grouping).
(b) `n2m fit --config recipes/ko-en-translation.yaml`: the same examples (the committed split), the same
    settings; its test is scored on the checkpoint with the best validation BLEU.

Both score with the same SacreBLEU (`13a`), chrF (characters only, `n_word_order=0`) and chrF++ (and word
1-2-grams, `n_word_order=2`), through n2m's `GenerationMetrics` (torchmetrics, 0-100), on detokenized text (files
from before 2026-12-02 have one `chrf` key, which was chrF++: torchmetrics' default word order). Training
throughput is training pairs per second of optimizer steps (forward + backward + update, timed by a
callback in each trainer: validation is excluded from both); generation throughput is generated tokens per
second over the test split with the test decoding settings. Each system runs in its own child process, so
its peak RSS (VmHWM) is its own. Writes benchmarks/results/seq2seq_vs_hf.json (or .quick.json) and a
Markdown table beside it.

    python benchmarks/seq2seq_vs_hf.py --quick   # 128 training pairs, 16 val, 16 test, 1 epoch: a few minutes
    python benchmarks/seq2seq_vs_hf.py           # the recipe as committed (its 4 epochs, full split)
    python benchmarks/seq2seq_vs_hf.py --resume  # after a crash: rerun only the side without a result in --out
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
from _measure import machine, peak_rss_mb, repo_path, run_or_resume, today, write_results  # noqa: E402
from docs_pages import write_pages  # noqa: E402

RECIPE = ROOT / "recipes/ko-en-translation.yaml"
TEST_METRICS = ["bleu", "chrf", "chrf++"]  # `chrf`: chrF (word order 0, as `chrf_word_order` says), `chrf++`: order 2
QUICK = {"max_train_samples": 128, "max_val_samples": 16, "max_test_samples": 16}


class StepTimer(Callback):
    """n2m side: seconds spent in training steps, and tokens generated per second of testing."""

    def __init__(self, out: str) -> None:
        self.out = out
        self.train_s = 0.0
        self.steps = 0
        self.samples = 0

    def on_train_start(self, trainer, pl_module) -> None:  # type: ignore[override]
        self._fit_t = time.perf_counter()

    def on_train_end(self, trainer, pl_module) -> None:  # type: ignore[override]
        self.fit_s = time.perf_counter() - self._fit_t

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:  # type: ignore[override]
        self._t = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:  # type: ignore[override]
        self.train_s += time.perf_counter() - self._t
        self.steps += 1
        self.samples += int(batch["input_ids"].shape[0])

    def on_test_start(self, trainer, pl_module) -> None:  # type: ignore[override]
        self._test_t, self._tokens = time.perf_counter(), pl_module.generated_tokens

    def on_test_end(self, trainer, pl_module) -> None:  # type: ignore[override]
        report = {
            "train_step_s": round(self.train_s, 1),
            "fit_s": round(self.fit_s, 1),
            "train_samples": self.samples,
            "test_s": round(time.perf_counter() - self._test_t, 1),
            "test_tokens": pl_module.generated_tokens - self._tokens,
        }
        Path(self.out).write_text(json.dumps(report) + "\n", encoding="utf-8")


def recipe_data(recipe: Path, quick: bool) -> Any:
    """The recipe's DataModule (its files, split, lengths), sliced in quick mode."""
    from n2m.shapes.n2m.data import Seq2SeqDataModule
    from n2m.shapes.n2m.examples import Seq2SeqColumns

    config = yaml.safe_load(recipe.read_text(encoding="utf-8"))
    data = dict(config["data"])
    data["columns"] = Seq2SeqColumns(**data["columns"])
    return Seq2SeqDataModule(**data, **(QUICK if quick else {}))


def run_n2m(config: dict[str, Any], out: str) -> dict[str, Any]:
    from n2m.cli import main

    timer_file = Path(out, "timer.json")
    Path(out).mkdir(parents=True, exist_ok=True)
    timer = {"class_path": "seq2seq_vs_hf.StepTimer", "init_args": {"out": str(timer_file)}}
    args = ["fit", "--config", config["recipe"], "--trainer.default_root_dir", out,
            "--trainer.enable_progress_bar", "false", "--trainer.max_epochs", str(config["epochs"]),
            "--trainer.callbacks+", json.dumps(timer),
            "--model.metrics", json.dumps(TEST_METRICS)]  # fmt: skip
    for key, value in (QUICK if config["quick"] else {}).items():
        args += [f"--data.{key}", str(value)]
    main(args)
    report = json.loads(Path(out, "results.json").read_text(encoding="utf-8"))
    timing = json.loads(timer_file.read_text(encoding="utf-8"))
    return {
        "bleu": round(report["test"]["test/bleu"], 2),
        "chrf": round(report["test"]["test/chrf"], 2),
        "chrf++": round(report["test"]["test/chrf++"], 2),
        "samples_per_s": round(timing["train_samples"] / timing["train_step_s"], 2),
        "gen_tokens_per_s": round(timing["test_tokens"] / timing["test_s"], 1),
        "peak_rss_mb": peak_rss_mb(),
        "wall_s": timing["fit_s"],  # training loop with its per-epoch validation, as HF's `train()` below
        "best_checkpoint": report["best_checkpoint"],
        "best_val": report["best_val"],
    }


def run_hf(config: dict[str, Any], out: str) -> dict[str, Any]:
    """The ordinary tool, as a user writes it (only the data comes from n2m, so both see the same examples)."""
    import torch
    from transformers import (
        AutoTokenizer,
        DataCollatorForSeq2Seq,
        EncoderDecoderModel,
        GenerationConfig,
        Seq2SeqTrainer,
        Seq2SeqTrainingArguments,
        TrainerCallback,
    )

    from n2m.shapes.n2m.metrics import GenerationMetrics

    recipe = yaml.safe_load(Path(config["recipe"]).read_text(encoding="utf-8"))
    model_cfg, data_cfg = recipe["model"], recipe["data"]
    opt_cfg = model_cfg["optimization"]
    data = recipe_data(Path(config["recipe"]), config["quick"])
    fit, test = data.read_splits("fit"), data.read_splits("test")["test"]
    folder = data.backbone_dir  # the same trimmed e5-small n2m builds from
    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = EncoderDecoderModel.from_encoder_decoder_pretrained(
        folder,
        folder,
        encoder_num_hidden_layers=model_cfg["encoder_layers"],
        decoder_num_hidden_layers=model_cfg["decoder_layers"],
    )
    model.config.decoder_start_token_id = tokenizer.cls_token_id
    model.config.eos_token_id = tokenizer.sep_token_id
    model.config.pad_token_id = tokenizer.pad_token_id
    model.config.vocab_size = model.config.decoder.vocab_size
    if model_cfg.get("cross_attention_init") == "self_attention":  # the same start as n2m's model
        for layer in model.decoder.bert.encoder.layer:
            layer.crossattention.load_state_dict(layer.attention.state_dict())
    # the same two learning rates: the checkpoint's weights at lr, the parts the warm start adds at head_lr
    new_parts = ("crossattention", "cls.predictions.transform", "cls.predictions.bias")
    no_decay = ("bias", "LayerNorm.weight")
    groups: dict[tuple[float, float], list] = {}
    for name, param in model.named_parameters():
        lr = opt_cfg.get("head_lr") or opt_cfg["lr"] if any(k in name for k in new_parts) else opt_cfg["lr"]
        groups.setdefault((lr, 0.0 if name.endswith(no_decay) else 0.01), []).append(param)
    # fused: the optimizer n2m trains with, and HF's own default (`adamw_torch_fused`)
    optimizer = torch.optim.AdamW(
        [{"params": p, "lr": lr, "weight_decay": wd} for (lr, wd), p in groups.items()], fused=True
    )

    class Pairs(torch.utils.data.Dataset):
        def __init__(self, examples):
            self.sources = tokenizer([e.source for e in examples], truncation=True,
                                     max_length=data_cfg["max_length"])["input_ids"]  # fmt: skip
            labels = tokenizer(text_target=[e.target for e in examples], truncation=True,
                               max_length=data_cfg["max_target_length"] + 1)["input_ids"]  # fmt: skip
            self.labels = [ids[1:] for ids in labels]  # drop <s>: the decoder is fed it (as n2m does)

        def __len__(self):
            return len(self.sources)

        def __getitem__(self, i):
            return {"input_ids": self.sources[i], "labels": self.labels[i]}

    def decode(ids):
        ids = [[t for t in row if t >= 0] for row in ids.tolist()]
        return [tokenizer.decode(row, skip_special_tokens=True, clean_up_tokenization_spaces=False).strip()
                for row in ids]  # fmt: skip

    val_refs = [list(e.references) for e in fit["val"]]

    def compute_metrics(prediction):
        metrics = GenerationMetrics(["bleu", "chrf"], model_cfg["bleu_tokenize"])
        metrics.update(decode(prediction.predictions), val_refs)
        return metrics.compute()

    class StepClock(TrainerCallback):
        train_s = 0.0

        def on_step_begin(self, args, state, control, **kwargs):
            self._t = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):
            StepClock.train_s += time.perf_counter() - self._t

    val_gen = model_cfg["val_generation"]
    args = Seq2SeqTrainingArguments(
        output_dir=out, per_device_train_batch_size=data_cfg["batch_size"],
        per_device_eval_batch_size=data_cfg["eval_batch_size"], learning_rate=opt_cfg["lr"],
        num_train_epochs=config["epochs"], warmup_steps=float(opt_cfg["warmup_ratio"]),  # a float is a ratio
        lr_scheduler_type=opt_cfg["schedule"], weight_decay=0.01, label_smoothing_factor=model_cfg["label_smoothing"],
        max_grad_norm=recipe.get("trainer", {}).get("gradient_clip_val") or 0.0,  # the recipe's clipping (none: 0)
        seed=0, eval_strategy="epoch", save_strategy="epoch", save_total_limit=1, load_best_model_at_end=True,
        metric_for_best_model="bleu", greater_is_better=True, predict_with_generate=True,
        generation_config=GenerationConfig(
            max_new_tokens=val_gen["max_new_tokens"], num_beams=1, no_repeat_ngram_size=val_gen["no_repeat_ngram_size"],
            decoder_start_token_id=tokenizer.cls_token_id, eos_token_id=tokenizer.sep_token_id,
            pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.cls_token_id,
        ),
        logging_steps=20, report_to=[], use_cpu=True, save_only_model=True,
    )  # fmt: skip
    trainer = Seq2SeqTrainer(
        model=model,
        args=args,
        train_dataset=Pairs(fit["train"]),
        eval_dataset=Pairs(fit["val"]),
        data_collator=DataCollatorForSeq2Seq(tokenizer, model=model, label_pad_token_id=-100),
        processing_class=tokenizer,
        compute_metrics=compute_metrics,
        callbacks=[StepClock()],
        optimizers=(optimizer, None),  # HF builds the warm-up + linear decay schedule from `args`
    )
    start = time.time()
    trainer.train()
    wall = time.time() - start
    gen = model_cfg["generation"]
    trainer.compute_metrics = None  # it scores against the validation references; test is scored below
    t = time.perf_counter()
    prediction = trainer.predict(
        Pairs(test),
        max_new_tokens=gen["max_new_tokens"],
        num_beams=gen["num_beams"],
        length_penalty=gen.get("length_penalty", 1.0),
        no_repeat_ngram_size=gen["no_repeat_ngram_size"],
    )
    test_s = time.perf_counter() - t
    generated = prediction.predictions[:, 1:]  # position 0 is the decoder start token
    tokens = int(((generated != tokenizer.pad_token_id) & (generated >= 0)).sum())
    metrics = GenerationMetrics(TEST_METRICS, model_cfg["bleu_tokenize"])
    metrics.update(decode(prediction.predictions), [list(e.references) for e in test])
    scores = metrics.compute()
    return {
        "bleu": round(scores["bleu"], 2),
        "chrf": round(scores["chrf"], 2),
        "chrf++": round(scores["chrf++"], 2),
        "samples_per_s": round(len(fit["train"]) * config["epochs"] / StepClock.train_s, 2),
        "gen_tokens_per_s": round(tokens / test_s, 1),
        "peak_rss_mb": peak_rss_mb(),
        "wall_s": round(wall, 1),
        "best_checkpoint": trainer.state.best_model_checkpoint,
        "best_val": {"eval_bleu": trainer.state.best_metric},
    }


FIELDS = ("bleu", "chrf", "chrf++", "samples_per_s", "gen_tokens_per_s", "peak_rss_mb")


def table(results: dict[str, Any]) -> str:
    names = {"hf": "HF Seq2SeqTrainer", "n2m": "n2m (recipes/ko-en-translation.yaml)"}
    lines = [
        f"Korean → English, {results['mode']} run, {results['date']}, {results['machine']}; "
        f"{results['details']['epochs']} epoch(s), {results['details']['train_pairs']} training pairs, "
        f"{results['details']['test_pairs']} test pairs.",
        "",
        "| system | BLEU (13a) | chrF | chrF++ | train pairs/s | generated tokens/s | peak RSS MB "
        "| wall s (train + val) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for system in ("hf", "n2m"):
        r = results[system]
        cells = [names[system], *(r[f] for f in FIELDS), results["details"][system]["wall_s"]]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="128 / 16 / 16 pairs, 1 epoch (CI-sized)")
    parser.add_argument("--epochs", type=int, default=None, help="default: the recipe's max_epochs")
    parser.add_argument("--out", default=str(ROOT / "runs/bench-seq2seq"))
    parser.add_argument("--recipe", default=str(RECIPE), help="a Korean-English translation recipe like the default")
    parser.add_argument("--resume", action="store_true", help="keep a side whose result is already in --out")
    parser.add_argument("--child", choices=["hf", "n2m"])
    parser.add_argument("--config-json")
    args = parser.parse_args()

    if args.child:
        config = json.loads(args.config_json)
        runner = {"hf": run_hf, "n2m": run_n2m}[args.child]
        print(json.dumps(runner(config, f"{config['out']}/{args.child}")))
        return

    recipe = Path(args.recipe).resolve()
    recipe_epochs = yaml.safe_load(recipe.read_text(encoding="utf-8"))["trainer"]["max_epochs"]
    epochs = 1 if args.quick else (args.epochs or recipe_epochs)
    config = {"quick": args.quick, "epochs": epochs, "out": args.out, "recipe": str(recipe)}
    data = recipe_data(recipe, args.quick)
    details: dict[str, Any] = {
        "epochs": epochs,
        "train_pairs": len(data.read_splits("fit")["train"]),
        "test_pairs": len(data.read_splits("test")["test"]),
    }
    name = repo_path(recipe)
    results: dict[str, Any] = {"mode": "quick" if args.quick else "full", "machine": machine(), "date": today(),
                               "recipe": name, "chrf_word_order": 0}  # fmt: skip
    Path(args.out).mkdir(parents=True, exist_ok=True)
    for system in ("n2m", "hf"):
        full = run_or_resume(__file__, system, config, args.out, args.resume)
        print(json.dumps(full), flush=True)
        results[system] = {f: full[f] for f in FIELDS}
        details[system] = {k: v for k, v in full.items() if k not in FIELDS}
    results["details"] = details
    name = "seq2seq_vs_hf.quick" if args.quick else "seq2seq_vs_hf"
    target = ROOT / "benchmarks/results" if recipe == RECIPE else Path(args.out)
    write_results(target, name, results, table(results))
    write_pages("seq2seq_vs_hf", written_to=target)
    print(table(results))


if __name__ == "__main__":
    main()
