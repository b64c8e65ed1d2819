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
    main(["export", best, str(tmp_path / "small"), "--vocab", "trained"])
    predictor, small = Predictor.from_pretrained(tmp_path / "model"), Predictor.from_pretrained(tmp_path / "small")
    info = predictor.info
    assert info["shape"] == "N21" and info["settings"]["pair_encoding"] == "bi"
    assert info["encoding"] == {"max_length": 64, "text_prefix": "query: "} and info["format_version"] == 2
    # trained on a trimmed vocabulary, exported with e5's whole one (the trained rows written back) by default
    assert predictor.tokenizer.vocab_size == 250_002 and info["provenance"]["vocabulary"]["exported"] == "full"
    assert small.tokenizer.vocab_size < 10_000
    with korsts_slice["test"].open(encoding="utf-8") as f:
        gold = list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    pairs = [(g["sentence1"], g["sentence2"]) for g in gold]
    from_checkpoint = torch.tensor([float(r["score"]) for r in rows])
    # the trimmed export predicts as the checkpoint does; the full one too wherever the trimmed vocabulary read
    # the text as e5 does (elsewhere it reads pieces the training file never had, as e5 would)
    assert (small.predict_outputs(pairs) - from_checkpoint).abs().max() <= 1e-4
    same = [i for i, pair in enumerate(pairs) if all(reads_as_e5(small, predictor, text) for text in pair)]
    assert 0 < len(same) < len(pairs)
    assert (predictor.predict_outputs(pairs)[same] - from_checkpoint[same]).abs().max() <= 1e-4


def reads_as_e5(small: Predictor, full: Predictor, text: str) -> bool:
    """The trimmed tokenizer gives `text` e5's pieces and none of them is unknown."""
    cut = small.tokenizer(text, add_special_tokens=False)["input_ids"]
    whole = full.tokenizer(text, add_special_tokens=False)["input_ids"]
    pieces = small.tokenizer.convert_ids_to_tokens(cut)
    return small.tokenizer.unk_token_id not in cut and pieces == full.tokenizer.convert_ids_to_tokens(whole)
