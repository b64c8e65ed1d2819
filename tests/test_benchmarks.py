"""The side-by-side benchmarks' own machinery, on the tiny backbone: what CI can afford of them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

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
