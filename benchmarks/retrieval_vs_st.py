"""Korean FAQ retrieval, n2m vs sentence-transformers, side by side in one run on the same machine.

(a) sentence-transformers: `SentenceTransformerTrainer` + `MultipleNegativesRankingLoss`, what a user writes a
    retrieval model with, on the folder n2m trained (the checkpoint's `n2m_backbone_dir`), mean pooling.
(b) `n2m fit --config recipes/ko-faq-retrieval.yaml`, exported from its best checkpoint.

Like for like, every setting read from the recipe: the same training pairs (question → answer), loss (InfoNCE
with in-batch negatives, scale 1/temperature, the recipe's symmetric setting), epochs, batch size, learning
rate, linear warm-up, weight decay, gradient clipping (n2m has none: ST's `max_grad_norm` 0), max_length,
prefixes ("query: " / "passage: "), seed, no text twice in a batch (ST's `BatchSamplers.NO_DUPLICATES`), and
with more than one epoch each side's best epoch by validation MRR@10. Each side keeps its own batch order:
n2m groups lengths, ST shuffles.

Both trained models and the untrained backbone are scored by one function: every distinct held-out test
question against the whole answer corpus, exact cosine, MRR@10 / Recall@1 / Recall@10 through n2m's
torchmetrics (`n21.metrics`). Training throughput is training pairs × epochs / seconds of the training loop
(validation excluded: `_measure.TrainTimer` for n2m, the callback's own validation time for ST); peak RSS is
each training child's own. Encoding throughput is sentences/s over the whole answer corpus, same batch size,
both models in one process, best of a few alternating rounds: `SentenceTransformer.encode` against
`SequencePredictor.encode` on torch, and on ONNX fp32 / int8 where n2m's ONNX backend encodes.

Results: benchmarks/results/retrieval_vs_st.json (the shape issue 18 gives) with its Markdown table, and the
settings and extra figures in retrieval_vs_st.details.json.

    python benchmarks/retrieval_vs_st.py --quick      # a sample, 1 epoch: results/retrieval_vs_st.quick.json
    python benchmarks/retrieval_vs_st.py              # the recipe as it is
    python benchmarks/retrieval_vs_st.py --resume     # rerun only the sides not yet finished
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

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

RECIPE = ROOT / "recipes/ko-faq-retrieval.yaml"
ENCODE_BATCH = 64  # both sides' encode batch size (n2m's default, `n2m encode --batch-size`)
METRICS = ("mrr10", "recall1", "recall10")
Encode = Callable[[list[str], str], Any]  # (texts, "query" | "passage") → unit vectors (N, H)


# ---- data ------------------------------------------------------------------------------------------------
def read_rows(path: str | Path) -> list[dict[str, str]]:
    with Path(path).open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f, delimiter="\t"))


def write_rows(rows: list[dict[str, str]], path: Path) -> str:
    """Rows in the splits' own form (scripts/make_retrieval_splits.py's writer)."""
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]), delimiter="\t", lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return str(path)


def recipe_files() -> dict[str, str]:
    import yaml

    data = yaml.safe_load(RECIPE.read_text(encoding="utf-8"))["data"]
    return {k: str(ROOT / data[k]) for k in ("train", "val", "test", "corpus")}


def quick_files(out: Path, train: int = 1024, val: int = 100, test: int = 200, corpus: int = 1000) -> dict[str, str]:
    """A seeded sample: `train` training pairs, all rows of `val` / `test` distinct questions, and a corpus of
    their answers plus other answers up to `corpus`."""
    full = recipe_files()
    rng = random.Random(0)

    def by_question(rows: list[dict[str, str]], n: int) -> list[dict[str, str]]:
        chosen = set(rng.sample(sorted({r["question"] for r in rows}), n))
        return [r for r in rows if r["question"] in chosen]

    splits = {
        "train": rng.sample(read_rows(full["train"]), train),
        "val": by_question(read_rows(full["val"]), val),
        "test": by_question(read_rows(full["test"]), test),
    }
    needed = {r["answer"] for name in ("val", "test") for r in splits[name]}
    others = sorted({r["answer"] for r in read_rows(full["corpus"])} - needed)
    answers = sorted(needed | set(rng.sample(others, max(0, corpus - len(needed)))))
    files = {name: write_rows(rows, out / f"{name}.tsv") for name, rows in splits.items()}
    files["corpus"] = write_rows([{"answer": a} for a in answers], out / "answers.tsv")
    return files


def settings(epochs: int | None) -> dict[str, Any]:
    """What both sides train with, read from the recipe (n2m's defaults where it says nothing)."""
    import yaml

    recipe = yaml.safe_load(RECIPE.read_text(encoding="utf-8"))
    model, data = recipe["model"], recipe["data"]
    common = recipe_settings(RECIPE, epochs)
    return {
        **common,
        "temperature": model.get("temperature", 0.05),
        "symmetric": model.get("symmetric", False),
        "query_prefix": common["text_prefix"],
        "passage_prefix": data["passage_prefix"],
    }


# ---- the one evaluation ----------------------------------------------------------------------------------
def test_set(files: dict[str, str]) -> tuple[list[str], list[list[int]], list[str]]:
    """Distinct test questions, the corpus rows of each one's answers, and the corpus (every answer)."""
    corpus = [r["answer"] for r in read_rows(files["corpus"])]
    row = {a: i for i, a in enumerate(corpus)}
    relevant: dict[str, list[int]] = {}
    for r in read_rows(files["test"]):
        found = relevant.setdefault(r["question"], [])
        if row[r["answer"]] not in found:
            found.append(row[r["answer"]])
    return list(relevant), list(relevant.values()), corpus


def retrieval_scores(encode: Encode, questions: list[str], relevant: list[list[int]], corpus: list[str]) -> dict:
    """MRR@10, Recall@1 and Recall@10 of each question against the whole corpus (exact cosine), with n2m's
    torchmetrics: the same code for every model."""
    import torch

    from n2m.shapes.n21.metrics import build_metrics, ranking_candidates

    docs = torch.from_numpy(encode(corpus, "passage"))
    asked = torch.from_numpy(encode(questions, "query"))
    metrics = build_metrics("retrieval", 1)
    preds, target, indexes = ranking_candidates(asked @ docs.T, relevant)
    metrics.update(preds, target, indexes=indexes)
    return {name: round(float(value), 4) for name, value in metrics.compute().items() if name in METRICS}


def st_encoder(model: Any) -> Encode:
    def encode(texts: list[str], kind: str) -> Any:
        vectors = model.encode(texts, prompt_name=kind, batch_size=ENCODE_BATCH, normalize_embeddings=True,
                               convert_to_tensor=True, show_progress_bar=False)  # fmt: skip
        return vectors.float().numpy()  # a bf16 model's vectors too

    return encode


def n2m_encoder(predictor: Any) -> Encode:
    return lambda texts, kind: predictor.encode(texts, ENCODE_BATCH, kind=kind)


# ---- the sides -------------------------------------------------------------------------------------------
def run_n2m(files: dict[str, str], setup: dict[str, Any], out: str) -> dict[str, Any]:
    """`n2m fit` on the recipe, then its best checkpoint exported."""
    from n2m.cli import main
    from n2m.core.export import BACKBONE_KEY, export_checkpoint, read_checkpoint

    args = ["fit", "--config", str(RECIPE), "--data.train", files["train"], "--data.val", files["val"],
            "--data.test", files["test"], "--data.corpus", files["corpus"],
            "--trainer.max_epochs", str(setup["epochs"]), "--trainer.default_root_dir", out,
            "--trainer.enable_progress_bar", "false",
            "--trainer.callbacks+", train_timer_arg(Path(out, "train_time.json"))]  # fmt: skip
    main(args)
    peak = peak_rss_mb()  # training, validation and n2m's own test; not the export below
    report = json.loads(Path(out, "results.json").read_text())
    timer = json.loads(Path(out, "train_time.json").read_text())
    best = report["best_checkpoint"]
    backbone_dir = read_checkpoint(best)[BACKBONE_KEY]
    model = export_checkpoint(best, Path(out, "model"))
    pairs = len(read_rows(files["train"]))
    return {
        "train_pairs_per_s": round(pairs * setup["epochs"] / timer["train_s"], 2),
        "peak_rss_mb": peak,
        "train_s": round(timer["train_s"], 1),
        "validation_s": round(timer["validation_s"], 1),
        "fit_wall_s": report["fit_wall_s"],
        "best_epoch": int(best.split("epoch=")[-1].split("-")[0]) + 1,
        "own_test": {k.removeprefix("test/"): round(v, 4) for k, v in report["test"].items()},
        "backbone_dir": str(backbone_dir),
        "model": str(model),
    }


def run_st(files: dict[str, str], setup: dict[str, Any], out: str, backbone_dir: str) -> dict[str, Any]:
    """sentence-transformers as its documentation trains a retrieval model, on n2m's backbone folder."""
    import torch
    from datasets import Dataset
    from sentence_transformers import (
        SentenceTransformer,
        SentenceTransformerTrainer,
        SentenceTransformerTrainingArguments,
        models,
    )
    from sentence_transformers.base.sampler import BatchSamplers
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss
    from transformers import TrainerCallback

    torch.manual_seed(setup["seed"])
    prompts = {"query": setup["query_prefix"], "passage": setup["passage_prefix"]}
    # no pooler, as n2m builds the encoder: it is never used for mean pooling
    word = models.Transformer(str(backbone_dir), max_seq_length=setup["max_length"],
                              model_kwargs={"add_pooling_layer": False})  # fmt: skip
    pooling = models.Pooling(word.get_word_embedding_dimension(), setup["pooling"])
    model = SentenceTransformer(modules=[word, pooling], device="cpu", prompts=prompts)
    rows = read_rows(files["train"])
    train = Dataset.from_dict({"question": [r["question"] for r in rows], "answer": [r["answer"] for r in rows]})
    directions = ("query_to_doc", "doc_to_query") if setup["symmetric"] else ("query_to_doc",)
    # n2m's symmetric loss averages the two directions' cross-entropies: ST's "per_direction"
    loss = MultipleNegativesRankingLoss(model, scale=1 / setup["temperature"], directions=directions,
                                        partition_mode="per_direction" if setup["symmetric"] else "joint")  # fmt: skip
    schedules = {"linear": "linear", "cosine": "cosine", "constant": "constant_with_warmup"}
    args = SentenceTransformerTrainingArguments(
        output_dir=f"{out}/trainer", num_train_epochs=setup["epochs"], per_device_train_batch_size=setup["batch_size"],
        learning_rate=setup["lr"], warmup_ratio=setup["warmup_ratio"], lr_scheduler_type=schedules[setup["schedule"]],
        weight_decay=setup["weight_decay"], max_grad_norm=setup["max_grad_norm"] or 0.0,  # 0: no clipping
        seed=setup["seed"], data_seed=setup["seed"], batch_sampler=BatchSamplers.NO_DUPLICATES,
        prompts={"question": setup["query_prefix"], "answer": setup["passage_prefix"]},
        use_cpu=True, save_strategy="no", eval_strategy="no", logging_steps=10, report_to="none",
        disable_tqdm=True, dataloader_drop_last=False,
    )  # fmt: skip

    class BestEpoch(TrainerCallback):
        """With more than one epoch: validation MRR@10 after each (its time kept apart), the best saved."""

        def __init__(self) -> None:
            self.validation_s, self.best, self.best_epoch = 0.0, -1.0, setup["epochs"]
            self.val = test_set({"test": files["val"], "corpus": files["corpus"]})

        def on_epoch_end(self, *_: Any, **__: Any) -> None:
            start = time.perf_counter()
            mrr = retrieval_scores(st_encoder(model), *self.val)["mrr10"]
            epoch = round(trainer.state.epoch or 0)
            if mrr > self.best:
                self.best, self.best_epoch = mrr, epoch
                model.save(f"{out}/best")
            self.validation_s += time.perf_counter() - start

    best = BestEpoch()
    trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=train, loss=loss,
                                         callbacks=[best] if setup["epochs"] > 1 else [])  # fmt: skip
    start = time.perf_counter()
    trainer.train()
    train_s = time.perf_counter() - start - best.validation_s
    peak = peak_rss_mb()
    if setup["epochs"] > 1:
        model = SentenceTransformer(f"{out}/best", device="cpu")
    model.save(f"{out}/model")
    return {
        "train_pairs_per_s": round(len(rows) * setup["epochs"] / train_s, 2),
        "peak_rss_mb": peak,
        "train_s": round(train_s, 1),
        "validation_s": round(best.validation_s, 1),
        "best_epoch": best.best_epoch,
        "steps": trainer.state.global_step,
        "model": f"{out}/model",
    }


def onnx_encoders(folder: str) -> tuple[dict[str, Any], str | None]:
    """n2m's ONNX fp32 and int8 predictors where the ONNX backend gives sentence vectors; else none and why."""
    from n2m import Predictor
    from n2m.shapes.n21 import onnx
    from n2m.shapes.n21.predictor import SequencePredictor

    if onnx.OnnxPredictor.embed_batch is SequencePredictor.embed_batch:
        return {}, "n2m's ONNX backend has no sentence vectors yet (OnnxPredictor.embed_batch: encode is torch-only)"
    try:
        onnx.export_onnx(folder, quantize="int8")
        loaded = {name: Predictor.from_pretrained(folder, backend="onnx", onnx_file=file)
                  for name, file in (("onnx", onnx.ONNX_FILE), ("int8", onnx.INT8_FILE))}  # fmt: skip
        for predictor in loaded.values():
            predictor.encode(["확인"], kind="passage")
    except Exception as err:  # a backend half-built in the tree: say why, keep the torch figures
        return {}, f"n2m's ONNX backend could not encode: {type(err).__name__}: {err}"[:500]
    return loaded, None


def run_eval(files: dict[str, str], setup: dict[str, Any], out: str, rounds: int, n2m: dict, st: dict) -> dict:
    """The one evaluation of all three models, then encoding throughput over the corpus in this one process."""
    import numpy as np
    import torch
    from sentence_transformers import SentenceTransformer

    from n2m import Predictor
    from n2m.shapes.n21.predictor import SequencePredictor

    questions, relevant, corpus = test_set(files)
    untrained = SequencePredictor.from_backbone(
        n2m["backbone_dir"], pooling=setup["pooling"], max_length=setup["max_length"],
        query_prefix=setup["query_prefix"], passage_prefix=setup["passage_prefix"],
    )  # fmt: skip
    st_model = SentenceTransformer(st["model"], device="cpu")
    n2m_model = Predictor.from_pretrained(n2m["model"])
    encoders = {"st": st_encoder(st_model), "n2m": n2m_encoder(n2m_model)}
    scores = {"untrained": retrieval_scores(n2m_encoder(untrained), questions, relevant, corpus)}
    del untrained
    for name, encode in encoders.items():
        scores[name] = retrieval_scores(encode, questions, relevant, corpus)
        print(name, scores[name], flush=True)

    backends, why_not = onnx_encoders(n2m["model"])
    encoders |= {f"n2m_{name}": n2m_encoder(p) for name, p in backends.items()}
    # bf16 on both sides: n2m's `precision="bf16"` (autocast), and what a sentence-transformers user does for it
    encoders["n2m_bf16"] = n2m_encoder(Predictor.from_pretrained(n2m["model"], precision="bf16"))
    encoders["st_bf16"] = st_encoder(SentenceTransformer(st["model"], device="cpu").to(torch.bfloat16))
    rates: dict[str, float] = {}
    for _ in range(rounds):  # alternating rounds, the best of each: the machine is shared
        for name, encode in encoders.items():
            start = time.perf_counter()
            encode(corpus, "passage")
            rates[name] = max(rates.get(name, 0.0), round(len(corpus) / (time.perf_counter() - start), 1))
        print(rates, flush=True)
    # every test sentence, questions and answers: each faster encoder against its own side's fp32 torch vectors
    texts_by_kind = ((questions, "query"), (corpus, "passage"))
    reference = {side: {kind: encoders[side](texts, kind) for texts, kind in texts_by_kind} for side in ("n2m", "st")}
    min_cosine = {}
    for name in [*backends, "bf16", "st_bf16"]:
        key, side = (name, "st") if name.startswith("st_") else (f"n2m_{name}", "n2m")
        cosines = [(encoders[key](texts, kind) * reference[side][kind]).sum(-1) for texts, kind in texts_by_kind]
        min_cosine[name] = round(float(np.concatenate(cosines).min()), 5)
    return {
        "scores": scores,
        "encode_per_s": rates,
        "min_cosine": min_cosine,
        "int8_min_cosine": min_cosine.get("int8"),
        "onnx_not_measured": why_not,
        "threads": torch.get_num_threads(),
        "parameters": sum(p.numel() for p in n2m_model.model.parameters()),
    }


# ---- the report ------------------------------------------------------------------------------------------
def table(results: dict, details: dict) -> str:
    def cell(value: Any) -> str:
        return "n/a" if value is None else str(value)

    st, n2m, untrained = results["st"], results["n2m"], results["untrained"]
    s = details["settings"]
    lines = [
        f"### Retrieval quality: {results['queries']} held-out test questions against all {results['corpus_size']} "
        "answers (exact cosine, one evaluation for every model)",
        "",
        "| model | MRR@10 | Recall@1 | Recall@10 |",
        "|---|---|---|---|",
    ]
    names = {"untrained": "e5-small, untrained", "st": "sentence-transformers", "n2m": "n2m (recipe)"}
    for key, row in (("untrained", untrained), ("st", st), ("n2m", n2m)):
        lines.append(f"| {names[key]} | {row['mrr10']} | {row['recall1']} | {row['recall10']} |")
    lines += [
        "",
        f"### Training: {details['train_pairs']} pairs × {s['epochs']} epoch(s), training loop only (validation "
        "excluded); peak RSS of each side's own process",
        "",
        "| system | train pairs/s | train s | peak RSS MB |",
        "|---|---|---|---|",
        f"| sentence-transformers | {st['train_pairs_per_s']} | {details['st']['train_s']} | {st['peak_rss_mb']} |",
        f"| n2m | {n2m['train_pairs_per_s']} | {details['n2m']['train_s']} | {n2m['peak_rss_mb']} |",
        "",
        f"### Encoding: sentences/s over the {results['corpus_size']} answers, batch {ENCODE_BATCH}, one process, "
        "best of alternating rounds",
        "",
        "| encoder | sentences/s | lowest cosine to fp32 |",
        "|---|---|---|",
        f"| `SentenceTransformer.encode` | {st['encode_per_s']} | |",
        f"| `SentenceTransformer.encode`, model in bf16 | {cell(st.get('encode_per_s_bf16'))} | "
        f"{cell(st.get('bf16_min_cosine'))} |",
        f"| `SequencePredictor.encode`, torch | {n2m['encode_per_s']} | |",
        f'| `SequencePredictor.encode`, torch, `precision="bf16"` | {cell(n2m.get("encode_per_s_bf16"))} | '
        f"{cell(n2m.get('bf16_min_cosine'))} |",
        f"| `SequencePredictor.encode`, ONNX fp32 | {cell(n2m['encode_per_s_onnx'])} | "
        f"{cell(n2m.get('onnx_min_cosine'))} |",
        f"| `SequencePredictor.encode`, ONNX int8 | {cell(n2m['encode_per_s_int8'])} | "
        f"{cell(n2m['int8_min_cosine'])} |",
    ]
    if details["onnx_not_measured"]:
        lines += ["", f"ONNX: {details['onnx_not_measured']}"]
    lines += [
        "",
        f"Both sides: {details['parameters'] / 1e6:.1f}M parameters, batch {s['batch_size']}, lr {s['lr']}, "
        f"{s['schedule']} schedule with {s['warmup_ratio']:.0%} warm-up, weight decay {s['weight_decay']}, "
        f"gradient clipping {s['max_grad_norm'] or 'none'}, max_length {s['max_length']}, temperature "
        f"{s['temperature']} (scale {1 / s['temperature']:g}), symmetric {s['symmetric']}, seed {s['seed']}, "
        f"{s['pooling']} pooling, prefixes {s['query_prefix']!r} / {s['passage_prefix']!r}.",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1,024 sampled pairs, 1,000 answers, 1 epoch")
    parser.add_argument("--epochs", type=int, default=None, help="default: the recipe's")
    parser.add_argument("--rounds", type=int, default=None, help="encoding rounds (default 3; --quick 2)")
    parser.add_argument("--out", default=str(ROOT / "runs/bench-retrieval"))
    parser.add_argument("--results-dir", default=str(ROOT / "benchmarks/results"), help="where the results go")
    parser.add_argument("--resume", action="store_true", help="keep a side whose result is already in --out")
    parser.add_argument("--child", choices=["n2m", "st", "eval"])
    parser.add_argument("--config-json")
    args = parser.parse_args()

    if args.child:
        c = json.loads(args.config_json)
        out = f"{c['out']}/{args.child}"
        if args.child == "n2m":
            result = run_n2m(c["files"], c["settings"], out)
        elif args.child == "st":
            result = run_st(c["files"], c["settings"], out, c["n2m"]["backbone_dir"])
        else:
            result = run_eval(c["files"], c["settings"], out, c["rounds"], c["n2m"], c["st"])
        print(json.dumps(result))
        return

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    files = quick_files(out) if args.quick else recipe_files()
    setup = settings(1 if args.quick else args.epochs)
    config: dict[str, Any] = {"files": files, "settings": setup, "out": str(out),
                              "rounds": args.rounds or (2 if args.quick else 3)}  # fmt: skip
    done = {}
    for side in ("n2m", "st", "eval"):  # ST trains on the folder n2m's checkpoint names
        done[side] = run_or_resume(__file__, side, config, out, args.resume)
        config[side] = done[side]
        print(json.dumps(done[side]), flush=True)
    n2m, st, ev = done["n2m"], done["st"], done["eval"]
    rates, scores = ev["encode_per_s"], ev["scores"]
    questions, _, corpus = test_set(files)
    results = {
        "mode": "quick" if args.quick else "full",
        "machine": machine(),
        "date": today(),
        "corpus_size": len(corpus),
        "queries": len(questions),
        "untrained": scores["untrained"],
        "st": {**scores["st"], "train_pairs_per_s": st["train_pairs_per_s"], "peak_rss_mb": st["peak_rss_mb"],
               "encode_per_s": rates["st"], "encode_per_s_bf16": rates.get("st_bf16"),
               "bf16_min_cosine": ev.get("min_cosine", {}).get("st_bf16")},
        "n2m": {**scores["n2m"], "train_pairs_per_s": n2m["train_pairs_per_s"], "peak_rss_mb": n2m["peak_rss_mb"],
                "encode_per_s": rates["n2m"], "encode_per_s_onnx": rates.get("n2m_onnx"),
                "encode_per_s_int8": rates.get("n2m_int8"), "int8_min_cosine": ev["int8_min_cosine"],
                "onnx_min_cosine": ev.get("min_cosine", {}).get("onnx"), "encode_per_s_bf16": rates.get("n2m_bf16"),
                "bf16_min_cosine": ev.get("min_cosine", {}).get("bf16")},
    }  # fmt: skip
    details = {
        "settings": setup,
        "files": {k: repo_path(v) for k, v in files.items()},
        "train_pairs": len(read_rows(files["train"])),
        "parameters": ev["parameters"],
        "threads": ev["threads"],
        "encode_batch_size": ENCODE_BATCH,
        "onnx_not_measured": ev["onnx_not_measured"],
        "st": {k: st[k] for k in ("train_s", "validation_s", "best_epoch", "steps")},
        "n2m": {k: n2m[k] for k in ("train_s", "validation_s", "fit_wall_s", "best_epoch", "own_test")},
        "backbone_dir": n2m["backbone_dir"],
    }
    name = "retrieval_vs_st" + (".quick" if args.quick else "")
    target = Path(args.results_dir)
    write_results(target, name, results, table(results, details))
    (target / f"{name}.details.json").write_text(json.dumps(details, indent=2, ensure_ascii=False) + "\n",
                                                 encoding="utf-8")  # fmt: skip
    write_pages("retrieval_vs_st", written_to=target)
    print(table(results, details))


if __name__ == "__main__":
    main()
