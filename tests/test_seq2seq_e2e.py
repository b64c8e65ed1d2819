"""N2M end to end on the real e5-small (warm start, trimmed vocabulary) and real Korean-English pairs (slow: e2e)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from n2m.cli import main
from n2m.core.predictor import Predictor

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.e2e
def test_ko_en_recipe_on_a_slice(tmp_path):
    """The committed translation recipe on 96 training pairs of its split, e5's first 2 / 1 layers, one epoch:
    the vocabulary is trimmed to a small fraction of e5's 250k, the run validates, tests and exports, and the
    exported model generates and streams the same text."""
    root = tmp_path / "run"
    args = ["--config", str(ROOT / "recipes/ko-en-translation.yaml"), "--model.encoder_layers", "2",
            "--model.decoder_layers", "1", "--data.max_train_samples", "96", "--data.max_val_samples", "16",
            "--data.max_test_samples", "16", "--model.generation.max_new_tokens", "16",
            "--model.val_generation.max_new_tokens", "16", "--trainer.max_epochs", "1",
            "--trainer.default_root_dir", str(root), "--trainer.enable_progress_bar", "false"]  # fmt: skip
    main(["fit", *args])
    report = json.loads((root / "results.json").read_text())
    assert "test/bleu" in report["test"] and "test/chrf" in report["test"]
    ckpt = report["best_checkpoint"]
    main(["export", ckpt, str(tmp_path / "model")])
    predictor = Predictor.from_pretrained(tmp_path / "model")
    assert len(predictor.tokenizer) < 30_000  # trimmed from 250k: the decoder's softmax is over these only
    out = predictor.predict(["나는 학생이다.", "오늘 날씨가 좋다."])
    assert len(out) == 2 and all(o.text for o in out)
    assert (
        "".join(predictor.stream("나는 학생이다.", num_beams=1))
        == predictor.predict(["나는 학생이다."], num_beams=1)[0].text
    )
