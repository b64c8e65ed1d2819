"""ONNX export and the ONNX Runtime backend: parity with PyTorch, int8 quantization, CLI, serving.

Stated tolerance: fp32 ONNX Runtime outputs (scores on the data's scale, or probabilities) are within
1e-4 of PyTorch's on the tiny models. On a real trained KorSTS model, benchmarks/serve_load.py measures both
as served (it needs a trained model, so it is a benchmark): the largest score difference to PyTorch and each
backend's Pearson on the whole KorSTS test split (int8 within 0.01 of fp32).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from serve_models import sentiment_model, sts_model, train_and_export

from n2m import Predictor
from n2m.cli import main
from n2m.serve import create_app
from n2m.shapes.n21.examples import Columns
from n2m.shapes.n21.onnx import INT8_FILE, ONNX_FILE, OnnxPredictor, export_onnx

ROOT = Path(__file__).resolve().parents[1]
NLI = Columns(text="sentence1", text_pair="sentence2", label="gold_label")
TINY_TOLERANCE = 1e-4


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
    int8 = quantized.predict_outputs(inputs).numpy()
    assert int8.shape == reference.shape and np.isfinite(int8).all()
    assert (folder / INT8_FILE).stat().st_size < (folder / ONNX_FILE).stat().st_size


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
