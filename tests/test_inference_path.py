"""The inference path: exports written by earlier n2m versions still load and predict what they predicted then,
and loading, predicting and serving a model of every shape imports no Lightning."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest

from n2m import Predictor

FIXTURES = Path(__file__).parent / "fixtures" / "exports_v0"
EXPECTED = json.loads((FIXTURES / "expected.json").read_text(encoding="utf-8"))["models"]


def close(got: Any, want: Any) -> bool:
    """Equal, floats within 1e-5 (the same weights, and kernels that need not be bit-exact)."""
    if isinstance(want, float):
        return isinstance(got, float) and math.isclose(got, want, rel_tol=1e-5, abs_tol=1e-5)
    if isinstance(want, dict):
        return isinstance(got, dict) and got.keys() == want.keys() and all(close(got[k], want[k]) for k in want)
    if isinstance(want, list):
        return isinstance(got, list) and len(got) == len(want) and all(map(close, got, want))
    return got == want


@pytest.mark.parametrize("folder", sorted(EXPECTED))
def test_an_export_of_n2m_0_1_loads_and_predicts_as_it_did(folder):
    expected = EXPECTED[folder]
    predictor = Predictor.from_pretrained(FIXTURES / folder)
    assert type(predictor).__name__ == expected["predictor"]
    inputs = [tuple(i) if isinstance(i, list) else i for i in expected["inputs"]]
    got = [asdict(r) for r in predictor.predict(inputs)]
    assert close(got, expected["outputs"]), f"{folder}: {got} != {expected['outputs']}"
    assert predictor.card.format_version == 2 and predictor.card.shape in ("N21", "N2N", "N2M", "ensemble")


SERVE_EVERY_SHAPE = """
import json, sys
from pathlib import Path
from fastapi.testclient import TestClient
from n2m import Predictor
from n2m.serve import create_app

fixtures = Path(sys.argv[1])
expected = json.loads((fixtures / "expected.json").read_text())["models"]
for folder in ("n21-bi-regression", "n2n-bio", "n2m-warm-start", "ensemble"):
    predictor = Predictor.from_pretrained(fixtures / folder)
    first = expected[folder]["inputs"][0]
    predictor.predict([tuple(first) if isinstance(first, list) else first])
    fields = predictor.card.inputs
    body = {"inputs": dict(zip(fields, first)) if isinstance(first, list) else {fields[0]: first}}
    with TestClient(create_app(predictor)) as client:
        answer = client.post("/v1/predict", json=body)
        assert answer.status_code == 200, answer.text
        assert client.get("/v1/model").json()["shape"] == predictor.card.shape
heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("lightning", "pytorch_lightning", "torchmetrics"))
print(json.dumps(heavy))
"""


def test_predicting_and_serving_every_shape_imports_no_lightning():
    """In a fresh interpreter: load an export of each shape, predict, serve it in-process; then look at
    `sys.modules`. (How long the import takes is measured in benchmarks/import_time.py, not here.)"""
    done = subprocess.run(
        [sys.executable, "-c", SERVE_EVERY_SHAPE, str(FIXTURES)], capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []
