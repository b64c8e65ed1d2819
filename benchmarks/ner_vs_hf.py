"""KLUE-NER, n2m vs the ordinary tool, side by side in one run: same data and split, same (vocabulary-trimmed)
e5-small folder, and every optimization setting read from the recipe for both sides: epochs, batch size,
learning rates (the backbone's, and `head_lr` for the new classification head: HF gets the same two parameter
groups), weight decay (not on biases and norms), linear warm-up, gradient clipping (the recipe's; none: HF's
`max_grad_norm` 0), seed.

(a) Hugging Face `Trainer` + `AutoModelForTokenClassification`, written as a user writes it for character-
    annotated data: the text is tokenized with offsets, each token takes the tag of its first character,
    special tokens are ignored; predicted token tags are read back as spans over tokens and mapped to
    characters (so an entity edge inside a token cannot be hit: `<박:PS>씨` is one token `▁박씨`).
(b) `n2m fit --config recipes/klue-ner.yaml` (each character read from its token plus its offset in it;
    constrained BIO decoding; the epoch is chosen on the validation split).
(c) `hf_constrained`: (a)'s model with n2m's constrained BIO decoding (`spans.constrained_decode`) over its
    token log-probabilities instead of argmax: what decoding is worth apart from n2m's model and loop.

Both are scored with the same code (`n2m.shapes.n2n.metrics.EntityScores`: exact character span and type, micro
over types, seqeval's default mode) on the test ids of data/splits/klue-ner.json.
Each system runs in its own child process, so its peak RSS (VmHWM) is its own. Training throughput is
training sentences × epochs / seconds spent training (validation excluded: n2m's is timed by a callback and
subtracted; HF validates not at all).

    python benchmarks/ner_vs_hf.py --quick       # 256 training sentences, 1 epoch: a few minutes
    python benchmarks/ner_vs_hf.py              # the whole split, 1 epoch as the recipe: ner_vs_hf.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from _measure import machine, peak_rss_mb, recipe_settings, run_child, today, train_timer_arg, write_results  # noqa: E402
from docs_pages import write_pages  # noqa: E402

SOURCE = ROOT / "data/klue_ner/klue-ner-v1.1_dev.tsv"
SPLIT = ROOT / "data/splits/klue-ner.json"
RECIPE = ROOT / "recipes/klue-ner.yaml"
SETUP = recipe_settings(RECIPE)
HEAD_LR = yaml.safe_load(RECIPE.read_text(encoding="utf-8"))["model"]["optimization"].get("head_lr") or SETUP["lr"]


def load_split(split_file: Path):
    from n2m.shapes.n2n.examples import load_token_examples

    examples = {ex.id: ex for ex in load_token_examples(SOURCE, "klue-ner")}
    spec = json.loads(split_file.read_text(encoding="utf-8"))
    return {name: [examples[i] for i in spec[name]] for name in ("train", "val", "test")}


def gold_spans(ex) -> set:
    from n2m.shapes.n2n.spans import bio_to_spans, unit_spans_to_chars

    return set(unit_spans_to_chars(bio_to_spans(ex.tags), ex.units))


def first_char(text: str, a: int, b: int) -> int:
    """A token's first character that is not a space (e5's `▁` pieces start at the space before a word)."""
    while a < b and text[a].isspace():
        a += 1
    return a


def token_tags(ex, offsets: list[tuple[int, int]]) -> list[str | None]:
    """HF's side's training labels: each token takes the tag of its first character; None (the loss's -100) for a
    token that holds no character (special tokens, a lone `▁`)."""
    starts = [first_char(ex.text, a, b) for a, b in offsets]
    return [ex.tags[c] if c < b else None for c, (_, b) in zip(starts, offsets, strict=True)]


def tagged_tokens(ex, offsets: list[tuple[int, int]]) -> list[int]:
    """The tokens HF's side tags: those `token_tags` gives a label."""
    return [t for t, tag in enumerate(token_tags(ex, offsets)) if tag is not None]


def token_tag_spans(ex, offsets: list[tuple[int, int]], tags: list[str]) -> list:
    """One tag per tagged token → character spans: a token's span runs from its first character to its end."""
    from n2m.shapes.n2n.spans import Span, bio_to_spans

    tokens = tagged_tokens(ex, offsets)
    spans = []
    for s in bio_to_spans(tags):
        a, b = offsets[tokens[s.start]][0], offsets[tokens[s.end - 1]][1]
        spans.append(Span(first_char(ex.text, a, b), b, s.label))
    return spans


def entity_scores(names: list[str], predicted: list[list], examples: list) -> dict[str, float]:
    from n2m.shapes.n2n.metrics import EntityScores
    from n2m.shapes.n2n.spans import entity_types

    metric = EntityScores(entity_types(names))
    metric.update(predicted, [gold_spans(ex) for ex in examples])
    computed = metric.compute()
    return {k: round(float(computed[k]), 4) for k in ("f1", "precision", "recall")}


def token_ceiling(examples: list, backbone_dir: str, names: list[str], max_length: int) -> dict[str, float]:
    """The best entity F1 a tagger of whole tokens can reach: each token given HF's side's training label
    (`token_tags`), read back as HF's predictions are. An entity that starts or ends inside a
    token (`<박:PS>씨` is the one token `▁박씨`; Korean particles join their noun) cannot be hit."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(backbone_dir)
    enc = tokenizer([ex.text for ex in examples], truncation=True, max_length=max_length, return_offsets_mapping=True)
    predicted = []
    for ex, offsets in zip(examples, enc["offset_mapping"], strict=True):
        tags = [tag for tag in token_tags(ex, offsets) if tag is not None]  # one per `tagged_tokens`
        predicted.append(token_tag_spans(ex, offsets, tags))
    return entity_scores(names, predicted, examples)


def run_hf(config: dict) -> dict:
    import torch
    from transformers import (
        AutoModelForTokenClassification,
        AutoTokenizer,
        DataCollatorForTokenClassification,
        Trainer,
        TrainingArguments,
    )

    from n2m.shapes.n2n.spans import bio_transitions, constrained_decode

    split = load_split(Path(config["split_file"]))
    tokenizer = AutoTokenizer.from_pretrained(config["backbone_dir"])
    names = config["label_names"]
    label_id = {n: i for i, n in enumerate(names)}
    torch.manual_seed(SETUP["seed"])
    model = AutoModelForTokenClassification.from_pretrained(
        config["backbone_dir"], num_labels=len(names), id2label=dict(enumerate(names)), label2id=label_id
    )

    class Sentences(torch.utils.data.Dataset):
        def __init__(self, examples):
            self.examples = examples
            self.enc = tokenizer([ex.text for ex in examples], truncation=True, max_length=SETUP["max_length"],
                                 return_offsets_mapping=True)  # fmt: skip

        def __len__(self):
            return len(self.examples)

        def __getitem__(self, i):
            ex, offsets = self.examples[i], self.enc["offset_mapping"][i]
            labels = [-100 if tag is None else label_id[tag] for tag in token_tags(ex, offsets)]
            return {"input_ids": self.enc["input_ids"][i], "attention_mask": self.enc["attention_mask"][i],
                    "labels": labels}  # fmt: skip

    batch = SETUP["batch_size"]  # warmup_steps: a float below 1 is a ratio in transformers 5
    args = TrainingArguments(
        output_dir=config["out"], per_device_train_batch_size=batch, per_device_eval_batch_size=2 * batch,
        learning_rate=SETUP["lr"], num_train_epochs=config["epochs"], warmup_steps=SETUP["warmup_ratio"],
        lr_scheduler_type=SETUP["schedule"], weight_decay=SETUP["weight_decay"], seed=SETUP["seed"],
        max_grad_norm=SETUP["max_grad_norm"] or 0.0,  # 0: no clipping, as the recipe
        save_strategy="no", eval_strategy="no", logging_steps=50, report_to=[], use_cpu=True,
    )  # fmt: skip
    # n2m's parameter groups: the new head at `head_lr`, the backbone at `lr`; no decay on biases and norms
    groups: dict[tuple[float, float], list] = {}
    for name, param in model.named_parameters():
        lr = HEAD_LR if name.startswith("classifier.") else SETUP["lr"]
        decay = 0.0 if param.ndim == 1 else SETUP["weight_decay"]
        groups.setdefault((lr, decay), []).append(param)
    # fused: the optimizer n2m trains with, and HF's own default (`adamw_torch_fused`)
    optimizer = torch.optim.AdamW(
        [{"params": p, "lr": lr, "weight_decay": wd} for (lr, wd), p in groups.items()], fused=True
    )
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=Sentences(split["train"]),
        data_collator=DataCollatorForTokenClassification(tokenizer),
        optimizers=(optimizer, None),  # the Trainer builds its schedule over these groups
    )
    start = time.perf_counter()
    trainer.train()
    train_s = time.perf_counter() - start

    test = Sentences(split["test"])
    logits = torch.from_numpy(trainer.predict(test).predictions)
    transitions = bio_transitions(names)

    def scores(constrained: bool) -> dict[str, float]:
        predicted = []
        for i, ex in enumerate(split["test"]):
            offsets = test.enc["offset_mapping"][i]
            log_probs = logits[i, tagged_tokens(ex, offsets)].float().log_softmax(-1)
            path = constrained_decode(log_probs, *transitions) if constrained else log_probs.argmax(-1).tolist()
            predicted.append(token_tag_spans(ex, offsets, [names[t] for t in path]))
        return entity_scores(names, predicted, split["test"])

    return {
        **scores(constrained=False),
        "head_lr": HEAD_LR,
        "samples_per_s": round(len(split["train"]) * config["epochs"] / train_s, 2),
        "train_s": round(train_s, 1),
        "peak_rss_mb": peak_rss_mb(),
        "constrained": scores(constrained=True),
    }


def run_n2m(config: dict) -> dict:
    from n2m.cli import main

    out = Path(config["out"])
    timer = out / "train_time.json"
    main(["fit", "--config", str(RECIPE), "--data.split_file", config["split_file"],
          "--trainer.max_epochs", str(config["epochs"]), "--trainer.default_root_dir", str(out),
          "--trainer.enable_progress_bar", "false", "--trainer.callbacks+", train_timer_arg(timer)])  # fmt: skip
    report = json.loads((out / "results.json").read_text())
    train_s = json.loads(timer.read_text())["train_s"]
    test = report["test"]
    n_train = len(json.loads(Path(config["split_file"]).read_text())["train"])
    return {
        "f1": round(test["test/f1"], 4),
        "precision": round(test["test/precision"], 4),
        "recall": round(test["test/recall"], 4),
        "f1_argmax": round(test["test/f1_argmax"], 4),
        "f1_constrained": round(test["test/f1_constrained"], 4),
        "samples_per_s": round(n_train * config["epochs"] / train_s, 2),
        "train_s": round(train_s, 1),
        "fit_wall_s": report["fit_wall_s"],
        "best_checkpoint": report["best_checkpoint"],
        "peak_rss_mb": peak_rss_mb(),
    }


def table(results: dict) -> str:
    hf, n2m = results["hf"], results["n2m"]
    lines = [
        f"KLUE-NER test split ({results['test_sentences']} sentences), {results['epochs']} epoch(s), "
        f"{results['machine']}, {results['date']}, mode {results['mode']}",
        "",
        "| system | entity F1 | precision | recall | train sentences/s | train s | peak RSS MB |",
        "|---|---|---|---|---|---|---|",
    ]
    rows = (("HF Trainer + AutoModelForTokenClassification (argmax per token)", hf),
            ("the same HF model, n2m's constrained BIO decoding", results["hf_constrained"]),
            ("n2m (recipes/klue-ner.yaml)", n2m))  # fmt: skip
    for name, r in rows:
        cells = [name, r["f1"], r["precision"], r["recall"], r["samples_per_s"], r["train_s"], r["peak_rss_mb"]]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    lines += [
        "",
        f"n2m F1 without constrained decoding (argmax per character): {n2m['f1_argmax']}; with: "
        f"{n2m['f1_constrained']}.",
        f"n2m / HF: F1 {results['ratios']['f1_delta']:+.4f}, throughput ×{results['ratios']['throughput']}, "
        f"peak RSS ×{results['ratios']['peak_rss']}",
        f"The most a tagger of whole tokens can reach here (each token given its first character's gold tag): "
        f"F1 {results['token_ceiling']['f1']}.",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="256 train / 64 val / 128 test sentences, 1 epoch")
    parser.add_argument("--epochs", type=int, default=1, help="the recipe's (1)")
    parser.add_argument("--out", default=str(ROOT / "runs/bench-ner"))
    parser.add_argument("--child", choices=["hf", "n2m"])
    parser.add_argument("--config-json")
    args = parser.parse_args()
    if args.child:
        config = json.loads(args.config_json)
        runner = {"hf": run_hf, "n2m": run_n2m}[args.child]
        print(json.dumps(runner({**config, "out": f"{config['out']}/{args.child}"})))
        return

    from n2m.shapes.n2n.data import TokenDataModule

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    epochs = 1 if args.quick else args.epochs
    split_file = SPLIT
    if args.quick:
        spec = json.loads(SPLIT.read_text(encoding="utf-8"))
        spec = {"train": spec["train"][:256], "val": spec["val"][:64], "test": spec["test"][:128]}
        split_file = out / "quick-split.json"
        split_file.write_text(json.dumps(spec), encoding="utf-8")
    # the folder n2m's recipe trains from (vocabulary trimmed to the train + val texts): HF gets the same one
    data = TokenDataModule(train=str(SOURCE), format="klue-ner", split_file=str(split_file), trim_vocab=True)
    config = {"split_file": str(split_file), "epochs": epochs, "out": str(out), "backbone_dir": data.backbone_dir,
              "label_names": data.label_names}  # fmt: skip
    n_test = len(json.loads(split_file.read_text())["test"])
    results: dict = {"mode": "quick" if args.quick else "full", "machine": machine(), "date": today(),
                     "epochs": epochs, "batch_size": SETUP["batch_size"], "lr": SETUP["lr"], "head_lr": HEAD_LR,
                     "max_grad_norm": SETUP["max_grad_norm"], "seed": SETUP["seed"], "test_sentences": n_test,
                     "backbone_dir": data.backbone_dir}  # fmt: skip
    test = load_split(split_file)["test"]
    results["token_ceiling"] = token_ceiling(test, data.backbone_dir, data.label_names, SETUP["max_length"])
    for system in ("hf", "n2m"):
        print(f"running {system} …", flush=True)
        results[system] = run_child(__file__, system, config)
        print(json.dumps(results[system]), flush=True)
    constrained = results["hf"].pop("constrained")
    results["hf_constrained"] = {**results["hf"], **constrained}
    hf, n2m = results["hf"], results["n2m"]
    results["ratios"] = {
        "f1_delta": round(n2m["f1"] - hf["f1"], 4),
        "throughput": round(n2m["samples_per_s"] / hf["samples_per_s"], 2),
        "peak_rss": round(n2m["peak_rss_mb"] / hf["peak_rss_mb"], 2),
    }
    name = "ner_vs_hf.quick" if args.quick else "ner_vs_hf"
    write_results(ROOT / "benchmarks/results", name, results, table(results))
    write_pages("ner_vs_hf")
    print(table(results))


if __name__ == "__main__":
    main()
