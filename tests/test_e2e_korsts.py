"""End to end on real data with the real e5-small: a slice of KorSTS through fit, test, predict and export."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch

from n2m import Predictor
from n2m.cli import main

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.e2e


def test_korsts_slice_with_real_e5(korsts_slice, tmp_path):
    root = tmp_path / "run"
    common = [
        "--config", str(ROOT / "recipes/korsts.yaml"),
        "--data.train", str(korsts_slice["train"]),
        "--data.val", str(korsts_slice["val"]),
        "--data.test", str(korsts_slice["test"]),
        "--data.batch_size", "16",
        "--trainer.default_root_dir", str(root),
        "--trainer.enable_progress_bar", "false",
    ]  # fmt: skip
    main(["fit", *common, "--trainer.max_epochs", "1"])
    report = json.loads((root / "results.json").read_text())
    # e5's own embeddings already rank KorSTS pairs well; a short fine-tune must not destroy that
    assert report["test"]["test/pearson"] > 0.5
    best = report["best_checkpoint"]

    predictions = tmp_path / "pred.csv"
    main(["predict", *common, "--ckpt_path", best, "--data.predict", str(korsts_slice["test"]),
          "--output", str(predictions)])  # fmt: skip
    with predictions.open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))

    main(["export", best, str(tmp_path / "model")])
    predictor = Predictor.from_pretrained(tmp_path / "model")
    info = predictor.info
    assert info["shape"] == "N21" and info["settings"]["pair_encoding"] == "bi"
    assert info["encoding"] == {"max_length": 64, "text_prefix": "query: "} and info["format_version"] == 2
    # the exported folder carries the trimmed vocabulary: far fewer than e5's 250k pieces
    assert predictor.tokenizer.vocab_size < 10_000
    with korsts_slice["test"].open(encoding="utf-8") as f:
        gold = list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    scores = predictor.predict_outputs([(g["sentence1"], g["sentence2"]) for g in gold])
    from_checkpoint = torch.tensor([float(r["score"]) for r in rows])
    assert (scores - from_checkpoint).abs().max() <= 1e-4
