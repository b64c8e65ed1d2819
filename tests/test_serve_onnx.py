"""ONNX export and the ONNX Runtime backend: parity with PyTorch, int8 quantization, CLI, serving.

Stated tolerance: fp32 ONNX Runtime outputs (scores on the data's scale, or probabilities) are within
1e-4 of PyTorch's on the tiny models. On a real trained KorSTS model, benchmarks/serve_load.py measures both
as served (it needs a trained model, so it is a benchmark): the largest score difference to PyTorch and each
backend's Pearson on the whole KorSTS test split (int8 within 0.01 of fp32). int8's error per item, which
Pearson hides, is bounded here on a real e5-small bi-encoder (`test_int8_agrees_per_item`) and measured in full
by benchmarks/int8_error.py.
"""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import lightning as L
import numpy as np
import pytest
from fastapi.testclient import TestClient
from serve_models import STS, sentiment_model, sts_model, train_and_export

from n2m import Predictor
from n2m.cli import main
from n2m.core.card import ModelCard
from n2m.core.export import export_checkpoint
from n2m.core.task import Optimization
from n2m.serve import create_app
from n2m.shapes.n21.data import TextDataModule
from n2m.shapes.n21.examples import Columns
from n2m.shapes.n21.onnx import INT8_FILE, INT8_SETTINGS, ONNX_FILE, OnnxPredictor, export_onnx, int8_agreement
from n2m.shapes.n21.task import SequenceTask

ROOT = Path(__file__).resolve().parents[1]
NLI = Columns(text="sentence1", text_pair="sentence2", label="gold_label")
TINY_TOLERANCE = 1e-4
# int8 against fp32 on a real e5-small bi-encoder, per pair on KorSTS's 0–5 scale (benchmarks/int8_error.py)
INT8_MAX_ERROR, INT8_MEAN_ERROR, INT8_MIN_COSINE = 0.9, 0.3, 0.8


def tsv_rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8") as f:
        return list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))


@pytest.fixture(scope="session")
def tiny_models(tiny_backbone, korsts_slice, kornli_slice, tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("onnx-models")
    return {
        "bi-encoder regression": sts_model(tiny_backbone, korsts_slice, tmp_path_factory.mktemp("serve-models")),
        "one-text classes": sentiment_model(tiny_backbone, tmp_path_factory.mktemp("serve-models")),
        "cross-encoder classes": train_and_export(
            tiny_backbone, kornli_slice, NLI, "classification", root / "nli", "cross", max_steps=2
        ),
    }


def inputs_for(predictor: Predictor) -> list:
    texts = ["짧다", "a much longer sentence with many words " * 3, "중간 길이의 문장입니다.", "x"]
    if len(predictor.card.inputs) == 1:
        return texts
    return [(a, b) for a, b in zip(texts, reversed(texts), strict=True)] + [("same", "same")]


@pytest.mark.parametrize("kind", ["bi-encoder regression", "one-text classes", "cross-encoder classes"])
def test_onnx_matches_pytorch(tiny_models, kind):
    folder = tiny_models[kind]
    written = export_onnx(folder, quantize="int8")
    assert [p.name for p in written] == [ONNX_FILE, INT8_FILE]
    torch_predictor = Predictor.from_pretrained(folder)
    onnx_predictor = Predictor.from_pretrained(folder, backend="onnx")
    assert isinstance(onnx_predictor, OnnxPredictor) and onnx_predictor.info == torch_predictor.info
    inputs = inputs_for(torch_predictor)
    for batch_size in (1, 3, 64):  # other batch sizes and sequence lengths than the export's example
        reference = torch_predictor.predict_outputs(inputs, batch_size=batch_size).numpy()
        got = onnx_predictor.predict_outputs(inputs, batch_size=batch_size).numpy()
        assert got.shape == reference.shape
        assert np.abs(got - reference).max() <= TINY_TOLERANCE
    assert [type(r) for r in onnx_predictor.predict(inputs)] == [type(r) for r in torch_predictor.predict(inputs)]

    quantized = Predictor.from_pretrained(folder, backend="onnx", onnx_file=INT8_FILE)
    assert quantized.predict_outputs(inputs).shape == reference.shape  # its error: test_int8_agrees_per_item
    assert (folder / INT8_FILE).stat().st_size < (folder / ONNX_FILE).stat().st_size
    assert ModelCard.load(folder).provenance["int8"]["settings"] == INT8_SETTINGS
    with pytest.raises(ValueError, match="torch backend"):  # bf16 autocast is torch's; a graph has its own
        Predictor.from_pretrained(folder, backend="onnx", precision="bf16")


@pytest.fixture(scope="module")
def e5_bi_encoder(korsts_slice, tmp_path_factory) -> Path:
    """A real KorSTS bi-encoder: the trimmed e5-small one step into training (int8's error is the encoder's)."""
    root = tmp_path_factory.mktemp("e5-int8")
    data = TextDataModule(train=str(korsts_slice["train"]), val=str(korsts_slice["val"]), columns=STS, batch_size=8,
                          backbone="e5-small", objective="regression", pair_encoding="bi", score_range=(0.0, 5.0),
                          text_prefix="query: ", max_length=64, trim_vocab=True, cache_tokens=False)  # fmt: skip
    task = SequenceTask.from_data(data, optimization=Optimization(lr=1e-5))
    trainer = L.Trainer(max_steps=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, accelerator="cpu", default_root_dir=root)  # fmt: skip
    trainer.fit(task, data)
    trainer.save_checkpoint(root / "sts.ckpt")
    return export_checkpoint(root / "sts.ckpt", root / "sts", vocab="trained")


@pytest.mark.e2e
def test_int8_agrees_per_item(e5_bi_encoder, korsts_slice):
    """int8 within a stated error of fp32 on every KorSTS pair, not only in correlation: a user's fixed threshold
    on the 0–5 score meets each item's error. The mean bound sits above what the default gave on these pairs
    with a 40-step KorSTS model (0.25) and below the old per-channel setting (0.36; benchmarks/int8_error.py)."""
    export_onnx(e5_bi_encoder, quantize="int8")
    predictor = Predictor.from_pretrained(e5_bi_encoder)
    pairs = [(r["sentence1"], r["sentence2"]) for split in ("val", "test") for r in tsv_rows(korsts_slice[split])]
    got = int8_agreement(e5_bi_encoder / ONNX_FILE, e5_bi_encoder / INT8_FILE, predictor, pairs)
    assert got["max_abs_error"] <= INT8_MAX_ERROR and got["mean_abs_error"] <= INT8_MEAN_ERROR, got
    assert got["min_embedding_cosine"] >= INT8_MIN_COSINE, got
    recorded = ModelCard.load(e5_bi_encoder).provenance["int8"]  # what `n2m export` told the user
    assert recorded["items"] == 66 and recorded["max_abs_error"] <= INT8_MAX_ERROR


def test_missing_onnx_file_says_how_to_make_it(tiny_models, tmp_path):
    folder = tmp_path / "copy"
    shutil.copytree(tiny_models["one-text classes"], folder, ignore=shutil.ignore_patterns("*.onnx"))
    with pytest.raises(FileNotFoundError, match="--onnx"):
        Predictor.from_pretrained(folder, backend="onnx")
    with pytest.raises(ValueError, match="unknown backend 'tensorrt'"):
        Predictor.from_pretrained(folder, backend="tensorrt")
    with pytest.raises(ValueError, match="'int8'"):
        export_onnx(folder, quantize="int4")


def test_export_command_writes_onnx_files(tiny_models, tmp_path):
    checkpoint = tiny_models["cross-encoder classes"].parent / "nli.ckpt"
    out = tmp_path / "exported"
    main(["export", str(checkpoint), str(out), "--onnx", "--quantize", "int8"])
    assert {"model.safetensors", "n2m.json", ONNX_FILE, INT8_FILE} <= {p.name for p in out.iterdir()}


def test_serve_with_the_onnx_backend(tiny_models):
    folder = tiny_models["bi-encoder regression"]
    export_onnx(folder)
    pair = {"text": "한 남자가 기타를 치고 있다.", "text_pair": "남자가 기타를 연주한다."}
    expected = Predictor.from_pretrained(folder).predict([pair])[0].score
    app = create_app(Predictor.from_pretrained(folder, backend="onnx"), backend="onnx")
    with TestClient(app) as client:
        assert client.get("/v1/model").json()["backend"] == "onnx"
        score = client.post("/v1/predict", json={"inputs": pair}).json()["predictions"][0]["score"]
    assert score == pytest.approx(expected, abs=TINY_TOLERANCE)
