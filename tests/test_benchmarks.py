"""The side-by-side benchmarks' own machinery, on the tiny backbone: what CI can afford of them."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import build_metaspace_backbone, read_tsv

ROOT = Path(__file__).resolve().parents[1]


def test_sts_vs_hf_quick_mode_writes_both_sides_and_the_ensemble(tmp_path):
    """The whole quick mode (HF `Trainer`, `n2m fit` with the recipe's vocabulary trimming, the bi + cross
    ensemble) with a tiny random backbone whose tokenizer, like e5's, can be trimmed."""
    rows = read_tsv(ROOT / "data/korsts/sts-train.tsv")
    texts = ["query: " + r[k] for r in rows for k in ("sentence1", "sentence2")]
    backbone = build_metaspace_backbone(tmp_path / "bert", texts, vocab_size=4000)
    results = tmp_path / "results"
    cmd = [sys.executable, str(ROOT / "benchmarks/sts_vs_hf.py"), "--quick", "--ensemble", "2", "--ensemble-kind",
           "mix", "--backbone", backbone, "--out", str(tmp_path / "runs"), "--results-dir", str(results)]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]

    report = json.loads((results / "sts_vs_hf.quick.json").read_text(encoding="utf-8"))
    assert report["mode"] == "quick" and report["epochs"] == 1 and report["precision"] == "fp32"
    for system in ("hf", "n2m", "n2m_ensemble"):
        figures = report[system]
        assert -1.0 <= figures["pearson"] <= 1.0 and -1.0 <= figures["spearman"] <= 1.0
        assert figures["samples_per_s"] > 0 and figures["wall_s"] > 0 and figures["checkpoint_mb"] > 0
        assert figures["peak_rss_mb"] > 100 and figures["peak_gpu_mb"] is None
    hf, n2m, ensemble = report["hf"], report["n2m"], report["n2m_ensemble"]
    assert report["ratios"]["throughput"] == round(n2m["samples_per_s"] / hf["samples_per_s"], 2)
    assert report["ratios"]["pearson_delta"] == round(n2m["pearson"] - hf["pearson"], 4)
    # the ensemble: the single model and the cross-encoder, both trained here, weights fitted on the dev slice
    assert ensemble["members"] == 2 and len(ensemble["weights"]) == 2 and sum(ensemble["weights"]) > 0
    assert ensemble["member_test_pearson"][0] == n2m["pearson"]
    assert ensemble["peak_rss_mb"] >= n2m["peak_rss_mb"]
    table = (results / "sts_vs_hf.quick.md").read_text(encoding="utf-8")
    assert table.count("\n| ") == 3 and "n2m / HF: Pearson" in table


def test_train_timer_does_not_subtract_the_sanity_check(tmp_path):
    """Lightning's sanity check validates before `on_train_start`: a validation pass there is not inside the
    timed window, so it must not be taken off the training time (it would inflate pairs/s)."""
    import time

    import lightning as L
    import torch

    sys.path.insert(0, str(ROOT / "benchmarks"))
    from _measure import TrainTimer

    class SlowValidation(L.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.layer = torch.nn.Linear(2, 1)

        def training_step(self, batch, batch_idx):
            time.sleep(0.05)
            return self.layer(batch[0]).sum()

        def validation_step(self, batch, batch_idx):
            time.sleep(0.5)

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.ones(4, 2)), batch_size=2)
    path = tmp_path / "time.json"
    trainer = L.Trainer(
        max_epochs=1, num_sanity_val_steps=1, limit_val_batches=1, logger=False, enable_checkpointing=False,
        enable_progress_bar=False, callbacks=[TrainTimer(str(path))],
    )  # fmt: skip
    trainer.fit(SlowValidation(), loader, loader)
    timed = json.loads(path.read_text())
    assert 0.5 <= timed["validation_s"] < 0.95  # the epoch's one validation batch, not the sanity check's too
    assert timed["train_s"] >= 0.1  # two training steps of 0.05 s


RETRIEVAL_KEYS = {"mode", "machine", "date", "corpus_size", "queries", "untrained", "st", "n2m"}
RETRIEVAL_SIDE = {"mrr10", "recall1", "recall10", "train_pairs_per_s", "peak_rss_mb", "encode_per_s"}


def test_retrieval_vs_st_results_have_the_issue_shape_and_match_their_tables():
    """The committed results of benchmarks/retrieval_vs_st.py (quick, and the full run once there): exactly the
    keys issue 18 gives, figures in range, and every figure in the Markdown table beside them."""
    results_dir = ROOT / "benchmarks/results"
    names = ("retrieval_vs_st.quick.json", "retrieval_vs_st.json")
    found = [results_dir / name for name in names if (results_dir / name).is_file()]
    assert found, "no committed retrieval_vs_st results"
    for path in found:
        results = json.loads(path.read_text(encoding="utf-8"))
        assert set(results) == RETRIEVAL_KEYS
        assert results["mode"] == ("quick" if ".quick." in path.name else "full")
        assert set(results["untrained"]) == {"mrr10", "recall1", "recall10"}
        # the issue's keys, and the ones measured since (bf16 on both sides, ONNX fp32's cosine; not in older files)
        bf16 = {"encode_per_s_bf16", "bf16_min_cosine"}
        assert RETRIEVAL_SIDE <= set(results["st"]) <= RETRIEVAL_SIDE | bf16
        n2m_keys = RETRIEVAL_SIDE | {"encode_per_s_onnx", "encode_per_s_int8", "int8_min_cosine"}
        assert n2m_keys <= set(results["n2m"]) <= n2m_keys | bf16 | {"onnx_min_cosine"}
        assert 0 < results["queries"] < results["corpus_size"]
        for side in ("untrained", "st", "n2m"):
            row = results[side]
            assert 0 <= row["recall1"] <= row["recall10"] <= 1 and row["recall1"] <= row["mrr10"] <= row["recall10"]
        for side in ("st", "n2m"):
            assert results[side]["train_pairs_per_s"] > 0 and results[side]["encode_per_s"] > 0
            assert results[side]["peak_rss_mb"] > 100
        table = path.with_suffix(".md").read_text(encoding="utf-8")
        assert table.count("### ") == 3  # quality, training, encoding: each table says what it measures
        cells = {c.strip() for line in table.splitlines() if line.startswith("|") for c in line.split("|")}
        for side, row in results.items():
            if isinstance(row, dict):
                assert {str(v) for v in row.values() if v is not None} <= cells, side
        assert f"all {results['corpus_size']} answers" in table and f"{results['queries']} held-out" in table


def test_sts_same_model_quick_mode_trains_both_sides_on_one_folder(tmp_path):
    """sentence-transformers and n2m train the same trimmed folder with the same settings, and one function
    scores both: n2m's own test Pearson (its Lightning test loop) equals the export's, scored by that function."""
    rows = read_tsv(ROOT / "data/korsts/sts-train.tsv")
    texts = ["query: " + r[k] for r in rows for k in ("sentence1", "sentence2")]
    backbone = build_metaspace_backbone(tmp_path / "bert", texts, vocab_size=4000)
    results = tmp_path / "results"
    cmd = [sys.executable, str(ROOT / "benchmarks/sts_same_model.py"), "--quick", "--backbone", backbone,
           "--out", str(tmp_path / "runs"), "--results-dir", str(results)]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]

    report = json.loads((results / "sts_same_model.quick.json").read_text(encoding="utf-8"))
    setup = report["settings"]
    assert report["mode"] == "quick" and setup["epochs"] == 1 and setup["lr"] == 3e-5 and setup["batch_size"] == 32
    assert setup["text_prefix"] == "query: " and setup["max_grad_norm"] is None
    assert Path(report["backbone_dir"]).name.startswith("bert-trim-")  # the one folder both sides trained
    st, n2m = report["st"], report["n2m"]
    assert abs(n2m["pearson"] - n2m["own_test_pearson"]) < 1e-4
    for side in (st, n2m):
        assert side["best_epoch"] == 1 and side["samples_per_s"] > 0 and side["peak_rss_mb"] > 100
    assert report["ratios"]["throughput"] == round(n2m["samples_per_s"] / st["samples_per_s"], 2)
    assert report["ratios"]["pearson_delta"] == round(n2m["pearson"] - st["pearson"], 4)
    table = (results / "sts_same_model.quick.md").read_text(encoding="utf-8")
    assert table.count("\n| ") == 2 and "n2m / sentence-transformers: Pearson" in table


def test_classify_vs_hf_quick_mode_scores_each_side_once_on_the_test_rows(tmp_path):
    """HF `Trainer` on the full and on n2m's trimmed backbone, and `n2m fit`, on the sampled splits of the pair
    recipe (swapped training pairs): each side's test figures are what its saved test rows give, those rows are the
    test file's in order, and the ratios are of the figures beside them."""
    task = "ko-question-pair-cls"
    rows = read_tsv(ROOT / "data/korean_question_pair/pairs/train.tsv")
    texts = ["query: " + r[k] for r in rows for k in ("question1", "question2")]
    backbone = build_metaspace_backbone(tmp_path / "bert", texts, vocab_size=2000)
    results, runs = tmp_path / "results", tmp_path / "runs"
    cmd = [sys.executable, str(ROOT / "benchmarks/classify_vs_hf.py"), "--quick", "--only", task, "--backbone",
           backbone, "--out", str(runs), "--results-dir", str(results)]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]

    report = json.loads((results / "classify_vs_hf.quick.json").read_text(encoding="utf-8"))
    assert set(report) == {"mode", "machine", "date", "backbone", "n2m", "tasks"} and list(report["tasks"]) == [task]
    assert report["mode"] == "quick" and report["n2m"] == "trained here"
    entry = report["tasks"][task]
    assert entry["metric"] == "accuracy" and entry["monitor"] == "accuracy" and entry["settings"]["epochs"] == 1
    assert entry["settings"]["max_grad_norm"] is None and entry["settings"]["text_prefix"] == "query: "
    assert entry["train_examples"] == 128  # 64 sampled pairs, each also as (B, A)
    gold = [(r["question1"], r["question2"], r["label"]) for r in read_tsv(runs / task / "test.tsv")]
    assert len(gold) == entry["test_examples"] == 64
    for side in ("hf", "hf_same_model", "n2m"):
        figures = entry[side]
        lines = (runs / task / side / "test_predictions.jsonl").read_text(encoding="utf-8").splitlines()
        rows = [json.loads(line) for line in lines]
        assert [(r["gold"]["text"], r["gold"]["text_pair"], r["gold"]["label"]) for r in rows] == gold, side
        pairs = [(r["gold"]["label"], r["prediction"]["label"]) for r in rows]
        accuracy = sum(g == p for g, p in pairs) / len(pairs)
        f1s = []  # torchmetrics' macro-F1: the mean over the labels that occur among gold or predicted
        for label in {x for pair in pairs for x in pair}:
            tp = sum(g == p == label for g, p in pairs)
            wrong = sum((g == label) != (p == label) for g, p in pairs)
            f1s.append(2 * tp / (2 * tp + wrong))
        assert abs(figures["accuracy"] - accuracy) < 1e-4 and abs(figures["f1_macro"] - sum(f1s) / len(f1s)) < 1e-4
        assert figures["best_epoch"] == 1 and 0 <= figures["val_accuracy"] <= 1, side
        assert figures["train_examples_per_s"] > 0 and figures["peak_rss_mb"] > 100, side
    assert Path(entry["hf"]["backbone_dir"]) == Path(backbone).resolve()
    assert Path(entry["hf_same_model"]["backbone_dir"]).name.startswith("bert-trim-")
    n2m, same = entry["n2m"], entry["hf_same_model"]
    q = entry["ratios"]["n2m_vs_hf_same_model"]
    assert q["throughput"] == round(n2m["train_examples_per_s"] / same["train_examples_per_s"], 2)
    assert q["accuracy_delta"] == round(n2m["accuracy"] - same["accuracy"], 4)
    table = (results / "classify_vs_hf.quick.md").read_text(encoding="utf-8")
    assert f"| {task} | accuracy | {entry['hf']['accuracy']} | {same['accuracy']} | {n2m['accuracy']} |" in table


def test_classify_vs_hf_reads_n2m_only_from_a_bench_run_of_the_recipe_as_it_is(tmp_path):
    """n2m's figures come from a `n2m bench` task folder only if it ran the current recipe text, without
    overrides, on the current test rows; otherwise the benchmark stops and says why."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import classify_vs_hf

    task, run = "klue-nli", tmp_path / "klue-nli"
    run.mkdir()
    results = {"test": {"test/accuracy": 0.61, "test/f1_macro": 0.6}, "best_val": {"val/accuracy": 0.7},
               "best_checkpoint": str(run / "checkpoints/best-epoch=1-step=152.ckpt")}  # fmt: skip
    (run / "results.json").write_text(json.dumps(results), encoding="utf-8")
    digest = hashlib.sha256((ROOT / "recipes/klue-nli.yaml").read_bytes()).hexdigest()
    recipe = "recipes/klue-nli.yaml"
    record = {"recipe": recipe, "recipe_sha256": digest, "arguments": ["--config", recipe]}
    setup, test_file = classify_vs_hf.task_settings(task), str(ROOT / "data/klue_nli/splits/test.tsv")

    def read(bench: dict) -> dict:
        (run / "bench.json").write_text(json.dumps(bench), encoding="utf-8")
        return classify_vs_hf.n2m_from_bench(run, task, setup, test_file)

    figures = read(record)
    assert figures["accuracy"] == 0.61 and figures["best_epoch"] == 2 and figures["val_accuracy"] == 0.7
    assert figures["train_examples_per_s"] is None and figures["peak_rss_mb"] is None  # not measured there
    with pytest.raises(SystemExit, match="recipe_sha256"):
        read({**record, "recipe_sha256": "0" * 64})
    with pytest.raises(SystemExit, match="overrides"):
        read({**record, "arguments": [*record["arguments"], "--trainer.max_epochs", "1"]})
    other = {"index": 0, "gold": {"text": "가", "text_pair": "나", "label": "neutral"}, "prediction": {}}
    (run / "test_predictions.jsonl").write_text(json.dumps(other) + "\n", encoding="utf-8")
    with pytest.raises(SystemExit, match="test rows"):
        read(record)
