"""The reader-facing benchmark pages, written from the committed results files: `docs/benchmarks/<name>.md`, and
the README's generated blocks (the headline results table and the fresh-clone figures).

Every figure on a page is read from a results file when the page is written, so a page and its file cannot
drift apart: a benchmark script calls `write_pages("<name>")` after it writes its results, and
`tests/test_benchmark_docs.py` fails when a committed page differs from what its files give. The prose around
the tables is template text here; a page whose results file is absent is not written.

    python benchmarks/docs_pages.py            # rewrite every page and the README's blocks
    python benchmarks/docs_pages.py --check    # exit 1, naming them, if any is out of date
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from n2m.bench.leaderboard import METRIC_NAMES, PERCENT, metric_name, shown

ROOT = Path(__file__).resolve().parents[1]
RESULTS = "benchmarks/results"
DOCS = "docs/benchmarks"
GENERATED = "<!-- Written by `python benchmarks/docs_pages.py` from the results files named below: edit that script, not this page. -->"  # noqa: E501
Json = dict[str, Any]


# ---- reading and formatting ------------------------------------------------------------------------------------
def load(root: Path, name: str) -> Json | None:
    """A results file under benchmarks/results (or a path relative to the root), None when absent."""
    path = root / name if "/" in name else root / RESULTS / name
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def link(name: str, up: int = 2) -> str:
    """A Markdown link to a results file from a page `up` folders below the root."""
    path = name if "/" in name else f"{RESULTS}/{name}"
    return f"[`{path}`]({'../' * up}{path})"


def f4(x: float | None) -> str:
    return "—" if x is None else f"{x:.4f}"


def f2(x: float | None) -> str:
    return "—" if x is None else f"{x:.2f}"


def f1(x: float | None) -> str:
    return "—" if x is None else f"{x:.1f}"


def lr(x: float) -> str:
    """A learning rate as a recipe writes it: 1e-4, 5e-5."""
    return re.sub(r"e([-+])0*(\d)", r"e\1\2", f"{x:.0e}")


def delta(x: float) -> str:
    """A signed difference to 4 places; one that rounds to nothing is +0.0000, not -0.0000."""
    return f"{round(x, 4) + 0.0:+.4f}"


def times(x: float | None) -> str:
    return "—" if x is None else f"×{x:.2f}"


def ratio(a: float | None, b: float | None) -> str:
    """a / b as "×r", for a page; the README's block uses only ratios a results file holds."""
    return "—" if a is None or not b else f"×{a / b:.2f}"


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> list[str]:
    out = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    out += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return out


def chrf_keys(block: Json, marker: Json | None = None, prefix: str = "") -> list[tuple[str, str]]:
    """(key, label) of a block's chrF figures. Older files scored with torchmetrics' `CHRFScore()`, whose default
    counts word bigrams too: chrF++. A file that reports both names them `chrf` (characters only) and `chrf++`,
    or says `chrf_word_order`; in a file with neither, `chrf` is chrF++."""
    marker = marker or {}
    true_chrf = f"{prefix}chrf++" in block or marker.get("chrf_word_order") == 0
    out = [(f"{prefix}chrf", "chrF" if true_chrf else "chrF++")] if f"{prefix}chrf" in block else []
    return out + ([(f"{prefix}chrf++", "chrF++")] if f"{prefix}chrf++" in block else [])


def page(title: str, measures: str, rerun: Sequence[str], files: Sequence[str], facts: str, body: list[str]) -> str:
    """A page: what it measures, how to rerun it, where its figures live, the machine and date, the tables."""
    lines = [f"# {title}", "", GENERATED, "", f"**What it measures.** {measures}", "", "**Rerun:**", "", "```bash"]
    lines += [*rerun, "```", "", "**Results files:** " + ", ".join(link(f) for f in files) + ".", ""]
    lines += [f"**Machine and date:** {facts}", "", *body]
    return "\n".join(lines).rstrip("\n") + "\n"


def machine_date(r: Json) -> str:
    return f"{r.get('machine', '?')}, {r.get('date', '?')}"


# ---- KorSTS -----------------------------------------------------------------------------------------------------
def sts_rows(r: Json, gpu: bool) -> list[list[str]]:
    # `backbone`: both sides were given one (the GPU run's trimmed e5-small); else HF loads the full model
    hf_model = "the same trimmed e5-small" if r.get("backbone") else "full e5-small"
    names = {"hf": f"HF `Trainer` (cross-encoder, {hf_model})",
             "n2m": "n2m, `recipes/korsts.yaml` (bi-encoder, trimmed e5-small)"}  # fmt: skip
    rows = []
    for key in ("hf", "n2m", "n2m_ensemble"):
        s = r.get(key)
        if s is None:
            continue
        name = names.get(key) or (
            f"n2m ensemble (bi-encoder + `recipes/korsts-cross.yaml`, weights fitted on dev, "
            f"{' : '.join(f'{w:g}' for w in s.get('weights') or [])})"
        )
        row = [name, f4(s["pearson"]), f4(s["spearman"]), f2(s["samples_per_s"]), f1(s["wall_s"]),
               f1(s["peak_rss_mb"])]  # fmt: skip
        if gpu:
            row.append(f1(s.get("peak_gpu_mb")))
        rows.append([*row, f1(s.get("checkpoint_mb"))])
    return rows


def sts_table(r: Json) -> list[str]:
    gpu = "peak_gpu" in r.get("ratios", {})
    headers = ["system", "Pearson", "Spearman", "train pairs/s", "train s", "peak RSS MB"]
    headers += ["peak GPU MB"] * gpu + ["model MB"]
    return table(headers, sts_rows(r, gpu))


def sts_vs_hf(root: Path) -> str | None:
    cpu, gpu = load(root, "sts_vs_hf.json"), load(root, "sts_vs_hf.gpu.json")
    if cpu is None and gpu is None:
        return None
    body: list[str] = []
    files = []
    if cpu is not None:
        files.append("sts_vs_hf.json")
        hf, n2m, ens, q = cpu["hf"], cpu["n2m"], cpu.get("n2m_ensemble"), cpu["ratios"]
        body += [
            f"## On the CPU ({cpu['mode']} mode, {cpu['epochs']} epochs)",
            "",
            "Both sides: KorSTS train, the same machine, seed 0, batch 32, AdamW, 10% warm-up then linear decay. "
            "HF: the cross-encoder a user writes by hand (`BertForSequenceClassification`, `num_labels=1`, MSE, "
            "lr 5e-5), on the full e5-small, scored on test after its last epoch. n2m: `recipes/korsts.yaml` "
            "(bi-encoder, cosine trained with MSE against score / 5, mean pooling, vocabulary trimmed to the data, "
            "lr 3e-5), its epoch chosen on KorSTS dev and the test split scored once. Throughput counts training "
            "only (n2m's per-epoch validation is subtracted; the ensemble's time is its two members' together); "
            "peak RSS is each system's own child process, the ensemble's the larger of its members'.",
            "",
            *sts_table(cpu),
            "",
            f"- n2m's single model against HF: Pearson {q['pearson_delta']:+.4f}, training pairs/s "
            f"{times(q['throughput'])}, peak RSS {times(q['peak_rss'])}, model file {times(q['checkpoint'])}. "
            "These ratios compare two designs on two model sizes, not two training loops (see above).",
        ]
        if ens is not None:
            members = ens.get("member_test_pearson") or []
            body.append(
                f"- The ensemble scores {f4(ens['pearson'])}, {ens['pearson'] - n2m['pearson']:+.4f} against the "
                "single model."
                + (
                    f" Its cross-encoder alone scores {f4(members[1])} (HF's cross-encoder: {f4(hf['pearson'])}); "
                    "it errs differently from the bi-encoder, and the weights fitted on dev give it the small share "
                    "that helps."
                    if len(members) > 1
                    else ""
                )
            )
        body += ["", *mmap_runs(root, cpu)]
    if gpu is not None:
        files.append("sts_vs_hf.gpu.json")
        q = gpu["ratios"]
        body += [
            "",
            f"## On one GPU ({gpu['mode']} mode, {gpu['epochs']} epochs, {gpu.get('precision', 'fp32')})",
            "",
            "`benchmarks/sts_gpu.sh` on a lent GPU machine: `sts_vs_hf.py --accelerator gpu`, both sides in bf16 "
            "autocast, everything else as on the CPU. That machine has no network, so both sides load e5-small cut "
            f"to the pieces KorSTS train, dev and test use (`{gpu.get('backbone')}`, written by "
            "`benchmarks/sts_gpu_prepare.sh`; every KorSTS text tokenizes as with the full model). Here both sides "
            "have the same trimmed model, so the difference is the design (cross-encoder against bi-encoder) and "
            "the tools.",
            "",
            *sts_table(gpu),
            "",
            f"- n2m's single model against HF: Pearson {q['pearson_delta']:+.4f}, training pairs/s "
            f"{times(q['throughput'])}, peak GPU memory {times(q.get('peak_gpu'))} "
            f"(`torch.cuda.max_memory_allocated`), peak RSS {times(q['peak_rss'])}.",
        ]
        if q["throughput"] < 1:
            body.append(
                "- In this run n2m trained slower than HF: the bi-encoder runs the encoder once per sentence, "
                "twice per pair, on batches of 32 short sentences, where a GPU waits on kernel launches more than "
                "on arithmetic; HF's cross-encoder runs once over the joined pair."
            )
        if cpu is not None:
            body.append(
                f"- HF's cross-encoder scores {f4(gpu['hf']['pearson'])} in bf16 here against "
                f"{f4(cpu['hf']['pearson'])} in fp32 on the CPU, same seed."
            )
    return page(
        "KorSTS: n2m against HF `Trainer`, tool against tool",
        "**tool against tool**: HF `Trainer` fine-tuning a cross-encoder on the full 250k-piece e5-small (118M "
        "parameters) against n2m's bi-encoder on the vocabulary-trimmed e5-small (24M), each as a user would "
        "write it. It measures the tools as a user would use them, not the training loop: the trimming and the "
        "bi-encoder design account for most of the throughput and memory difference. The training loop like "
        f"for like (the same trimmed bi-encoder on both sides) is measured {same_model_page(root)}.",
        [
            "python benchmarks/sts_vs_hf.py --ensemble 2 --ensemble-kind mix        # CPU → sts_vs_hf.json",
            "bash benchmarks/sts_gpu.sh                                             # one GPU → sts_vs_hf.gpu.json",
        ],
        files,
        "; ".join(f"{name}: {machine_date(r)}" for name, r in (("CPU", cpu), ("GPU", gpu)) if r is not None),
        body,
    )


def same_model_page(root: Path) -> str:
    if load(root, "sts_same_model.json") or load(root, "sts_same_model.gpu.json"):
        return "in [sts_same_model](sts_same_model.md)"
    return "by `benchmarks/sts_same_model.py` (no results file yet)"


MMAP_RUNS = (
    ("4 MB", "sts_vs_hf.mmap-4mb.json"),
    ("1.5 MB", "sts_vs_hf.mmap-1.5mb.json"),
    ("2 MB (the recipe)", "sts_vs_hf.json"),
)


def mmap_runs(root: Path, cpu: Json) -> list[str]:
    """n2m's side of the CPU run at several `mmap_threshold_mb`: what the setting did to the comparison."""
    runs = [(mb, name, load(root, name)) for mb, name in MMAP_RUNS]
    runs = [(mb, name, r) for mb, name, r in runs if r is not None]
    if len(runs) < 2:
        return []
    rows = [[mb, f2(r["n2m"]["samples_per_s"]), times(r["ratios"]["throughput"]), f1(r["n2m"]["peak_rss_mb"]),
             times(r["ratios"]["peak_rss"]), link(name)] for mb, name, r in runs]  # fmt: skip
    return [
        "### What `mmap_threshold_mb` changed",
        "",
        "The same recipe, seed and code in full runs differing only in n2m's `mmap_threshold_mb` (the model and "
        "its scores are identical in all: the setting moves where memory lives, not the arithmetic; HF's side is "
        "the same run in each file):",
        "",
        *table(["n2m's mmap threshold", "train pairs/s", "×HF", "peak RSS MB", "×HF", "results"], rows),
        "",
        "n2m's peak RSS was already well under HF's at the 4 MB default: most of that difference is the trimmed "
        "model and the bi-encoder, not the threshold. What the threshold itself does to a training run is "
        "measured in [mmap_threshold](mmap_threshold.md); timings on this shared 2-core machine drift by several "
        "percent between runs.",
    ]


DESIGN_ROW = (
    "**Design row**: n2m with `data.group_by_length: false`, every other setting the recipe's: what n2m's "
    "length-grouped batches are worth against a random order (sentence-transformers' own), in Pearson and speed. "
    "The choice between them is made on dev Pearson."
)


def kept_runs(r: dict[str, Any]) -> list[dict[str, Any]]:
    """The earlier runs `--only` kept sides from, each `{"date", "machine", "sides"}`."""
    return r.get("kept_from_earlier_run") or []


def kept_sides(r: dict[str, Any]) -> list[str]:
    """A line under the table naming the sides `--only` kept from earlier runs: their figures, speed included,
    are of those runs, so a ratio against them spans two runs."""
    if not (kept := kept_runs(r)):
        return []
    names = {"st": "sentence-transformers", "hf": "HF", "n2m": "n2m", "n2m_random_order": "the design row",
             "n2m_ema": "the recipe's row"}  # fmt: skip
    runs = "; ".join(f"{', '.join(names.get(side, side) for side in run['sides'])} from the run of {run['date']} "
                     f"({run['machine']})" for run in kept)  # fmt: skip
    return ["", f"Kept by `--only` from earlier runs: {runs}. The other rows ran on {r['date']}; a speed ratio "
                "between rows of two runs also holds what the shared machine did between them."]  # fmt: skip


def kept_from(r: dict[str, Any], side: str, owner: str) -> str:
    """The README's note where `--only` kept `side` from an earlier run: "(OWNER side from its run of DATE)"."""
    run = next((run for run in kept_runs(r) if side in run["sides"]), None)
    return f" ({owner} side from its run of {run['date']})" if run else ""


def sts_same_model(root: Path) -> str | None:
    runs = [(label, name, load(root, name)) for label, name in
            (("CPU", "sts_same_model.json"), ("GPU", "sts_same_model.gpu.json"))]  # fmt: skip
    runs = [(label, name, r) for label, name, r in runs if r is not None]
    if not runs:
        return None
    body: list[str] = []
    for label, _, r in runs:
        st, n2m = r["st"], r["n2m"]
        rows = [[name, f4(s.get("pearson")), f4(s.get("spearman")), f2(s.get("samples_per_s")), f1(s.get("wall_s")),
                 f1(s.get("peak_rss_mb")), f1(s.get("peak_gpu_mb"))]
                for name, s in (("sentence-transformers `SentenceTransformerTrainer`", st), ("n2m", n2m),
                                ("n2m, batches in random order (design row)", r.get("n2m_random_order")))
                if s is not None]  # fmt: skip
        seeds = r.get("seeds")
        over = f", the mean over seeds {', '.join(map(str, seeds))}" if seeds else ""
        body += [
            f"## {label} ({r.get('mode', '?')} mode, {machine_date(r)}{over})",
            "",
            *table(["system", "Pearson", "Spearman", "train pairs/s", "train s", "peak RSS MB", "peak GPU MB"], rows),
            *kept_sides(r),
            "",
            f"- n2m against sentence-transformers: Pearson {n2m['pearson'] - st['pearson']:+.4f}, training "
            f"pairs/s {ratio(n2m.get('samples_per_s'), st.get('samples_per_s'))}, peak RSS "
            f"{ratio(n2m.get('peak_rss_mb'), st.get('peak_rss_mb'))}.",
        ]
        if seeds:
            body += ["", "Each seed (test Pearson at the epoch of best dev Pearson):", ""]
            pairs = [(k, n2m["seeds"][k], st["seeds"][k]) for k in n2m["seeds"]]
            body += table(["seed", "n2m Pearson", "ST Pearson", "n2m − ST", "n2m dev", "ST dev", "n2m pairs/s",
                           "ST pairs/s"],
                          [[seed, f4(a["pearson"]), f4(b["pearson"]), delta(a["pearson"] - b["pearson"]),
                            f4(a["val_pearson"]), f4(b["val_pearson"]), f2(a["samples_per_s"]), f2(b["samples_per_s"])]
                           for seed, a, b in pairs])  # fmt: skip
            body += ["", f"Spread of test Pearson between seeds (standard deviation): n2m {f4(n2m['pearson_sd'])}, "
                         f"sentence-transformers {f4(st['pearson_sd'])}."]  # fmt: skip
        if design := r.get("n2m_random_order"):
            body += ["", DESIGN_ROW, ""]
            by_seed = design.get("seeds") or {str(r["settings"]["seed"]): design}
            body += table(["seed", "random order: test Pearson", "dev Pearson", "pairs/s", "length-grouped (the "
                           "recipe): dev Pearson", "pairs/s"],
                          [[seed, f4(a["pearson"]), f4(a["val_pearson"]), f2(a["samples_per_s"]),
                            f4((n2m.get("seeds") or {seed: n2m})[seed]["val_pearson"]),
                            f2((n2m.get("seeds") or {seed: n2m})[seed]["samples_per_s"])]
                           for seed, a in by_seed.items()])  # fmt: skip
        extra = {k: v for k, v in r.items()
                 if k not in ("mode", "machine", "date", "st", "n2m", "n2m_random_order", "seeds")}  # fmt: skip
        if extra:
            body += ["", "Also in the file:", ""]
            body += [f"- `{k}`: `{json.dumps(v, ensure_ascii=False)}`" for k, v in extra.items()]
        body.append("")
    return page(
        "KorSTS: the training loop, like for like",
        "**the training loop like for like**: n2m against sentence-transformers' trainer "
        "(`SentenceTransformerTrainer` with `CosineSimilarityLoss`, the tool a user writes a bi-encoder with). "
        "Both sides train the same vocabulary-trimmed e5-small bi-encoder with the same loss, epochs, batch, "
        "learning rate, warm-up, seed (on both sides it sets the training order as well as dropout) and "
        "gradient clipping, each scored at its best validation epoch. What is left is the loop. "
        "The tool-against-tool comparison is [sts_vs_hf](sts_vs_hf.md).",
        [
            "python benchmarks/sts_same_model.py                       # CPU → sts_same_model.json",
            "python benchmarks/sts_same_model.py --seeds 0 1 2         # each side once per seed, averaged",
            "python benchmarks/sts_same_model.py --seeds 0 1 2 --only n2m_random_order   # the design row alone",
            "python benchmarks/sts_same_model.py --accelerator gpu     # one GPU → sts_same_model.gpu.json",
        ],
        [name for _, name, _ in runs],
        "; ".join(f"{label}: {machine_date(r)}" for label, _, r in runs),
        body,
    )


def sts_dev_trials(root: Path) -> str | None:
    cpu, gpu = load(root, "sts_dev_trials.json"), load(root, "sts_dev_trials.gpu.json")
    if cpu is None and gpu is None:
        return None
    body: list[str] = []
    for label, name, r in (("CPU", "sts_dev_trials.json", cpu), ("GPU", "sts_dev_trials.gpu.json", gpu)):
        if r is None:
            continue
        rows = [[f"`{trial}`", " ".join(f"`{o}`" for o in t["overrides"]) or "(the recipe)",
                 " / ".join(f4(x) for x in t["dev_pearson_by_epoch"]), f4(t["best_dev_pearson"]), t["date"]]
                for trial, t in r.items()]  # fmt: skip
        body += [f"## {label} ({link(name)})", "", *table(["trial", "overrides", "dev Pearson by epoch",
                                                             "best", "date"], rows), ""]  # fmt: skip
        stage = next((t["first_stage"] for t in r.values() if "first_stage" in t), None)
        if stage:
            body += [
                f"The `init_from` trial's first stage (`{stage['run']}`, `recipes/kornli-bi.yaml`): KorNLI dev "
                f"accuracy {' / '.join(f4(x) for x in stage['val_accuracy_by_epoch'])} by epoch.",
                "",
            ]
    if gpu is not None:
        body.append(
            "On the GPU the two seeds (`seed1` and the recipe's run in [sts_vs_hf](sts_vs_hf.md)) differ by as "
            "much as any variant from the recipe, so no variant was carried back to the CPU."
        )
    machines = "; ".join(f"{label}: {next(iter(r.values()))['machine']}" for label, r in (("CPU", cpu), ("GPU", gpu))
                         if r)  # fmt: skip
    return page(
        "KorSTS: recipe variants screened on dev",
        "variants of `recipes/korsts.yaml`, each trained in full and judged on KorSTS **dev** only (the test split "
        "is never used to choose): a variant replaces the recipe only if it beats it there by more than the "
        "noise between seeds. Each row is one run.",
        [
            "python benchmarks/sts_dev_trials.py NAME...                 # CPU → sts_dev_trials.json",
            "python benchmarks/sts_dev_trials.py --accelerator gpu --backbone .gpu/e5-small-korsts NAME...   # GPU",
        ],
        [n for n, r in (("sts_dev_trials.json", cpu), ("sts_dev_trials.gpu.json", gpu)) if r],
        machines + " (each trial's date in its row)",
        body,
    )


def sts_seed_soup(root: Path) -> str | None:
    r = load(root, "sts_seed_soup.json")
    if r is None:
        return None
    rows = [[name.replace("+", " + "), f4(x)] for name, x in r["dev_pearson"].items()]
    return page(
        "KorSTS: averaging the weights of seed runs (model soup)",
        "one model whose weights are the mean of several runs of `recipes/korsts.yaml` that differ only in their "
        "seed, scored on KorSTS dev, against each run alone.",
        ["python benchmarks/sts_seed_soup.py"],
        ["sts_seed_soup.json"],
        machine_date(r),
        table(["weights of", "KorSTS dev Pearson"], rows),
    )


# ---- N2N ----------------------------------------------------------------------------------------------------------
def ner_vs_hf(root: Path) -> str | None:
    r = load(root, "ner_vs_hf.json")
    if r is None:
        return None
    hf, n2m, hfc = r["hf"], r["n2m"], r.get("hf_constrained")

    def hf_name(s: Json, what: str) -> str:
        head = f", head at `head_lr` {lr(s['head_lr'])}" if s.get("head_lr") is not None else ""
        return f"HF `Trainer` + `AutoModelForTokenClassification`{head}{what}"

    systems = [(hf_name(hf, ", argmax per token"), hf)]
    if hfc is not None:
        systems.append((hf_name(hfc, ", n2m's constrained BIO decoding on its logits"), hfc))
    systems.append(("n2m, `recipes/klue-ner.yaml` (constrained BIO decoding)", n2m))
    rows = [[name, f4(s["f1"]), f4(s["precision"]), f4(s["recall"]), f2(s.get("samples_per_s")),
             f1(s.get("peak_rss_mb"))] for name, s in systems]  # fmt: skip
    q = r["ratios"]
    body = [
        *table(["system", "entity F1", "precision", "recall", "train sentences/s", "peak RSS MB"], rows),
        "",
        f"- n2m against HF: F1 {q['f1_delta']:+.4f}, training sentences/s {times(q['throughput'])}, peak RSS "
        f"{times(q['peak_rss'])}.",
        f"- Constrained BIO decoding, n2m's own model: F1 {f4(n2m['f1_argmax'])} with a plain argmax per "
        f"character, {f4(n2m['f1_constrained'])} with it.",
    ]
    if hf.get("head_lr") is None:
        body.append(
            "- In this run only n2m's new head trained at a higher `head_lr` (1e-3 in `recipes/klue-ner.yaml`); HF "
            f"trained every parameter at {lr(r['lr'])}. Part of the F1 difference is that setting, which HF did not "
            "get here."
        )
    body += [
        "- n2m reads each character from its token plus its offset in it, so an entity may end inside a token. "
        f"{r['epochs']} epoch on 4,050 sentences is little, so both F1s are low in absolute terms.",
    ]
    if (ceiling := r.get("token_ceiling")) is not None:
        body.append(
            f"- What tagging whole tokens costs, apart from training: given each token its first character's gold "
            f"tag (HF's training labels) and read back as HF's predictions are, the test split scores F1 "
            f"{f4(ceiling['f1'])} (precision {f4(ceiling['precision'])}, recall {f4(ceiling['recall'])}). An "
            "entity that begins or ends inside a token (a Korean particle joined to its noun: `▁서울에서`) is out of "
            f"a token tagger's reach, so that design gives up at most {1 - ceiling['f1']:.2f} of F1 here, far less "
            f"than the gap between the two sides ({q['f1_delta']:+.2f}). The rest lies in what each side learns in "
            f"{r['epochs']} epoch; why was not investigated (a guess: n2m learns from every character, HF from each "
            "token's first)."
        )
    return page(
        "KLUE-NER: n2m against HF `Trainer`",
        "**tool against tool on the same model**: KLUE-NER entity F1 (exact character span and type, micro, "
        "seqeval's default mode, both sides scored by the same code) on the test part of "
        "`data/splits/klue-ner.json` (4,050 / 450 / 500 sentences of the bundled dev file), with the same "
        f"vocabulary-trimmed e5-small on both sides, {r['epochs']} epoch, batch {r['batch_size']}, lr {lr(r['lr'])}, "
        f"seed {r['seed']}. Throughput counts training only (n2m's validation is subtracted).",
        ["python benchmarks/ner_vs_hf.py"],
        ["ner_vs_hf.json"],
        f"{machine_date(r)}, {r['mode']} mode, {r['test_sentences']} test sentences",
        body,
    )


def pos_vs_kiwi(root: Path) -> str | None:
    r = load(root, "pos_vs_kiwi.json")
    if r is None:
        return None
    kiwi, n2m = r["kiwi"], r["n2m"]
    rows = [
        [f"Kiwi (`{kiwi['version']}`, its bundled model, no training)", f4(kiwi["accuracy"]),
         f4(kiwi["accuracy_coarse_mm"])],
        [f"n2m, `recipes/ko-pos.yaml` (e5-small, {n2m['epochs_trained']} epochs)", f4(n2m["accuracy"]),
         f4(n2m["accuracy_coarse_mm"])],
    ]  # fmt: skip
    return page(
        "Korean POS: n2m against Kiwi",
        f"Korean part-of-speech per word on KLUE-DP's test split (`data/splits/klue-dp.json`: {r['sentences']} "
        f"sentences, {r['words']} words): word-level exact match of the whole tag sequence (`NNP+JKS`); Kiwi's "
        "morphemes are joined per word into the same form. **Tool against tool**: a trained tagger with its own "
        "model against n2m trained on the bundled sentences.",
        ["python benchmarks/pos_vs_kiwi.py"],
        ["pos_vs_kiwi.json"],
        f"{machine_date(r)}, {r['mode']} mode",
        [
            *table(["system", "word accuracy", "with MMD/MMN/MMA as MM"], rows),
            "",
            "Kiwi, trained on far more Korean, is ahead; n2m predicts one tag sequence per word from the "
            f"{n2m['tag_sequences_known']} it saw in training, and "
            f"{r['gold_words_with_a_sequence_unseen_in_training']} test words carry a sequence never seen there.",
        ],
    )


# ---- N2M ----------------------------------------------------------------------------------------------------------
def seq2seq_vs_hf(root: Path) -> str | None:
    r = load(root, "seq2seq_vs_hf.json")
    if r is None:
        return None
    d = r["details"]
    chrf = chrf_keys(r["n2m"], r)
    names = {"hf": "HF `Seq2SeqTrainer`", "n2m": f"n2m (`{r.get('recipe')}`)"}
    rows = [[names[s], f2(r[s]["bleu"]), *(f2(r[s].get(k)) for k, _ in chrf), f2(r[s]["samples_per_s"]),
             f1(r[s]["gen_tokens_per_s"]), f1(r[s]["peak_rss_mb"]), f1(d[s]["wall_s"])]
            for s in ("hf", "n2m")]  # fmt: skip
    headers = ["system", "BLEU (13a)", *(label for _, label in chrf), "train pairs/s", "generated tokens/s",
               "peak RSS MB", "wall s (train + val)"]  # fmt: skip
    hf, n2m = r["hf"], r["n2m"]
    return page(
        "Korean → English translation: n2m against HF `Seq2SeqTrainer`",
        "**tool against tool on the same model**: `recipes/ko-en-translation.yaml` (the committed split of the "
        "pooled news, JHE and Tatoeba pairs) side by side with HF `Seq2SeqTrainer` on the same warm-started model "
        "(e5-small's first 6 layers as encoder, its first 3 as decoder, cross-attention copied from "
        "self-attention), data, epochs, learning rates and decoding (beam 4, no repeated 3-gram); each side picks "
        "its epoch by validation BLEU and scores the test split once. Training throughput counts optimizer steps "
        "only; generation throughput is over the test split.",
        ["python benchmarks/seq2seq_vs_hf.py"],
        ["seq2seq_vs_hf.json"],
        f"{machine_date(r)}, {r['mode']} mode; {d['epochs']} epochs, {d['train_pairs']} training pairs, "
        f"{d['test_pairs']} test pairs",
        [
            *table(headers, rows),
            "",
            f"- n2m against HF: training pairs/s {ratio(n2m['samples_per_s'], hf['samples_per_s'])} (length-grouped "
            f"batches), generated tokens/s {ratio(n2m['gen_tokens_per_s'], hf['gen_tokens_per_s'])}, peak RSS "
            f"{ratio(n2m['peak_rss_mb'], hf['peak_rss_mb'])}.",
            "- "
            + ", ".join(
                f"{label}: "
                + ("character 6-grams and word 1-2-grams" if label == "chrF++" else "character 6-grams only")
                for _, label in chrf
            )
            + ".",
            f"- Both BLEUs are low: about {d['train_pairs']} training pairs, mostly news, are little for a "
            "6 + 3-layer model trained for minutes on a CPU.",
        ],
    )


def chatbot_samples(root: Path) -> str | None:
    samples = root / RESULTS / "chatbot_samples.md"
    r = load(root, "results/recipes/ko-chatbot.json")
    if r is None or not samples.is_file():
        return None
    rows = [line for line in samples.read_text(encoding="utf-8").splitlines() if line.startswith("|")]
    test = r["test"]
    scores = ", ".join(f"{label} {f2(test[k])}" for k, label in chrf_keys(test, prefix="test/"))
    return page(
        "Korean chatbot: five seeded test answers",
        "what `recipes/ko-chatbot.yaml` (songys/Chatbot_data, an encoder-decoder warm-started from e5-small) "
        "answers: five test questions picked by `torch.randperm(seed=0)`, not by hand, decoded as in the recipe "
        "(beam 4). The checkpoint is chosen by validation loss.",
        [
            "n2m fit --config recipes/ko-chatbot.yaml                 # scripts/run_recipes.sh ko-chatbot",
            "python benchmarks/chatbot_samples.py",
        ],
        ["results/recipes/ko-chatbot.json", "chatbot_samples.md"],
        f"{machine_date(r)}, {r['epochs']} epochs, {r['fit_wall_s'] / 60:.0f} min",
        [
            f"Test split ({r['test_file']}): BLEU {f2(test['test/bleu'])} (SacreBLEU `char` tokenization: Korean "
            f"spacing varies by writer), {scores}.",
            "",
            *rows,
            "",
            "The answers are fluent and on topic, and sometimes odd: the dataset is small for open dialogue.",
        ],
    )


def seq2seq_warm_start_probe(root: Path) -> str | None:
    r = load(root, "seq2seq_warm_start_probe.json")
    if r is None:
        return None
    variants = r["variants"]
    chrf = chrf_keys(variants[0], r, prefix="memorization_")
    rows = [[v["cross_attention_init"], lr(v["lr"]), lr(v["head_lr"]), f2(v["memorization_bleu"]),
             *(f2(v.get(k)) for k, _ in chrf), f"{v['distinct_outputs']} / {r['pairs']}",
             f"{v['train_loss_by_epoch'][-1]:.3f}"] for v in variants]  # fmt: skip
    return page(
        "Warm-started decoder: does it read its source?",
        f"a memorization probe that chose the N2M recipes' warm-start settings: {r['pairs']} training pairs of "
        f"`{r['recipe']}`, {r['epochs']} epochs, then greedy generation on those same sources. A decoder that uses "
        "its source reproduces many different targets; one that does not writes the same sentence for every input.",
        ["python benchmarks/seq2seq_warm_start_probe.py"],
        ["seq2seq_warm_start_probe.json"],
        machine_date(r),
        table(
            [
                "cross-attention init",
                "lr",
                "head_lr",
                "BLEU",
                *(label for _, label in chrf),
                "distinct outputs",
                "final train loss",
            ],
            rows,
        ),
    )


# ---- retrieval ----------------------------------------------------------------------------------------------------
def retrieval_vs_st(root: Path) -> str | None:
    stems = [s for s in ("retrieval_vs_st", "retrieval_vs_st.quick") if load(root, f"{s}.json") is not None]
    if not stems:
        return None
    body: list[str] = []
    files: list[str] = []
    for stem in stems:
        r, d = load(root, f"{stem}.json"), load(root, f"{stem}.details.json") or {}
        assert r is not None
        files += [f"{stem}.json"] + ([f"{stem}.details.json"] if d else [])
        st, n2m, untrained = r["st"], r["n2m"], r["untrained"]
        names = (("e5-small, untrained", untrained), ("sentence-transformers", st), ("n2m", n2m))
        quality = [[name, f4(s["mrr10"]), f4(s["recall1"]), f4(s["recall10"])] for name, s in names]
        train = [[name, f2(s["train_pairs_per_s"]), f1(s["peak_rss_mb"])] for name, s in names[1:]]
        encoders = [
            ("`SentenceTransformer.encode`", st, ""),
            ("`SentenceTransformer.encode`, model in bf16", st, "_bf16"),
            ("`SequencePredictor.encode`, torch", n2m, ""),
            ('`SequencePredictor.encode`, torch, `precision="bf16"`', n2m, "_bf16"),
            ("`SequencePredictor.encode`, ONNX fp32", n2m, "_onnx"),
            ("`SequencePredictor.encode`, ONNX int8", n2m, "_int8"),
        ]
        encode = [[label, f1(side.get(f"encode_per_s{k}")), f4(side.get(f"{k[1:]}_min_cosine")) if k else ""]
                  for label, side, k in encoders if side.get(f"encode_per_s{k}") is not None]  # fmt: skip
        s = d.get("settings", {})
        setup = (f"{d['train_pairs']} training pairs, {s.get('epochs')} epoch(s), batch {s.get('batch_size')}, lr "
                 f"{s.get('lr')}, " if d else "")  # fmt: skip
        earlier = stem.endswith(".earlier-run")
        body += [
            f"## {r['mode']} mode{', the run before' if earlier else ''} ({machine_date(r)})",
            "",
            *([EARLIER_CAPTION_RUN, ""] if earlier else []),
            f"{setup}{r['queries']} held-out test questions ranked against all {r['corpus_size']} answers by exact "
            "cosine."
            + (
                " A quick run is a sample for CI and a smoke test, not a measurement of quality."
                if r["mode"] == "quick"
                else ""
            ),
            "",
            *table(["model", "MRR@10", "Recall@1", "Recall@10"], quality),
            "",
            *table(["training", "train pairs/s", "peak RSS MB"], train),
            "",
            *table(["encoder", "sentences/s", "lowest cosine to fp32"], encode),
            "",
        ]
    return page(
        "Korean FAQ retrieval: n2m against sentence-transformers",
        "**the training loop like for like**: `recipes/ko-faq-retrieval.yaml` against sentence-transformers' "
        "`SentenceTransformerTrainer` with `MultipleNegativesRankingLoss` on the same backbone, pairs, loss "
        "(in-batch negatives), epochs, batch, learning rate, warm-up, weight decay, clipping, prefixes and seed; "
        "both trained models and the untrained backbone scored by one function (MRR@10, Recall@1, Recall@10). "
        "Encoding speed: sentences/s over the answer corpus, one process.",
        [
            "python benchmarks/retrieval_vs_st.py --quick      # a sample, 1 epoch → retrieval_vs_st.quick.json",
            "python benchmarks/retrieval_vs_st.py              # the recipe as it is → retrieval_vs_st.json",
        ],
        files,
        "; ".join(f"{stem}: {machine_date(load(root, f'{stem}.json') or {})}" for stem in stems),
        body,
    )


# ---- exports, serving, memory and code ------------------------------------------------------------------------------
def vocab_generalization(root: Path) -> str | None:
    r = load(root, "vocab_generalization.json")
    if r is None:
        return None
    tok = [[corpus, t["texts"], f"{t['backbone']['unk_rate']:.2%}", f"{t['trimmed']['unk_rate']:.2%}",
            f"{t['trimmed']['changed_texts']:.1%}", f"{t['export']['unk_rate']:.2%}",
            f"{t['export']['changed_texts']:.1%}"] for corpus, t in r["tokenizers"].items()]  # fmt: skip
    parts = {"zero_shot": "untrained,", "fine_tuned": "fine-tuned, exported with"}
    score = [[f"{parts[part]} {name}", f4(s["korsts_test_pearson"]), f4(s["question_pair_auc"])]
             for part in parts for name, s in r[part].items()]  # fmt: skip
    return page(
        "Text the training file never had: vocabulary trimming and the export",
        f"`trim_vocab` trains e5-small on the {r['trimmed_pieces']} pieces KorSTS train and dev use. On Korean text "
        "from other sources, how often does that cut tokenizer give `<unk>` or segment a text differently from "
        "e5-small, and what does `n2m export` (which writes the trained rows back into the full table by "
        "default) give back?",
        ["python benchmarks/vocab_generalization.py"],
        ["vocab_generalization.json"],
        f"{machine_date(r)}; fine-tuned: `n2m fit --config {r['recipe']}`",
        [
            "## Tokenization of other corpora",
            "",
            *table(
                [
                    "corpus",
                    "texts",
                    "e5-small `<unk>`",
                    "trimmed `<unk>`",
                    "trimmed: texts segmented differently",
                    "export `<unk>`",
                    "export: texts segmented differently",
                ],
                tok,
            ),
            "",
            "## Scores",
            "",
            "KorSTS test Pearson and, with the score as a duplicate-question score, ROC AUC on "
            "`korean_question_pair` test. Zero-shot: the untouched e5-small read through each tokenizer (same "
            "weights); fine-tuned: the quick start's model exported both ways.",
            "",
            *table(["model", "KorSTS test Pearson", "question-pair AUC"], score),
        ],
    )


def int8_error(root: Path) -> str | None:
    r = load(root, "int8_error.json")
    if r is None:
        return None
    fp32 = r["settings"]["fp32"]
    rows = [[name, f"`{json.dumps(s['settings'])}`", f4(s["mean_abs"]), f4(s["mean_signed"]), f4(s["p99_abs"]),
             f4(s["max_abs"]), f"{s['min_embedding_cosine']:.5f}", f"{s['pearson_vs_fp32']:.5f}", f1(s["size_mb"]),
             times(s["speed_ratio"])] for name, s in r["settings"].items() if name != "fp32"]  # fmt: skip
    d = r["settings"]["default"]
    return page(
        "int8 against fp32, item by item",
        "what dynamic int8 quantization of the ONNX graph does to a single score, which Pearson hides: quantization "
        "adds noise to each text's vector, noise lowers cosine similarity, so int8 scores sit below fp32's by "
        "different amounts per pair. Each setting is scored pair by pair against the fp32 graph; the one marked "
        "`default` is what `n2m export --quantize int8` uses.",
        ["python benchmarks/int8_error.py --train-steps 40     # or --model out/korsts, an exported bi-encoder"],
        ["int8_error.json"],
        f"{machine_date(r)}, {r['threads']} threads; model: {r['model']}; pairs: {r['pairs']}; {r['scale']}",
        [
            f"fp32: {f1(fp32['size_mb'])} MB, {f1(fp32['pairs_per_s'])} pairs/s.",
            "",
            *table(
                [
                    "setting",
                    "quantize_dynamic arguments",
                    "mean abs. error",
                    "mean signed error",
                    "99th pct",
                    "max",
                    "lowest embedding cosine",
                    "Pearson vs fp32",
                    "MB",
                    "speed vs fp32",
                ],
                rows,
            ),
            "",
            f"With the default, expect a pair's int8 score up to about {f1(d['max_abs'])} below fp32's "
            f"({f1(d['mean_abs'])} on average, on the 0–5 scale): set a threshold on int8 scores themselves, or "
            "serve fp32 (`--backend onnx` with `model.onnx`, or PyTorch) where single scores near a threshold "
            "matter. `n2m export --quantize int8` measures the same gap on built-in sample pairs and writes it "
            "into the card (`provenance.int8`).",
        ],
    )


SERVE_NAMES = {"hf_pipeline": "HF pipeline", "n2m_torch": "n2m, PyTorch", "n2m_onnx": "n2m, ONNX fp32",
               "n2m_onnx_int8": "n2m, ONNX int8"}  # fmt: skip


def serve_load(root: Path) -> str | None:
    r = load(root, "serve_load.json")
    if r is None:
        return None
    rows = [[SERVE_NAMES.get(system, system), level, f1(x["rps"]), f1(x["p50_ms"]), f1(x["p99_ms"]), x["errors"],
             f"{x['peak_rss_mb']:.0f}"] for system, levels in r["systems"].items()
            for level, x in levels.items()]  # fmt: skip
    s, served = r["summary"], r["test_pearson_as_served"]
    best = SERVE_NAMES.get(s["best_n2m"], s["best_n2m"]).removeprefix("n2m, ")
    return page(
        "Serving under load: `n2m serve` against an HF pipeline",
        "**tool against tool, the same model**: the KorSTS bi-encoder served by `n2m serve` (PyTorch, ONNX Runtime "
        'fp32 and int8 backends, micro-batched) and by the ordinary tool, an HF `pipeline("feature-extraction")` '
        f"behind the same minimal FastAPI endpoint ({r['settings']['hf_pipeline']}). "
        f"{r['settings']['requests_per_level']} requests (every KorSTS test pair once) per concurrency level.",
        [
            "n2m export runs/korsts/checkpoints/best-*.ckpt runs/korsts-export --onnx --quantize int8",
            "python benchmarks/serve_load.py --model runs/korsts-export",
        ],
        ["serve_load.json"],
        f"{machine_date(r)}; model: {r['model']}; client: {r['settings']['client']}",
        [
            *table(["system", "concurrency", "requests/s", "p50 ms", "p99 ms", "failed", "peak RSS MB"], rows),
            "",
            f"- At concurrency 32 n2m's best backend ({best}) answers "
            f"{times(s['rps_ratio_at_32'])} the pipeline's requests per second; a lone request takes "
            f"{f1(s['p50_ms_at_1']['n2m'])} ms at the median against the pipeline's "
            f"{f1(s['p50_ms_at_1']['hf_pipeline'])} ms.",
            "- What was served is the same model. KorSTS test Pearson as served: "
            + "; ".join(f"{SERVE_NAMES.get(k, k)} {f4(v)}" for k, v in served.items())
            + "; largest score difference from n2m's PyTorch backend: "
            + "; ".join(f"{SERVE_NAMES.get(k, k)} {v:g}" for k, v in r["max_score_difference_vs_n2m_torch"].items())
            + " (int8: see [int8_error](int8_error.md)).",
        ],
    )


GENERATION_SETTINGS = {
    "dynamic": "glibc's default (dynamic)",
    "fixed": "fixed at 4 MB for the whole process (`n2m fit` before this measurement)",
    "lifted": "fixed at 4 MB, lifted while generating (`n2m fit` now)",
}


def mmap_generation(r: Json) -> list[str]:
    base = r["settings"]["dynamic"]
    rows = [[GENERATION_SETTINGS[k], f1(s["tokens_per_s"]), ratio(s["tokens_per_s"], base["tokens_per_s"]),
             f"{s['page_faults']:,}", ratio(s["page_faults"], base["page_faults"]), f2(s["cider"])]
            for k, s in r["settings"].items()]  # fmt: skip
    return [f"## {link('mmap_threshold.generation.json')}: generation, {machine_date(r)}", "",
            f"The chosen checkpoint of `{r['run_dir']}` (`recipes/ko-caption.yaml`) decodes the test split with "
            f"beam search; each setting ran {r['repeats']} times in turn, the median run shown (tokens/s of every "
            "run in the file).", "",
            *table(["mmap threshold", "tokens/s", "× glibc's", "page faults", "× glibc's", "test CIDEr-D"], rows), "",
            "The key/value cache is reallocated a little larger at every token: under the fixed threshold each "
            "copy is a fresh mmap, page-faulted in. The output is the same in every setting (same CIDEr-D).",
            ""]  # fmt: skip


def mmap_training(name: str, r: Json) -> list[str]:
    base = r["settings"]["dynamic"]
    rows = [["glibc's default (dynamic)" if k == "dynamic" else f"{k} MB", f1(s["peak_rss_mb"]),
             ratio(s["peak_rss_mb"], base["peak_rss_mb"]), f1(s["train_s"]), ratio(s["train_s"], base["train_s"])]
            for k, s in r["settings"].items()]  # fmt: skip
    runs = f", the median of {r['repeats']} runs of each setting taken in turn" if r.get("repeats", 1) > 1 else ""
    body = [f"## {link(name)}: `{r.get('recipe', 'recipes/korsts.yaml')}`, {r['batches']} batches{runs}, "
            f"{machine_date(r)}", "", *table(["mmap threshold", "peak RSS MB", "× glibc's", "train s", "× glibc's"],
                                              rows), ""]  # fmt: skip
    default = r["settings"].get("4")  # n2m's default, which a recipe's own threshold replaces
    others = [(k, x) for k, x in r["settings"].items() if k != "4"]
    if default and others:
        body += ["Against n2m's 4 MB default: " + "; ".join(
            f"{'glibc' if k == 'dynamic' else k + ' MB'} peak RSS {ratio(x['peak_rss_mb'], default['peak_rss_mb'])}, "
            f"time {ratio(x['train_s'], default['train_s'])}" for k, x in others) + ".", ""]  # fmt: skip
    return body


MMAP_TRAINING_FILES = ("mmap_threshold.json", "mmap_threshold.earlier-run.json", "mmap_threshold.ko-caption.json")


def mmap_threshold(root: Path) -> str | None:
    runs = [(name, r) for name in MMAP_TRAINING_FILES if (r := load(root, name)) is not None]
    if not runs:
        return None
    body = [line for name, r in runs for line in mmap_training(name, r)]
    body.append(
        "Lower thresholds keep peak RSS lower and cost page faults, so time; on this shared 2-core machine the "
        "same setting's time moves by several percent from one run to the next (compare the two KorSTS files), so "
        "only differences larger than that mean anything."
    )
    if generation := load(root, "mmap_threshold.generation.json"):
        body = [*body, "", *mmap_generation(generation)]
        runs.append(("mmap_threshold.generation.json", generation))
    return page(
        "`mmap_threshold_mb`: what glibc's mmap threshold does to training memory and generation speed",
        "A recipe trained for a fixed number of batches at several `mmap_threshold_mb` settings (n2m's default is "
        "4, the KorSTS recipe sets 2; tensors of at least that size are mmapped and go back to the OS when freed "
        "instead of fragmenting the heap, see `n2m.allocator`), each in a fresh process: peak RSS and training "
        "time. Then what the same setting does to generation (tokens/s decoding a test split), and what lifting it "
        "while a model generates gives back.",
        ["python benchmarks/mmap_threshold.py --batches 40 --thresholds-mb 1.5 2 4",
         "python benchmarks/mmap_threshold.py --recipe recipes/ko-caption.yaml --batches 120 --thresholds-mb 4 16 "
         "--repeats 3",
         "python benchmarks/mmap_threshold.py --generation runs/ko-caption --repeats 3   # a finished ko-caption run"],
        [name for name, _ in runs],
        "; ".join(f"{name}: {machine_date(r)}" for name, r in runs),
        body,
    )  # fmt: skip


def attention_dropout_memory(root: Path) -> str | None:
    r = load(root, "attention_dropout_memory.json")
    if r is None:
        return None
    rows = [[p, s["saved_mb"], f2(s["step_s_median"])] for p, s in r["settings"].items()]
    return page(
        "Attention dropout: what it costs a training step",
        f"one forward and backward pass of e5-small over one batch ({r['batch'][0]} sentences of {r['batch'][1]} "
        "tokens) with `attention_probs_dropout_prob` 0.1 (e5's own) and 0: the bytes autograd saves for backward "
        "(counted by `saved_tensors_hooks`; a tensor saved twice counts twice, so they are upper bounds) and the "
        "step's median time.",
        ["python benchmarks/attention_dropout_memory.py"],
        ["attention_dropout_memory.json"],
        machine_date(r),
        table(["attention dropout", "saved for backward MB", "step s (median)"], rows),
    )


def length_runs(root: Path) -> str | None:
    r = load(root, "length_runs.json")
    if r is None:
        return None
    counts = [k for k in next(iter(r["cases"].values()))["ms_per_step"] if k != "rule"]
    rows = [[name, f"{c['real_share']:.0%}", *(f1(c["ms_per_step"].get(k)) for k in [*counts, "rule"])]
            for name, c in r["cases"].items()]  # fmt: skip
    rule = r["rule"]
    by_rule = [(name, c) for name, c in r["cases"].items() if "runs_by_overhead" in c]
    overheads = list(by_rule[0][1]["runs_by_overhead"]) if by_rule else []
    return page(
        "Length-sorted runs: how a CPU training step cuts a batch",
        "the median milliseconds of a whole training step (forward, backward, fused AdamW) on the first "
        f"{r['steps']} batches of each recipe, with the batch cut into a fixed number of length-sorted runs, each "
        "padded only to its own longest row (`n2m.core.batching.length_runs`), and with N21's rule (at most "
        f"{rule['CPU_RUNS']} runs, as many as cost least when a run past the first costs {rule['RUN_OVERHEAD']} "
        "padded tokens per real token). N21 cuts the texts its encoder reads; the captioning recipe's packed "
        f"decoder cuts attention's rows (its fixed count: {r['packed_cpu_runs']}). Real share: the batches' real "
        "tokens over those of one padded run. Settings take turns, so the shared machine's drift falls on all. The "
        "file's ko-caption row (2026-12-05) was timed with the packed decoder's 16-bit dropout masks, since removed "
        "(see [caption_vs_hf](caption_vs_hf.md)); its N21 rows are the current code's.",
        ["python benchmarks/length_runs.py"],
        ["length_runs.json"],
        machine_date(r),
        [
            *table(
                ["case", "real share", *(f"{k} run{'s' if k != '1' else ''}, ms" for k in counts), "N21's rule, ms"],
                rows,
            ),
            "",
            "How many runs the rule cuts these batches into (the mean over batches), by its per-run overhead:",
            "",
            *table(
                ["case", *(f"overhead {c}" for c in overheads)],
                [[name, *(c["runs_by_overhead"][o] for o in overheads)] for name, c in by_rule],
            ),
        ],
    )


def import_time(root: Path) -> str | None:
    r = load(root, "import_time.json")
    if r is None:
        return None
    rows = [[label, f4(e["median_s"]), f4(e["min_s"]), e["runs"], "yes" if e["lightning_loaded"] else "no",
             f4(e["torch_transformers_floor_median_s"])] for label, e in r["labels"].items()]  # fmt: skip
    q = r.get("ratio")
    return page(
        "Cold import time of the inference entry point",
        "`from n2m import Predictor` in a fresh interpreter (start-up not counted), and whether it pulled in "
        "Lightning or torchmetrics; beside it, `import torch, transformers` alone, the floor any inference path "
        "pays.",
        [
            'python benchmarks/import_time.py --label "before (2681e40)" --src <worktree of 2681e40>/src',
            "python benchmarks/import_time.py --label after",
        ],
        ["import_time.json"],
        machine_date(r),
        [
            *table(
                ["label", "median s", "min s", "runs", "Lightning loaded", "torch + transformers alone, median s"], rows
            ),
            *(["", f"{q['after']} / {q['before']}: median {times(q['median'])}, min {times(q['min'])}."] if q else []),
        ],
    )


def code_size(root: Path) -> str | None:
    r = load(root, "code_size.json")
    if r is None:
        return None
    rows = [[label, e["lines"], e["code_lines"], e["duplicates"]["pairs"], e["duplicates"]["summary"]]
            for label, e in r["labels"].items()]  # fmt: skip
    return page(
        "Code size",
        "lines of `src/n2m` (all, and code only: no blank lines, comments or docstrings) and how many pairs of "
        "places share six or more lines.",
        [
            'python benchmarks/code_size.py --label "before (2681e40)" --src /tmp/n2m-before/src',
            "python benchmarks/code_size.py --label after",
        ],
        ["code_size.json"],
        "each label is a state of the code, not a machine",
        table(["label", "lines", "code lines", "duplicate pairs", "duplicates"], rows),
    )


def scoring_speed(root: Path) -> str | None:
    r = load(root, "scoring_speed.json")
    if r is None:
        return None
    t, n = r["scores"]["torchmetrics"], r["scores"]["n2m"]
    rows = [["torchmetrics, updated per batch", r["seconds"]["torchmetrics"], f4(t["bleu"]), f4(t["chrf"])],
            ["n2m (`GenerationMetrics`: SacreBLEU at the split's end)", r["seconds"]["n2m"], f4(n["bleu"]),
             f4(n["chrf"])]]  # fmt: skip
    return page(
        "Scoring a generated split: torchmetrics against SacreBLEU",
        f"seconds to score {r['predictions']} captions against {r['references']} references (`{r['file']}`, each "
        "image's last caption standing for a prediction, against its other captions), BLEU (character) and chrF, "
        f"in batches of {r['batch']}; "
        "best of 3 alternating rounds in one process.",
        ["python benchmarks/scoring_speed.py"],
        ["scoring_speed.json"],
        machine_date(r),
        [*table(["scorer", "seconds", "BLEU", "chrF"], rows), "", f"torchmetrics / n2m: ×{r['ratio']} the time."],
    )


def quick_parity(root: Path) -> str | None:
    r = load(root, "quick_parity.json")
    if r is None:
        return None
    labels = list(r["labels"])
    dated = ", ".join(f"`{label}` ({r['labels'][label]['date']})" for label in labels)
    same = "yes" if r.get("identical") else "no"
    body = [f"Labels: {dated}. Identical figures under every label: **{same}**."]
    return page(
        "Same seed, same figures: the quick benchmarks before and after a change",
        "the quick modes of the three side-by-side benchmarks (KorSTS, KLUE-NER, translation) on two checkouts of "
        "n2m: each side's quality figures, n2m's test and validation losses and a digest of its test generations, "
        "which a change of code that should not change the arithmetic must not move. Speed and memory are left "
        "out: they are noise at this size.",
        [
            'python benchmarks/quick_parity.py --label "before (2681e40)" --repo /tmp/n2m-before',
            "python benchmarks/quick_parity.py --label after",
        ],
        ["quick_parity.json"],
        r["machine"],
        body,
    )


# ---- recipes and the suite ------------------------------------------------------------------------------------
# a results file's chrF keys are named by `chrf_keys` (files from before chrF and chrF++ had names of their own)
RECIPE_METRICS = {k: v for k, v in METRIC_NAMES.items() if k not in ("test/chrf", "test/chrf++")}


def recipe_metrics(test: Json, marker: Json | None = None) -> str:
    names = dict(RECIPE_METRICS)
    for key, label in chrf_keys(test, marker, prefix="test/"):
        names[key] = label
    order = [k for k in (*RECIPE_METRICS, "test/chrf", "test/chrf++") if k in test and k in names]
    return ", ".join(f"{names[k]} {f2(test[k]) if k in PERCENT else f4(test[k])}" for k in order)


def recipes(root: Path) -> str | None:
    paths = sorted((root / "results/recipes").glob("*.json"))
    if not paths:
        return None
    rows = []
    for path in paths:
        r = json.loads(path.read_text(encoding="utf-8"))
        best = Path(r["best_checkpoint"]).name.removesuffix(".ckpt") if r.get("best_checkpoint") else "last"
        rows.append([f"`{r['command']}`", r.get("test_file", ""), recipe_metrics(r["test"], r), best,
                     f"{r['fit_wall_s'] / 60:.0f} min", r["machine"], r["date"]])  # fmt: skip
    return page(
        "Every recipe, trained in full",
        "each recipe trained as `n2m fit --config recipes/<recipe>.yaml` does: the checkpoint picked on validation, "
        "the test split scored once, at the end. Fit times are wall-clock on a 2-core machine that other jobs "
        "shared at the time, so they are upper bounds. The translation row is the n2m side of "
        "[seq2seq_vs_hf](seq2seq_vs_hf.md).",
        ["scripts/run_recipes.sh <recipe>          # n2m fit, then keeps the report in results/recipes/<recipe>.json"],
        [f"results/recipes/{p.name}" for p in paths],
        "in each row",
        table(
            ["recipe", "test split", "test metrics", "checkpoint chosen on validation", "fit time", "machine", "date"],
            rows,
        ),
    )


def suite(root: Path) -> str | None:
    r = load(root, "suite.json")
    if r is None:
        return None
    rows = [[f"`{name}`", metric_name(t["metric"]), shown(t["metric"], t["value"]),
             f"{t['fit_s'] / 60:.1f} min" if t.get("fit_s") else "—", t.get("date") or r["date"], suite_source(t)]
            for name, t in r["tasks"].items()]  # fmt: skip
    dates = sorted({t.get("date") or r["date"] for t in r["tasks"].values()})
    sittings = (f" The suite ran in {len(dates)} sittings ({', '.join(dates)}): a row's date says which; rows "
                "marked *report* were run by this suite in an earlier sitting and read back from the report "
                "`scripts/collect_result.py` kept of their run folder (`scripts/suite_from_reports.py`), the "
                "recipes unchanged since." if len(dates) > 1 else "")  # fmt: skip
    return page(
        "The Korean suite: one leaderboard",
        "every recipe of the suite trained and tested as `n2m fit` does, each in a process of its own, scored by "
        "the metric its task is known by. Fit times are wall clock on a 2-core machine that other jobs sometimes "
        "shared, so they are upper bounds." + sittings,
        ["n2m bench                      # the default suite, recipes/suites/korean.yaml; then copy suite.json here"],
        ["suite.json"],
        machine_date(r),
        table(["recipe", "metric", "test value", "fit time", "date", "row from"], rows),
    )


def suite_source(t: Json) -> str:
    if t.get("source"):
        return f"report ([{Path(t['source']).name}](../../{t['source']}))"
    return "this run" if t.get("status") == "trained" else t.get("status") or "?"


def caption_dev_trials(root: Path) -> str | None:
    r = load(root, "caption_dev_trials.json")
    if r is None:
        return None
    rows = [[f"`{trial}`", " ".join(f"`{o}`" for o in t["overrides"]) or "(the recipe)",
             f"{t['rows']:,} × {t['epochs']}", " / ".join(f2(x) for x in t["val_by_epoch"]["cider"]),
             f2(t["best"].get("cider")), f2(t["best"].get("object_accuracy")), f2(t["best"].get("count_accuracy")),
             f2(t["train_captions_per_s"]), f1(t["peak_rss_mb"]), t["date"]]
            for trial, t in r.items()]  # fmt: skip
    headers = ["trial", "overrides", "captions × epochs", "val CIDEr-D by epoch", "best", "objects right",
               "counts right", "train captions/s", "peak RSS MB", "date"]  # fmt: skip
    return page(
        "Korean captioning: image encoders screened on validation",
        "image encoders for `recipes/ko-caption.yaml`, each trained from scratch on one budget and judged on the "
        '**validation** images only (greedy decoding; neither test split is read). "objects right" and "counts '
        'right": the percentage of validation captions that name exactly the objects, and their counts, of the '
        "image, at the epoch of best CIDEr-D (CIDEr-D ×100, as COCO reports it). Each row is one run.",
        [
            "python benchmarks/caption_dev_trials.py vit cnn_no_smoothing cnn_random_order cnn_pool_4 \\\n"
            "    --rows 9981 --epochs 4   # CPU, ~15 min each",
            "python benchmarks/caption_dev_trials.py swin --rows 2000 --epochs 2",
        ],
        ["caption_dev_trials.json"],
        f"{next(iter(r.values()))['machine']} (each trial's date in its row)",
        table(headers, rows),
    )


def classify_dev_trials(root: Path) -> str | None:
    r = load(root, "classify_dev_trials.json")
    if r is None:
        return None
    body: list[str] = []
    for entry in r.values():
        monitor = entry["monitor"]
        rows = [[f"`{trial}`", " ".join(f"`{o}`" for o in t["overrides"]) or "(the recipe)",
                 " / ".join(f4(x) for x in t["val_by_epoch"][monitor]), str(t["best_epoch"]), f4(t["best"][monitor]),
                 f4(t["best"]["accuracy"]), f1(t["train_s"]), f1(t["peak_rss_mb"]), t["date"]]
                for trial, t in entry["trials"].items()]  # fmt: skip
        name = metric_name(f"test/{monitor}")
        body += [f"## `{entry['recipe']}`, monitored by {name}", "",
                 *table(["trial", "overrides", f"val {name} by epoch", "best epoch", f"best val {name}",
                         "val accuracy there", "train s", "peak RSS MB", "date"], rows), ""]  # fmt: skip
    machines = sorted({t["machine"] for e in r.values() for t in e["trials"].values()})
    return page(
        "Korean classification: n2m's design choices screened on validation",
        "what a classification recipe's score owes to n2m's design where `classify_vs_hf` found HF `Trainer` "
        "ahead on the same model: mean pooling against the first token HF's head reads, and length-grouped "
        "batches against a random order. Each trial is the recipe with its overrides, one run, judged on the "
        "**validation** split only (the test split is not read).",
        ["python benchmarks/classify_dev_trials.py --recipe recipes/ko-hate-speech.yaml   # ~7 min a trial"],
        ["classify_dev_trials.json"],
        f"{'; '.join(machines)} (each trial's date in its row)",
        body,
    )


CAPTION_HEADERS = ["system", "BLEU (char)", "chrF", "CIDEr-D", "CIDEr-D, unseen combinations", "train images/s",
                   "images/s in steps", "generated tokens/s", "peak RSS MB"]  # fmt: skip


FOREACH_CAPTION_RUN = (
    " In this run HF's AdamW was PyTorch's default (foreach), where n2m's is fused, and n2m's timed test batches "
    "also scored BLEU and chrF with torchmetrics (×19 SacreBLEU's time: [scoring_speed](scoring_speed.md)), which "
    "is most of its generated tokens/s gap."
)
EARLIER_CAPTION_RUN = (
    "The code before attention's length-sorted runs and the packed embeddings (commit 9f26fe7), the recipe's seed. "
    "HF's side is the same code; its scores are the same to the digit."
)
DROPOUT16_CAPTION_RUN = (
    "**Not the current code.** Commit f35f4c8, over seeds 0, 1, 2: attention over length-sorted runs of the batch's "
    "rows and embeddings of the real tokens only (both kept), and dropout masks drawn 16 bits at a time, four from "
    "each 64-bit draw (since removed). With those masks n2m trained faster but scored lower in every seed, and "
    "two of the tiny captioning tests stopped learning their two pictures; with PyTorch's own dropout, or one draw "
    "per element, they learn again. The cause was not found, so the masks are gone and this run stands for what "
    "they did; the current code's run is the first section."
)
OLDER_CAPTION_RUN = (
    " This run predates the training loop's timing (steps alone were timed) and timed n2m's generation with the "
    "split's scoring; n2m trained on length-grouped batches (the recipe before `group_by_length: false`)."
)


def caption_speeds(s: Json) -> tuple[float | None, float]:
    """(images/s of the training loop, images/s of optimizer steps). A file written before the loop was timed
    holds the steps' figure under `train_images_per_s`."""
    if "step_images_per_s" in s:
        return s["train_images_per_s"], s["step_images_per_s"]
    return None, s["train_images_per_s"]


def caption_measured(d: Json) -> list[str]:
    """Which side `--resume` kept from an earlier run (its figures, speed included, are that run's)."""
    kept = [name for side, name in (("n2m", "n2m"), ("hf", "HF")) if d[side].get("kept")]
    if not kept:
        return []
    return [f"{' and '.join(kept)}: kept by `--resume` from earlier runs. Each side's figures, speed included, are "
            "those of its own run, and the two may have run at different times (HF's seed-0 scores are "
            "deterministic: the same to the digit in every run).", ""]  # fmt: skip


CAPTION_DESIGN_ROW = (
    "**Two n2m rows.** `n2m, HF's settings` trains exactly what HF's side trains: the recipe without its moving "
    "average of the weights. `n2m, the recipe` is `recipes/ko-caption.yaml` as committed: it validates, chooses, "
    "tests and exports an exponential moving average of the weights over about the last 200 of 1,872 steps "
    "(`n2m.core.averaging.WeightEMA`, decay 0.995, bias-corrected). `Seq2SeqTrainer` has no such setting, so that "
    "row is n2m's design against HF's tool, not a like-for-like loop."
)


def caption_choice(r: Json) -> str:
    """How the recipe's weight average was chosen: the two n2m rows' best validation CIDEr-D, mean over seeds."""
    from statistics import mean

    def vals(side: str) -> list[float]:
        d = r["details"][side]
        return [run["best_val"]["val/cider"] for run in (d["seeds"].values() if "seeds" in d else [d])]

    ema = vals("n2m_ema")
    plain, averaged, spread = mean(vals("n2m")), mean(ema), max(ema) - min(ema)
    verdict = "so the recipe takes it" if averaged > plain else "so the recipe should not take it"
    return (f"Chosen on validation: the best validation CIDEr-D with the weight average is {f2(averaged)} against "
            f"{f2(plain)} without it (mean over the seeds), {verdict}; test does not choose. The margin is "
            f"{'smaller' if abs(averaged - plain) < spread else 'larger'} than the spread between seeds "
            f"({f2(spread)}).")  # fmt: skip


def caption_seeds(r: Json) -> list[str]:
    """A run over several seeds: each seed's test and validation CIDEr-D and training speed, side by side (and
    the design row's, where the run has one)."""
    if not r.get("seeds"):
        return []
    n2m, hf, d = r["n2m"]["seeds"], r["hf"]["seeds"], r["details"]
    ema = r["n2m_ema"]["seeds"] if "n2m_ema" in r else None
    rows = []
    for seed in map(str, r["seeds"]):
        n2m_val = d["n2m"]["seeds"][seed]["best_val"]["val/cider"]
        hf_val = d["hf"]["seeds"][seed]["best_val"]["eval_cider"]
        delta = f"{n2m[seed]['cider'] - hf[seed]['cider']:+.2f}"
        design = (
            [] if ema is None else [f2(ema[seed]["cider"]), f2(d["n2m_ema"]["seeds"][seed]["best_val"]["val/cider"])]
        )
        rows.append([seed, f2(n2m[seed]["cider"]), f2(hf[seed]["cider"]), delta,
                     f2(n2m[seed]["novel_combo_cider"]), f2(hf[seed]["novel_combo_cider"]), f2(n2m_val), f2(hf_val),
                     ratio(n2m[seed]["train_images_per_s"], hf[seed]["train_images_per_s"]), *design])  # fmt: skip
    plain = "n2m (HF's settings)" if ema is not None else "n2m"
    headers = ["seed", f"{plain} CIDEr-D", "HF CIDEr-D", f"{plain} − HF", f"{plain}, unseen combinations",
               "HF, unseen combinations", f"{plain} validation", "HF validation",
               f"{plain} / HF train images/s"]  # fmt: skip
    if ema is not None:
        headers += ["the recipe (weight average) CIDEr-D", "its validation"]
    return [f"The table above is the mean over seeds {', '.join(map(str, r['seeds']))} (peak RSS: the highest). "
            "Each seed (test at the epoch of best validation CIDEr-D):", "", *table(headers, rows), ""]  # fmt: skip


def caption_recipe_ratios(r: Json) -> list[str]:
    """The recipe's row (weights averaged) against HF, where the run has one."""
    if "n2m_ema" not in r:
        return []
    ema, hf = r["n2m_ema"], r["hf"]
    (ema_loop, ema_steps), (hf_loop, hf_steps) = caption_speeds(ema), caption_speeds(hf)
    return [f"The recipe / HF: CIDEr-D {ema['cider'] - hf['cider']:+.2f}, unseen combinations "
            f"{ema['novel_combo_cider'] - hf['novel_combo_cider']:+.2f}, train images/s {ratio(ema_loop, hf_loop)}, "
            f"images/s in steps {ratio(ema_steps, hf_steps)}, generated tokens/s "
            f"{ratio(ema['gen_tokens_per_s'], hf['gen_tokens_per_s'])}.", ""]  # fmt: skip


def caption_vs_hf(root: Path) -> str | None:
    stems = [s for s in ("caption_vs_hf", "caption_vs_hf.earlier-run", "caption_vs_hf.dropout16", "caption_vs_hf.quick")
             if load(root, f"{s}.json") is not None]  # fmt: skip
    if not stems:
        return None
    body: list[str] = []
    for stem in stems:
        r = load(root, f"{stem}.json")
        assert r is not None
        d = r["details"]
        names = {"hf": "HF `Seq2SeqTrainer`", "n2m": "n2m (`recipes/ko-caption.yaml`)"}
        if "n2m_ema" in r:  # the recipe averages its weights: the plain row is HF's settings
            names |= {"n2m": "n2m, HF's settings (the recipe without its weight average)",
                      "n2m_ema": "n2m, the recipe (+ a moving average of the weights: design)"}  # fmt: skip
        rows = [[names[k], f2(s["bleu"]), f2(s["chrf"]), f2(s["cider"]), f2(s["novel_combo_cider"]),
                 *(f2(x) for x in caption_speeds(s)), f1(s["gen_tokens_per_s"]), f1(s["peak_rss_mb"])]
                for k, s in ((k, r[k]) for k in names if k in r)]  # fmt: skip
        n2m, hf = r["n2m"], r["hf"]
        (n2m_loop, n2m_steps), (hf_loop, hf_steps) = caption_speeds(n2m), caption_speeds(hf)
        older = "step_images_per_s" not in n2m
        earlier, dropout16 = stem.endswith(".earlier-run"), stem.endswith(".dropout16")
        label = ", the run before" if earlier else ", 16-bit dropout masks (removed)" if dropout16 else ""
        body += [
            f"## {r['mode']} mode{label} ({machine_date(r)}"
            + (f", the mean over seeds {', '.join(map(str, r['seeds']))})" if r.get("seeds") else ")"),
            "",
            *([EARLIER_CAPTION_RUN, ""] if earlier else []),
            *([DROPOUT16_CAPTION_RUN, ""] if dropout16 else []),
            *caption_measured(d),
            f"{d['train_rows']:,} training captions × {d['epochs']} epoch(s); {d['test_images']:,} test images and "
            f"{d['novel_images']:,} images of held-out combinations, each against all its references."
            + (" A quick run is a smoke test for CI, not a measurement of quality." if r["mode"] == "quick" else ""),
            "",
            *table(CAPTION_HEADERS, rows),
            *kept_sides(r),
            "",
            *([CAPTION_DESIGN_ROW, "", caption_choice(r), ""] if "n2m_ema" in r else []),
            ("n2m on HF's settings / HF" if "n2m_ema" in r else "n2m / HF")
            + f": CIDEr-D {n2m['cider'] - hf['cider']:+.2f}, train images/s {ratio(n2m_loop, hf_loop)}, "
            f"images/s in steps {ratio(n2m_steps, hf_steps)}, generated tokens/s "
            f"{ratio(n2m['gen_tokens_per_s'], hf['gen_tokens_per_s'])}."
            + (OLDER_CAPTION_RUN if older else "")
            + ("" if d.get("hf_adamw") == "fused" else FOREACH_CAPTION_RUN),
            "",
            *caption_recipe_ratios(r),
            *caption_seeds(r),
        ]
    return page(
        "Korean image captioning: n2m against Hugging Face's Seq2SeqTrainer",
        "**the same model, tool against tool**: a `VisionEncoderDecoderModel` of the recipe's image encoder (one "
        "Hugging Face class and configuration on both sides, from scratch) under the same warm-started e5-small "
        "decoder, trained on the same rows with the same epochs, learning rates, batch, warm-up, schedule, "
        "augmentation and decoding; each side keeps its best validation epoch and scores test once. What differs is "
        "each tool's own data path and loop (n2m decodes each image once and caches it; HF decodes it each time its "
        "row is drawn) and what the decoder computes: n2m's runs its projections, feed-forward and LM head on the "
        "real caption tokens only and attention on length-sorted runs of the batch's rows (`n2m.shapes.n2m.packed`, "
        "the same function as HF's forward, tested), HF's on every batch padded to its longest caption. Train "
        "images/s: (image, caption) rows per second of the training loop, validation taken out, reading the images "
        "included; images/s in steps: per second of optimizer steps alone (no data loading). Generated tokens/s: over"
        " the test split's batches (on both sides each batch generates and computes its teacher-forced loss; the "
        "scores are computed once the split is done), beam search as the recipe sets. Both sides train with fused "
        "AdamW.",
        [
            "python benchmarks/caption_vs_hf.py --quick   # 256 rows, 1 epoch → caption_vs_hf.quick.json",
            "python benchmarks/caption_vs_hf.py           # the recipe as committed (~25 min on 2 cores)",
            "python benchmarks/caption_vs_hf.py --seeds 0 1 2   # each side once per seed, figures averaged",
            "python benchmarks/caption_vs_hf.py --seeds 0 1 2 --only n2m_ema   # the recipe's row; the rest kept",
        ],
        [f"{stem}.json" for stem in stems],
        "; ".join(f"{stem}: {machine_date(load(root, f'{stem}.json') or {})}" for stem in stems),
        body,
    )


# ---- the Korean classification recipes -------------------------------------------------------------------------
CLASSIFY_METRICS = {"accuracy": "accuracy", "f1_macro": "macro-F1"}


def classify_settings(s: Json) -> str:
    clip = s["max_grad_norm"] if s["max_grad_norm"] is not None else "none"
    head = f", head {lr(s['head_lr'])}" if s.get("head_lr") is not None else ""
    return (f"{s['epochs']} epoch(s), batch {s['batch_size']}, lr {lr(s['lr'])}{head}, warm-up {s['warmup_ratio']:g} "
            f"({s['schedule']}), weight decay {s['weight_decay']:g}, clipping {clip}, max_length {s['max_length']}, "
            f"seed {s['seed']}" + (", swapped pairs" if s.get("swap_pairs") else ""))  # fmt: skip


def classify_part(r: Json) -> list[str]:
    tasks = r["tasks"]
    measured = r["n2m"] == "trained here"
    source = ("trained in this run (`n2m fit --config RECIPE`)" if measured else
              f"read from the finished `n2m bench` run in `{r['n2m']}` (its recipe's sha256 and test rows "
              "checked)")  # fmt: skip
    settings = [[f"`{t}`", f"{e['train_examples']:,} / {e['test_examples']:,}", CLASSIFY_METRICS[e["monitor"]],
                 classify_settings(e["settings"])] for t, e in tasks.items()]  # fmt: skip
    scores = [[f"`{t}`", CLASSIFY_METRICS[k], f4(e["hf"][k]), f4(e["hf_same_model"][k]), f4(e["n2m"][k]),
               delta(e["hf_same_model"][k] - e["hf"][k]), delta(e["n2m"][k] - e["hf_same_model"][k])]
              for t, e in tasks.items() for k in e["metrics"]]  # fmt: skip

    def chosen(s: Json, monitor: str) -> str:
        return f"{s['best_epoch']} ({f4(s.get(f'val_{monitor}'))})"

    epochs = [[f"`{t}`", f"{e['settings']['epochs']}, {CLASSIFY_METRICS[e['monitor']]}",
               *(chosen(e[side], e["monitor"]) for side in ("hf", "hf_same_model", "n2m"))]
              for t, e in tasks.items()]  # fmt: skip
    speed = [[f"`{t}`", *(times(e["ratios"][pair][k]) for pair in ("n2m_vs_hf_same_model", "n2m_vs_hf",
             "hf_same_model_vs_hf") for k in ("throughput", "peak_rss"))] for t, e in tasks.items()]  # fmt: skip
    quick = " A quick run samples 64 / 32 / 64 rows of each split for 1 epoch: a smoke test, not a measurement."
    missing = [t for t in CLASSIFY_TASKS if t not in tasks]
    left = (f" Run task by task (`--only`, each run's tasks merged into the file); not run yet: "
            f"{', '.join(f'`{t}`' for t in missing)}." if missing else "")  # fmt: skip
    speed_note = "." if measured else "; n2m's are measured only when it trains in the run (`--run-n2m`)."
    score_headers = ["task", "metric", "(a) HF, full e5-small", "(b) HF, n2m's trimmed e5-small", "n2m",
                     "(b) − (a): the model", "n2m − (b): the design"]  # fmt: skip
    speed_headers = ["task", "n2m / (b): examples/s", "n2m / (b): peak RSS", "n2m / (a): examples/s",
                     "n2m / (a): peak RSS", "(b) / (a): examples/s", "(b) / (a): peak RSS"]  # fmt: skip
    return [
        f"## {r['mode']} mode ({machine_date(r)})",
        "",
        f"Backbone `{r['backbone']}`; n2m {source}." + (quick if r["mode"] == "quick" else "") + left,
        "",
        "### What both sides were given (from each recipe)",
        "",
        *table(["task", "train / test examples", "monitored on validation", "settings"], settings),
        "",
        "### Test scores: each side's best validation epoch, the test split scored once",
        "",
        "(a) is what a user gets from HF; (b) − (a) is what the model (n2m's vocabulary trimming) changes in the same "
        "tool; n2m − (b) is what n2m's design changes on the same trimmed model (mean pooling and no pooler against "
        "HF's first-token pooler head, length-grouped batches where the recipe keeps them, its loop). "
        "`ko-hate-speech` trains on random-order batches since 2026-12-04, chosen on validation "
        "([classify_dev_trials](classify_dev_trials.md)).",
        "",
        *table(score_headers, scores),
        "",
        "### Epoch each side chose, by its validation score",
        "",
        *table(["task", "epochs, monitored", "(a) HF, full", "(b) HF, trimmed", "n2m"], epochs),
        "",
        "### Training throughput and peak memory, as ratios",
        "",
        "Training examples per second (validation taken out on both sides) and peak RSS of each side's own process, "
        "in the same run on the same machine" + speed_note,
        "",
        *table(speed_headers, speed),
        "",
    ]


def classify_vs_hf(root: Path) -> str | None:
    stems = [s for s in ("classify_vs_hf", "classify_vs_hf.quick") if load(root, f"{s}.json") is not None]
    if not stems:
        return None
    body: list[str] = []
    for stem in stems:
        r = load(root, f"{stem}.json")
        assert r is not None
        body += classify_part(r)
    return page(
        "Korean classification recipes: n2m against HF `Trainer`",
        "**tool against tool on the same committed splits**, for the four Korean N21 classification recipes "
        "(`ko-hate-speech`, `ko-question-pair-cls`, `klue-nli`, `ko-chatbot-topic`): HF `Trainer` + "
        "`AutoModelForSequenceClassification` given every setting the recipe gives n2m (pairs cross-encoded with the "
        "`query: ` prefix on both texts, swapped training pairs, max_length, batch, epochs, learning rates, warm-up "
        "steps, weight decay groups, clipping, dropout, seed), (a) on the full e5-small as a user loads it and (b) on "
        "the vocabulary-trimmed folder n2m trains, against n2m. Each side picks its epoch on the validation split by "
        "the recipe's monitored metric and scores test once with the same torchmetrics definitions (accuracy, "
        "macro-F1).",
        [
            "python benchmarks/classify_vs_hf.py --quick   # sampled rows, 1 epoch, n2m trained too → classify_vs_hf.quick.json",  # noqa: E501
            "python benchmarks/classify_vs_hf.py           # full splits; n2m from runs/bench/korean → classify_vs_hf.json",  # noqa: E501
            "python benchmarks/classify_vs_hf.py --run-n2m --only klue-nli   # one task, n2m trained here (merged into the file)",  # noqa: E501
        ],
        [f"{stem}.json" for stem in stems],
        "; ".join(f"{stem}: {machine_date(load(root, f'{stem}.json') or {})}" for stem in stems),
        body,
    )


CLASSIFY_TASKS = ("ko-hate-speech", "ko-question-pair-cls", "klue-nli", "ko-chatbot-topic")  # classify_vs_hf.TASKS


PAGES: dict[str, Callable[[Path], str | None]] = {
    "sts_vs_hf": sts_vs_hf,
    "classify_vs_hf": classify_vs_hf,
    "sts_same_model": sts_same_model,
    "sts_dev_trials": sts_dev_trials,
    "sts_seed_soup": sts_seed_soup,
    "caption_dev_trials": caption_dev_trials,
    "classify_dev_trials": classify_dev_trials,
    "caption_vs_hf": caption_vs_hf,
    "ner_vs_hf": ner_vs_hf,
    "pos_vs_kiwi": pos_vs_kiwi,
    "seq2seq_vs_hf": seq2seq_vs_hf,
    "chatbot_samples": chatbot_samples,
    "seq2seq_warm_start_probe": seq2seq_warm_start_probe,
    "retrieval_vs_st": retrieval_vs_st,
    "vocab_generalization": vocab_generalization,
    "int8_error": int8_error,
    "serve_load": serve_load,
    "mmap_threshold": mmap_threshold,
    "attention_dropout_memory": attention_dropout_memory,
    "length_runs": length_runs,
    "import_time": import_time,
    "code_size": code_size,
    "scoring_speed": scoring_speed,
    "quick_parity": quick_parity,
    "recipes": recipes,
    "suite": suite,
}


# ---- the README's blocks --------------------------------------------------------------------------------------
def headline(root: Path) -> list[str]:
    """The README's results: the suite's leaderboard (once `n2m bench` has written one), then one row per
    side-by-side benchmark. Every number in a row is a value (rounded) of the results file the row links."""
    board = load(root, "suite.json")
    if board is None:
        return side_by_side(root)
    rows = [[f"`{name}`", metric_name(t["metric"]), shown(t["metric"], t["value"]),
             t.get("date") or board.get("date", "")] for name, t in board["tasks"].items()]  # fmt: skip
    return [f"The Korean suite: every Korean recipe trained and tested once (`n2m bench`, {link('suite.json', 0)}, "
            "[details](docs/benchmarks/suite.md)):", "", *table(["recipe", "metric", "test", "date"], rows), "",
            *side_by_side(root)]  # fmt: skip


def side_by_side(root: Path) -> list[str]:
    rows: list[list[str]] = []

    def row(page_name: str, what: str, file: str, figures: str, r: Json) -> None:
        rows.append([f"[{page_name}](docs/benchmarks/{page_name}.md)", what, figures, link(file, 0), r["date"]])

    if r := load(root, "sts_vs_hf.json"):
        q = r["ratios"]
        row("sts_vs_hf", "KorSTS, tool against tool (HF cross-encoder, full e5-small; n2m bi-encoder, trimmed)",
            "sts_vs_hf.json", f"Pearson {f4(r['n2m']['pearson'])} vs {f4(r['hf']['pearson'])}; train pairs/s "
            f"{times(q['throughput'])}; peak RSS {times(q['peak_rss'])}", r)  # fmt: skip
    for name, where in (("sts_same_model.json", "CPU"), ("sts_same_model.gpu.json", "GPU")):
        if r := load(root, name):
            row("sts_same_model", f"KorSTS, the training loop like for like ({where}, same trimmed bi-encoder, "
                "sentence-transformers)", name, f"Pearson {f4(r['n2m']['pearson'])} vs {f4(r['st']['pearson'])}"
                + (f" (mean of {len(r['seeds'])} seeds)" if r.get("seeds") else "") + "; "
                f"train pairs/s {f2(r['n2m']['samples_per_s'])} vs {f2(r['st']['samples_per_s'])}"
                + kept_from(r, "st", "sentence-transformers'"), r)  # fmt: skip
    if r := load(root, "sts_vs_hf.gpu.json"):
        q = r["ratios"]
        row("sts_vs_hf", "KorSTS on one GPU, tool against tool (both on the trimmed e5-small)", "sts_vs_hf.gpu.json",
            f"Pearson {f4(r['n2m']['pearson'])} vs {f4(r['hf']['pearson'])}; train pairs/s {times(q['throughput'])}; "
            f"peak GPU memory {times(q.get('peak_gpu'))}", r)  # fmt: skip
    if r := load(root, "classify_vs_hf.json"):
        tasks = r["tasks"]
        scores = "; ".join(f"`{task}` {metric_name('test/' + t['metric'])} {f4(t['n2m'][t['metric']])} vs "
                           f"{f4(t['hf'][t['metric']])}" for task, t in tasks.items())  # fmt: skip

        def speed(against: str) -> str:
            ratios = [t["ratios"][against]["throughput"] for t in tasks.values()]
            return f"{times(min(ratios))} to {times(max(ratios))}"

        row("classify_vs_hf", "Korean classification recipes, tool against tool (HF `Trainer`, full e5-small)",
            "classify_vs_hf.json", f"{scores}; train examples/s {speed('n2m_vs_hf')} ({speed('n2m_vs_hf_same_model')} "
            "against HF on n2m's trimmed model)", r)  # fmt: skip
    if r := load(root, "ner_vs_hf.json"):
        hf = r["hf"] if r["hf"].get("head_lr") is not None else None
        what = "KLUE-NER, same model" + ("" if hf else " (HF without n2m's `head_lr`)")
        row("ner_vs_hf", what, "ner_vs_hf.json", f"entity F1 {f4(r['n2m']['f1'])} vs {f4(r['hf']['f1'])}"
            + (f" ({f4(r['hf_constrained']['f1'])} with constrained decoding)" if "hf_constrained" in r else "")
            + f"; train sentences/s {times(r['ratios']['throughput'])}", r)  # fmt: skip
    if r := load(root, "seq2seq_vs_hf.json"):
        chrf = "; ".join(f"{label} {f2(r['n2m'][k])} vs {f2(r['hf'][k])}" for k, label in chrf_keys(r["n2m"], r))
        row("seq2seq_vs_hf", "Korean → English, same warm-started model (HF `Seq2SeqTrainer`)", "seq2seq_vs_hf.json",
            f"BLEU {f2(r['n2m']['bleu'])} vs {f2(r['hf']['bleu'])}; {chrf}; train pairs/s "
            f"{f2(r['n2m']['samples_per_s'])} vs {f2(r['hf']['samples_per_s'])}", r)  # fmt: skip
    for name in ("retrieval_vs_st.json", "retrieval_vs_st.quick.json"):
        if r := load(root, name):
            row("retrieval_vs_st", f"Korean FAQ retrieval, same model (sentence-transformers), {r['mode']} mode",
                name, f"MRR@10 {f4(r['n2m']['mrr10'])} vs {f4(r['st']['mrr10'])}", r)  # fmt: skip
            break
    for name in ("caption_vs_hf.json", "caption_vs_hf.quick.json"):
        if r := load(root, name):
            seeds = f", mean over seeds {', '.join(map(str, r['seeds']))}" if r.get("seeds") else ""
            n2m, hf = r.get("n2m_ema", r["n2m"]), r["hf"]  # the recipe's row
            averaged = (f" (the recipe, weights averaged; {f2(r['n2m']['cider'])} on HF's settings)"
                        if "n2m_ema" in r else "")  # fmt: skip
            row("caption_vs_hf", f"Korean image captioning, same model (HF `Seq2SeqTrainer`), {r['mode']} mode{seeds}",
                name, f"CIDEr-D {f2(n2m['cider'])} vs {f2(hf['cider'])}{averaged}; unseen combinations "
                f"{f2(n2m['novel_combo_cider'])} vs {f2(hf['novel_combo_cider'])}; "
                + ("train images/s" if "step_images_per_s" in n2m else "images/s in optimizer steps")
                + f" {f2(n2m['train_images_per_s'])} vs {f2(hf['train_images_per_s'])}"
                + kept_from(r, "hf", "HF's"), r)  # fmt: skip
            break
    if r := load(root, "pos_vs_kiwi.json"):
        row("pos_vs_kiwi", "Korean POS against Kiwi's own model", "pos_vs_kiwi.json",
            f"word accuracy {f4(r['n2m']['accuracy'])} vs {f4(r['kiwi']['accuracy'])}", r)  # fmt: skip
    if r := load(root, "serve_load.json"):
        s = r["summary"]
        row("serve_load", "serving the KorSTS model (HF pipeline behind FastAPI)", "serve_load.json",
            f"requests/s at concurrency 32 {times(s['rps_ratio_at_32'])}; p50 ms at concurrency 1 "
            f"{f1(s['p50_ms_at_1']['n2m'])} vs {f1(s['p50_ms_at_1']['hf_pipeline'])}", r)  # fmt: skip
    return [
        "n2m against the ordinary tool, side by side: n2m first, the other tool second; each row links its page "
        "(setup, every figure, how to rerun) and the results file it is read from.",
        "",
        *table(["benchmark", "what is compared", "n2m vs the other tool", "results", "date"], rows),
    ]


def more_pages(root: Path) -> list[str]:
    shown = {"sts_vs_hf", "classify_vs_hf", "sts_same_model", "ner_vs_hf", "seq2seq_vs_hf", "retrieval_vs_st",
             "caption_vs_hf", "pos_vs_kiwi", "serve_load", "suite"}  # fmt: skip
    names = [n for n, render in PAGES.items() if n not in shown and render(root) is not None]
    return ["More: " + ", ".join(f"[{n}](docs/benchmarks/{n}.md)" for n in names) + "."]


def fresh_clone(root: Path) -> list[str]:
    r = load(root, "results/fresh_clone.json")
    if r is None:
        return []
    minutes = lambda s: f"{s // 60} min {s % 60} s"  # noqa: E731
    return [
        f"`scripts/fresh_clone_check.sh` runs both from a fresh clone with empty n2m caches and writes "
        f"[`results/fresh_clone.json`](results/fresh_clone.json); its last run (commit {r['commit']}, "
        f"{r['machine']}, {r['date']}): the quick start took {minutes(r['quickstart_s'])} and its model scored "
        f"Pearson {f4(r['quickstart_test_pearson'])} on KorSTS test; the tests took {minutes(r['test_s'])} "
        f"({r['tests']['passed']} passed).",
    ]


BLOCKS: dict[str, Callable[[Path], list[str]]] = {
    "fresh-clone": fresh_clone,
    "results": lambda root: [*headline(root), "", *more_pages(root)],
}


def with_blocks(readme: str, root: Path) -> str:
    """The README with each `<!-- NAME:start -->…<!-- NAME:end -->` block rewritten from the results files."""
    for name, render in BLOCKS.items():
        pattern = re.compile(rf"(<!-- {name}:start -->\n).*?(<!-- {name}:end -->)", re.S)
        if not pattern.search(readme):
            raise ValueError(f"README.md has no <!-- {name}:start --> … <!-- {name}:end --> block")
        text = "\n".join(render(root))
        readme = pattern.sub(lambda m, text=text: m.group(1) + text + "\n" + m.group(2), readme)
    return readme


def render_all(root: Path = ROOT, names: Iterable[str] | None = None) -> dict[str, str]:
    """Relative path → text of every page of `names` (default: all) whose results exist, and the README."""
    out = {f"{DOCS}/{name}.md": text for name in (names or PAGES) if (text := PAGES[name](root)) is not None}
    out["README.md"] = with_blocks((root / "README.md").read_text(encoding="utf-8"), root)
    return out


def write_pages(*names: str, root: Path = ROOT, written_to: str | Path | None = None) -> list[Path]:
    """Rewrite every page and the README's blocks after the results of `names` changed (pages link each other's
    files, so one new file can change another page); returns the files that changed. A
    benchmark calls this after writing its results file, `write_pages("sts_vs_hf", written_to=folder)`: a run
    whose results went anywhere but the committed folder (a test's, a quick run's `--results-dir`) changes
    no page."""
    if written_to is not None and Path(written_to).resolve() != (root / RESULTS).resolve():
        return []
    unknown = set(names) - set(PAGES)
    if unknown:
        raise KeyError(f"no page for {sorted(unknown)}; pages: {sorted(PAGES)}")
    changed = []
    for rel, text in render_all(root).items():
        path = root / rel
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            changed.append(path)
    return changed


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if a page is out of date")
    args = parser.parse_args(argv)
    if args.check:
        stale = [rel for rel, text in render_all().items()
                 if not (ROOT / rel).is_file() or (ROOT / rel).read_text(encoding="utf-8") != text]  # fmt: skip
        for rel in stale:
            print(f"out of date: {rel} (run python benchmarks/docs_pages.py)")
        return 1 if stale else 0
    for path in write_pages():
        print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
