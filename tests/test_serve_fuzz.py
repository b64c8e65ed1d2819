"""The OpenAPI document says what the server enforces: schemathesis, an OpenAPI fuzzer, sends schema-valid and
schema-violating requests to a real server on loopback serving a real tiny model, and every answer must pass its
checks (valid data accepted, invalid data refused with a 4xx, every status, content type, header and body as
declared), with zero failures: /v1/predict, and /v1/embeddings, /v1/rerank and /v1/search (a bi-encoder serving
a small corpus).

Driven through schemathesis' Python API under hypothesis' `@given` (its pytest plugin does not run with this
pytest). Each operation is fuzzed for a few dozen examples: seconds, not minutes.
"""

from __future__ import annotations

import importlib
import os
import re
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from serve_models import LiveServer, sts_model

from n2m import Predictor
from n2m.serve import Limits, create_app
from n2m.serve.corpus import encode_corpus
from n2m.serve.limits import check_text, text_pattern

# every schema-valid body fits in the byte limit (4 inputs × 2 texts × 50 characters × 12 bytes at most, an
# astral character escaped as two \uXXXX, plus /v1/embeddings' two names of 256), so what the schema allows is
# exactly what the server takes
LIMITS = Limits(max_body_bytes=20_000, max_inputs=4, max_chars=50, max_queue=64)
EXAMPLES = 50


def required(module: str) -> ModuleType:
    """A part the test cannot do without: skipped on a laptop that lacks it, a failure in CI (CI=true)."""
    try:
        return importlib.import_module(module)
    except ImportError:
        if os.environ.get("CI") == "true":
            raise
        pytest.skip(f"{module} is not installed (pip install -e '.[dev]')")


@pytest.fixture(scope="module")
def served(tiny_backbone, korsts_slice, tmp_path_factory) -> Any:
    """A real exported STS model behind a real uvicorn server: (url, schema)."""
    schemathesis = required("schemathesis")
    folder: Path = sts_model(tiny_backbone, korsts_slice, tmp_path_factory.mktemp("serve-models"))
    predictor = Predictor.from_pretrained(folder)
    sentences = [line.split("\t")[5] for line in korsts_slice["train"].read_text(encoding="utf-8").splitlines()[1:21]]
    corpus = encode_corpus(predictor, sentences, "korsts.tsv")
    app = create_app(predictor, name="tiny-sts", limits=LIMITS, corpus=corpus)
    with LiveServer(app) as url:
        yield url, schemathesis.openapi.from_url(f"{url}/openapi.json")


def fuzz(schema: Any, url: str, path: str, method: str, mode: str) -> dict[int, int]:
    """Run `EXAMPLES` generated requests of one operation; every check of schemathesis must pass on each."""
    from schemathesis import GenerationMode

    operation = schema[path][method]
    statuses: dict[int, int] = {}

    @given(case=operation.as_strategy(generation_mode=GenerationMode(mode)))
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        phases=[Phase.generate, Phase.shrink],
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
    )
    def one(case: Any) -> None:
        response = case.call(base_url=url, timeout=30)
        statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
        case.validate_response(response)  # all of schemathesis' checks; raises on the first failing one

    one()
    return statuses


MODEL_OPERATIONS = ["/v1/predict", "/v1/embeddings", "/v1/rerank", "/v1/search"]


@pytest.mark.parametrize("path", MODEL_OPERATIONS)
def test_every_schema_valid_request_is_answered_200(served, path):
    url, schema = served
    statuses = fuzz(schema, url, path, "POST", "positive")
    assert set(statuses) == {200}, statuses  # no schema-valid text is refused (empty, invisible, controls)


@pytest.mark.parametrize("path", MODEL_OPERATIONS)
def test_every_schema_violating_request_is_a_declared_4xx(served, path):
    url, schema = served
    statuses = fuzz(schema, url, path, "POST", "negative")
    assert statuses and all(400 <= status < 500 for status in statuses), statuses


@pytest.mark.parametrize("path", ["/v1/model", "/healthz", "/metrics"])
def test_the_other_operations_answer_as_declared(served, path):
    url, schema = served
    assert fuzz(schema, url, path, "GET", "positive") == {200: 1}  # no parameters: one request


def test_refusals_below_the_schema_are_declared_too(served):
    """413 (body over the byte limit) and 408 are decided before the body is parsed: their status, content type
    and body must still be what the document declares."""
    from schemathesis.specs.openapi.checks import (
        content_type_conformance,
        response_headers_conformance,
        response_schema_conformance,
        status_code_conformance,
    )

    url, schema = served
    operation = schema["/v1/predict"]["POST"]
    responses = schema.raw_schema["paths"]["/v1/predict"]["post"]["responses"]
    assert {"200", "408", "413", "422", "503"} <= set(responses)
    big = {"inputs": {"text": "x" * 30_000, "text_pair": "b"}}
    case = operation.Case(body=big, media_type="application/json")
    response = case.call(base_url=url, timeout=30)
    assert response.status_code == 413
    checks = [status_code_conformance, content_type_conformance, response_headers_conformance]
    case.validate_response(response, checks=[*checks, response_schema_conformance])


@given(st.text(max_size=12))
@settings(max_examples=300, deadline=None, database=None)
def test_the_schemas_text_pattern_is_the_servers_rule(text):
    """The `pattern` in the schema accepts exactly the texts `check_text` accepts (surrogates aside: a JSON Schema
    string is Unicode text, and hypothesis draws none)."""
    try:
        check_text(text)
        accepted = True
    except ValueError:
        accepted = False
    assert (re.search(text_pattern(), text) is not None) == accepted


@pytest.mark.parametrize("text", ["", "\u200b", "\ufeff\u200b ", "\ue000", "\u0301", "a\x00", "a\x85", " \u2028 "])
def test_texts_the_server_refuses_break_the_schema(served, text):
    """The known disagreement: an empty or invisible text was schema-valid and answered 422."""
    url, schema = served
    input_schema = schema.raw_schema["components"]["schemas"]["ModelInput"]["properties"]["text"]
    assert input_schema["minLength"] == 1 and re.search(input_schema["pattern"], text) is None
    answer = httpx.post(f"{url}/v1/predict", json={"inputs": {"text": text, "text_pair": "b"}}, timeout=30)
    assert answer.status_code == 422
