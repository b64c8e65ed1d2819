"""The JSON API on tiny exported models: schema, results, every bad input (over real HTTP), the bounded
queue, micro-batching seen in /metrics, and streaming."""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from serve_models import LiveServer, sentiment_model, sts_model

from n2m import Predictor
from n2m.serve import Limits, create_app

PAIR = {"text": "한 남자가 기타를 치고 있다.", "text_pair": "남자가 기타를 연주한다."}
SMALL = Limits(max_body_bytes=20_000, max_inputs=4, max_chars=50, max_queue=64)


@pytest.fixture(scope="session")
def sts_dir(tiny_backbone, korsts_slice, tmp_path_factory) -> Path:
    return sts_model(tiny_backbone, korsts_slice, tmp_path_factory.mktemp("serve-models"))


@pytest.fixture(scope="session")
def sentiment_dir(tiny_backbone, tmp_path_factory) -> Path:
    return sentiment_model(tiny_backbone, tmp_path_factory.mktemp("serve-models"))


@pytest.fixture(scope="module")
def sts_predictor(sts_dir):
    return Predictor.from_pretrained(sts_dir)


@pytest.fixture(scope="module")
def client(sts_predictor):
    with TestClient(create_app(sts_predictor, name="tiny-sts", limits=SMALL)) as c:
        yield c


@pytest.fixture(scope="module")
def live_url(sts_predictor):
    with LiveServer(create_app(sts_predictor, name="tiny-sts", limits=SMALL)) as url:
        yield url


def test_model_endpoint_describes_the_model(client, sts_predictor):
    view = client.get("/v1/model").json()
    assert view["name"] == "tiny-sts"
    assert view["title"] == sts_predictor.card.provenance.get("title", "tiny-sts")
    assert (view["shape"], view["task"], view["layout"]) == ("N21", "regression", "similarity")
    assert view["inputs"] == ["text", "text_pair"]
    assert view["score_range"] == sts_predictor.card.settings["score_range"] and 0 <= view["score_range"][0] < 5
    assert view["backend"] == "torch" and view["n2m_version"] and view["backbone"]
    limits = {"max_body_bytes": 20_000, "max_inputs": 4, "max_chars": 50}
    assert view["limits"] == {**limits, "max_tokens": sts_predictor.card.encoding.max_length}
    assert client.get("/healthz").json() == {"status": "ok", "queue_depth": 0}


def test_predict_matches_the_predictor_one_or_many(client, sts_predictor):
    pairs = [PAIR, {"text": "고양이가 잔다.", "text_pair": "주식 시장이 올랐다."}, {"text": "a", "text_pair": "b"}]
    expected = [p.score for p in sts_predictor.predict(pairs)]
    one = client.post("/v1/predict", json={"inputs": PAIR})
    assert one.status_code == 200
    assert one.json()["predictions"][0]["score"] == pytest.approx(expected[0], abs=1e-5)
    many = client.post("/v1/predict", json={"inputs": pairs}).json()["predictions"]
    assert [p["score"] for p in many] == pytest.approx(expected, abs=1e-5)  # order kept
    assert len(set(round(s, 6) for s in expected)) == 3  # distinct inputs, distinct scores: order is tested


def test_openapi_shows_the_models_schema(client):
    spec = client.get("/openapi.json").json()
    schemas = spec["components"]["schemas"]
    model_input = schemas["ModelInput"]
    assert model_input["required"] == ["text", "text_pair"]
    assert model_input["additionalProperties"] is False
    assert model_input["properties"]["text"]["maxLength"] == 50
    inputs = schemas["PredictRequest"]["properties"]["inputs"]
    many = next(branch for branch in inputs["oneOf"] if branch.get("type") == "array")
    assert (many["minItems"], many["maxItems"]) == (1, 4)
    items = schemas["PredictResponse"]["properties"]["predictions"]["items"]
    assert schemas[items["$ref"].rsplit("/", 1)[1]]["properties"]["score"]["type"] == "number"
    responses = spec["paths"]["/v1/predict"]["post"]["responses"]
    assert {"200", "408", "413", "422", "503"} <= set(responses)
    error = schemas["ErrorResponse"]
    assert error["required"] == ["error"] and set(error["properties"]) == {"error", "detail"}
    for status in ("408", "413", "422", "503"):
        assert responses[status]["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorResponse")
    assert "Retry-After" in responses["503"]["headers"]


def test_classifier_probabilities_and_openapi(sentiment_dir):
    with TestClient(create_app(Predictor.from_pretrained(sentiment_dir), name="tiny-sentiment")) as c:
        view = c.get("/v1/model").json()
        assert view["layout"] == "classes" and view["inputs"] == ["text"]
        assert sorted(view["labels"]) == ["negative", "neutral", "positive"]
        response = c.post("/v1/predict", json={"inputs": [{"text": "this is good number 77"}, {"text": "bad 1"}]})
        first, second = response.json()["predictions"]
        assert first["label"] == "positive" and second["label"] == "negative"  # the rule it learned
        assert sum(first["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)
        schemas = c.get("/openapi.json").json()["components"]["schemas"]
        assert set(schemas["ClassPrediction"]["properties"]) == {"label", "probabilities"}


# every bad input: (request kwargs, status, message the error must contain)
TOO_LONG = "가" * 51
BAD_INPUTS: dict[str, tuple[dict[str, Any], int, str]] = {
    "invalid JSON": ({"content": b'{"inputs": {"text": "a",'}, 422, "body is not valid JSON"),
    "not UTF-8": ({"content": b'{"inputs": {"text": "\xff\xfe", "text_pair": "b"}}'}, 422, "must be UTF-8"),
    "JSON but not an object": ({"json": ["a", "b"]}, 422, "body: Input should be a valid dictionary"),
    "no inputs field": ({"json": {}}, 422, "inputs: Field required"),
    "misspelled field": (
        {"json": {"inputs": {"text": "a", "txt_pair": "b"}}},
        422,
        "inputs.text_pair: Field required; inputs.txt_pair: unknown field",
    ),
    "unknown top-level field": ({"json": {"inputs": PAIR, "top_k": 3}}, 422, "top_k: unknown field"),
    "number instead of text": (
        {"json": {"inputs": {"text": 3, "text_pair": "b"}}},
        422,
        "inputs.text: Input should be a valid string",
    ),
    "empty string": ({"json": {"inputs": {"text": "", "text_pair": "b"}}}, 422, "inputs.text: empty text"),
    "only spaces": (
        {"json": {"inputs": [PAIR, {"text": "a", "text_pair": "  \n "}]}},
        422,
        "inputs[1].text_pair: empty",
    ),
    "empty list": ({"json": {"inputs": []}}, 422, "inputs: List should have at least 1 item"),
    "control character": (
        {"json": {"inputs": {"text": "ok", "text_pair": "a\x00b"}}},
        422,
        "inputs.text_pair: control character U+0000 at character 1",
    ),
    "escape character": (
        {"json": {"inputs": {"text": "bell \x07", "text_pair": "b"}}},
        422,
        "control character U+0007 at character 5",
    ),
    "unpaired surrogate": (
        {"content": b'{"inputs": {"text": "abc \\ud800 def", "text_pair": "b"}}'},
        422,
        "inputs.text: not valid Unicode text",
    ),
    "text too long": (
        {"json": {"inputs": [PAIR, {"text": TOO_LONG, "text_pair": "b"}]}},
        422,
        "inputs[1].text: text too long: should have at most 50 characters",
    ),
    # the schema says how many (maxItems): breaking it is a 422, as for every other schema rule
    "too many inputs": ({"json": {"inputs": [PAIR] * 5}}, 422, "too many inputs in one request"),
    "body too large": ({"content": b'{"inputs": "' + b"x" * 30_000 + b'"}'}, 413, "over the limit of 20000 bytes"),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_gets_a_clear_4xx_and_the_server_goes_on(live_url, case):
    kwargs, status, message = BAD_INPUTS[case]
    headers = {"content-type": "application/json"}
    response = httpx.post(f"{live_url}/v1/predict", headers=headers, timeout=30, **kwargs)
    assert response.status_code == status, response.text
    assert message in response.json()["error"]
    after = httpx.post(f"{live_url}/v1/predict", json={"inputs": PAIR}, timeout=30)
    assert after.status_code == 200 and "score" in after.json()["predictions"][0]


def test_chunked_body_over_the_limit_is_refused_as_it_arrives(live_url):
    def chunks():
        yield b'{"inputs": "'
        for _ in range(30):
            yield b"x" * 1_000
        yield b'"}'

    response = httpx.post(
        f"{live_url}/v1/predict", content=chunks(), headers={"content-type": "application/json"}, timeout=30
    )
    assert response.status_code == 413 and "over the limit" in response.json()["error"]
    assert httpx.get(f"{live_url}/healthz").status_code == 200


def test_a_413_is_shaped_as_every_other_error(live_url):
    """Refused before the app parses anything, a body over the limit still gets the app's error body: the same
    JSON rendering, the same content type, and `{"error": ...}` as in the OpenAPI document's ErrorResponse."""
    url = f"{live_url}/v1/predict"
    headers = {"content-type": "application/json"}

    def chunks():
        yield b'{"inputs": "' + b"x" * 25_000 + b'"}'

    others = [
        httpx.get(f"{live_url}/nope"),  # 404
        httpx.get(url),  # 405
        httpx.post(url, json={"inputs": {"text": "", "text_pair": "b"}}),  # 422
    ]
    declared = httpx.post(url, content=b'{"inputs": "' + b"x" * 25_000 + b'"}', headers=headers)
    chunked = httpx.post(url, content=chunks(), headers=headers)
    assert declared.status_code == chunked.status_code == 413
    for response in [*others, declared, chunked]:
        body = response.json()
        assert response.headers["content-type"] == "application/json", response
        assert response.content == json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
        assert isinstance(body["error"], str) and set(body) <= {"error", "detail"}
    assert set(declared.json()) == {"error"} and "over the limit of 20000 bytes" in declared.json()["error"]


def test_other_http_errors_are_json_too(live_url):
    assert httpx.get(f"{live_url}/nope").json() == {"error": "Not Found"}
    wrong_method = httpx.get(f"{live_url}/v1/predict")
    assert wrong_method.status_code == 405 and wrong_method.json()["error"] == "Method Not Allowed"
    assert httpx.post(f"{live_url}/v1/stream", json={"inputs": PAIR}).status_code == 404  # no streaming for N21


class GatedPredictor:
    """The real predictor behind a gate the test opens: holds the worker so the queue can fill up."""

    def __init__(self, predictor: Any) -> None:
        self.predictor = predictor
        self.gate = threading.Event()
        self.batches: list[int] = []

    @property
    def info(self) -> dict[str, Any]:
        return self.predictor.info

    def predict(self, inputs: list[Any], batch_size: int = 64) -> list[Any]:
        self.gate.wait(30)
        self.batches.append(len(inputs))
        return self.predictor.predict(inputs, batch_size=batch_size)


def test_full_queue_gets_503_with_retry_after_and_recovers(sts_predictor):
    gated = GatedPredictor(sts_predictor)
    app = create_app(gated, limits=Limits(max_queue=3, max_inputs=3), max_batch_size=8, max_wait_ms=0)

    async def scenario(url: str) -> None:
        async with httpx.AsyncClient(base_url=url, timeout=60) as http:
            running = asyncio.create_task(http.post("/v1/predict", json={"inputs": PAIR}))
            await asyncio.sleep(0.3)  # the worker took it and waits at the gate
            queued = asyncio.create_task(http.post("/v1/predict", json={"inputs": [PAIR, PAIR, PAIR]}))
            await asyncio.sleep(0.3)
            assert (await http.get("/healthz")).json()["queue_depth"] == 3
            refused = await http.post("/v1/predict", json={"inputs": PAIR})
            assert refused.status_code == 503
            assert int(refused.headers["retry-after"]) >= 1
            assert "server busy: 3 inputs are waiting (limit 3)" in refused.json()["error"]
            gated.gate.set()
            done = await asyncio.gather(running, queued)
            assert [r.status_code for r in done] == [200, 200]
            assert len(done[1].json()["predictions"]) == 3
            again = await http.post("/v1/predict", json={"inputs": PAIR})  # recovered
            assert again.status_code == 200
            metrics = (await http.get("/metrics")).text
            assert 'n2m_rejected_requests_total{reason="queue_full"} 1.0' in metrics
            assert 'n2m_http_requests_total{method="POST",path="/v1/predict",status="503"} 1.0' in metrics

    with LiveServer(app) as url:
        asyncio.run(scenario(url))


def metric(text: str, name: str) -> float:
    found = re.search(rf"^{re.escape(name)} ([0-9.e+-]+)$", text, re.M)
    assert found, f"{name} not in /metrics"
    return float(found.group(1))


def test_concurrent_requests_are_micro_batched_and_metrics_show_it(sts_predictor):
    gated = GatedPredictor(sts_predictor)
    app = create_app(gated, max_batch_size=32, max_wait_ms=20)
    pairs = [{"text": f"문장 {i}", "text_pair": f"다른 문장 {i * 7}"} for i in range(24)]
    expected = [p.score for p in sts_predictor.predict(pairs)]

    async def scenario(url: str) -> list[float]:
        async with httpx.AsyncClient(base_url=url, timeout=60) as http:
            tasks = [asyncio.create_task(http.post("/v1/predict", json={"inputs": p})) for p in pairs]
            await asyncio.sleep(0.5)
            gated.gate.set()
            responses = await asyncio.gather(*tasks)
            assert all(r.status_code == 200 for r in responses)
            return [r.json()["predictions"][0]["score"] for r in responses]

    with LiveServer(app) as url:
        scores = asyncio.run(scenario(url))
        text = httpx.get(f"{url}/metrics").text
    assert scores == pytest.approx(expected, abs=1e-5)  # each request got its own result back
    assert len(gated.batches) <= 3 and max(gated.batches) >= 12  # 24 requests, a few forward passes
    assert metric(text, "n2m_batch_size_count") == len(gated.batches)
    assert metric(text, "n2m_batch_size_sum") == 24
    assert metric(text, 'n2m_http_requests_total{method="POST",path="/v1/predict",status="200"}') == 24
    assert metric(text, "n2m_queue_depth") == 0
    assert 'n2m_http_request_duration_seconds_bucket{le="0.5",path="/v1/predict"}' in text
    assert 'n2m_model_info{backend="torch",model="model",shape="N21"} 1.0' in text


class WordStreamer:
    """Stands in for an N2M predictor (the shape's own tests cover generation): `stream` yields words."""

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.info = {"shape": "N2M", "task": "generation", "inputs": ["text"], "provenance": {"n2m_version": "test"}}

    def predict(self, inputs: list[str], batch_size: int = 16) -> list[dict[str, str]]:
        return [{"text": text.upper()} for text in inputs]

    def stream(self, text: str):
        if text == "fail":
            raise RuntimeError("generation broke")
        for word in text.upper().split():
            time.sleep(self.delay)
            yield word + " "


def sse_events(body: str) -> list[tuple[str, dict[str, Any]]]:
    events = []
    for block in body.strip().split("\n\n"):
        kind, data = "message", ""
        for line in block.split("\n"):
            if line.startswith("event:"):
                kind = line[6:].strip()
            elif line.startswith("data:"):
                data = line[5:].strip()
        events.append((kind, json.loads(data)))
    return events


def test_streaming_sends_pieces_as_server_sent_events():
    with LiveServer(create_app(WordStreamer(delay=0.05), name="words")) as url:
        view = httpx.get(f"{url}/v1/model").json()
        assert (view["layout"], view["streaming"], view["task"]) == ("generation", True, "generation")
        arrivals = []
        with httpx.stream("POST", f"{url}/v1/stream", json={"inputs": {"text": "one two three"}}) as response:
            assert response.headers["content-type"].startswith("text/event-stream")
            body = ""
            for chunk in response.iter_text():
                arrivals.append(time.perf_counter())
                body += chunk
        events = sse_events(body)
        assert events == [
            ("message", {"text": "ONE "}),
            ("message", {"text": "TWO "}),
            ("message", {"text": "THREE "}),
            ("done", {"text": "ONE TWO THREE "}),
        ]
        assert arrivals[-1] - arrivals[0] >= 0.08  # pieces arrived as produced, not all at the end
        failed = sse_events(httpx.post(f"{url}/v1/stream", json={"inputs": {"text": "fail"}}).text)
        assert failed == [("error", {"error": "RuntimeError: generation broke"})]
        bad = httpx.post(f"{url}/v1/stream", json={"inputs": {"text": ""}})
        assert bad.status_code == 422 and "inputs.text: empty text" in bad.json()["error"]
        plain = httpx.post(f"{url}/v1/predict", json={"inputs": {"text": "a b"}}).json()
        assert plain == {"predictions": [{"text": "A B"}], "truncated": []}


def test_streams_are_bounded():
    app = create_app(WordStreamer(delay=0.3), limits=Limits(max_streams=1))

    async def scenario(url: str) -> None:
        async with httpx.AsyncClient(base_url=url, timeout=30) as http:
            first = asyncio.create_task(http.post("/v1/stream", json={"inputs": {"text": "a b c"}}))
            await asyncio.sleep(0.2)
            second = await http.post("/v1/stream", json={"inputs": {"text": "d"}})
            assert second.status_code == 503 and second.headers["retry-after"] == "1"
            assert "1 generations are streaming already" in second.json()["error"]
            assert (await first).status_code == 200
            await asyncio.sleep(0.1)
            third = await http.post("/v1/stream", json={"inputs": {"text": "e"}})
            assert sse_events(third.text)[-1] == ("done", {"text": "E "})

    with LiveServer(app) as url:
        asyncio.run(scenario(url))


def test_n2n_model_plugs_in_by_its_schema(tiny_backbone, tmp_path_factory):
    """The N2N shape's real predictor: layout, result type in OpenAPI, entities over the original text."""
    from serve_models import entity_model

    folder = entity_model(tiny_backbone, tmp_path_factory.mktemp("serve-models"))
    with TestClient(create_app(Predictor.from_pretrained(folder), name="cities")) as client:
        view = client.get("/v1/model").json()
        assert (view["shape"], view["layout"], view["task"], view["inputs"]) == ("N2N", "entities", "bio", ["text"])
        assert "B-location" in view["labels"]
        schemas = client.get("/openapi.json").json()["components"]["schemas"]
        assert {"text", "type", "start", "end", "score"} <= set(schemas["Entity"]["properties"])
        texts = ["we flew to Seoul on day3", "서울 and then Busan 😀 on day7"]
        predictions = client.post("/v1/predict", json={"inputs": [{"text": t} for t in texts]}).json()["predictions"]
        assert any(e["text"] == "Seoul" for e in predictions[0]["entities"])
        for text, prediction in zip(texts, predictions, strict=True):
            for entity in prediction["entities"]:
                assert text[entity["start"] : entity["end"]] == entity["text"]
        bad = client.post("/v1/predict", json={"inputs": {"text": "nul \x00"}})
        assert bad.status_code == 422 and "inputs.text: control character U+0000" in bad.json()["error"]


def test_n2m_predictor_streams_what_it_predicts(tiny_backbone):
    """The N2M shape's real predictor (a random tiny encoder-decoder): SSE pieces join to `predict`'s text."""
    import torch
    from transformers import AutoTokenizer

    from n2m.core.card import Encoding, ModelCard
    from n2m.shapes.n2m.model import build_seq2seq
    from n2m.shapes.n2m.predictor import Seq2SeqPredictor

    tokenizer = AutoTokenizer.from_pretrained(tiny_backbone)
    torch.manual_seed(0)
    model = build_seq2seq("warm_start", tiny_backbone, tokenizer)
    settings = {"architecture": "warm_start", "generation": {"max_new_tokens": 6}, "metrics": ["bleu"]}
    card = ModelCard("N2M", "generation", ["text"], tiny_backbone, Encoding(32), settings=settings)
    predictor = Seq2SeqPredictor(model, tokenizer, card)
    with LiveServer(create_app(predictor, name="tiny-seq2seq")) as url:
        view = httpx.get(f"{url}/v1/model").json()
        assert (view["layout"], view["streaming"]) == ("generation", True)
        spec = httpx.get(f"{url}/openapi.json").json()
        assert "/v1/stream" in spec["paths"] and "GeneratedText" in spec["components"]["schemas"]
        predicted = httpx.post(f"{url}/v1/predict", json={"inputs": {"text": "hello world"}}).json()
        events = sse_events(httpx.post(f"{url}/v1/stream", json={"inputs": {"text": "hello world"}}, timeout=60).text)
        pieces = [data["text"] for kind, data in events if kind == "message"]
        assert events[-1][0] == "done" and events[-1][1]["text"] == "".join(pieces)
        assert "".join(pieces) == predicted["predictions"][0]["text"]


class Crashes:
    """A predictor with a bug on one input: the server answers 500 for that request only and goes on."""

    def __init__(self, predictor: Any) -> None:
        self.predictor = predictor
        self.info = predictor.info

    def predict(self, inputs: list[Any], batch_size: int = 64) -> list[Any]:
        if any(item["text"] == "boom" for item in inputs):
            raise RuntimeError("a bug in the model code")
        return self.predictor.predict(inputs, batch_size=batch_size)


def test_a_crashing_model_fails_one_request_not_the_server(sts_predictor):
    app = create_app(Crashes(sts_predictor), max_wait_ms=50)

    async def scenario(url: str) -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=url, timeout=60) as http:
            bodies = [PAIR, {"text": "boom", "text_pair": "b"}, PAIR]
            return list(await asyncio.gather(*(http.post("/v1/predict", json={"inputs": b}) for b in bodies)))

    with LiveServer(app) as url:
        good, crashed, other = asyncio.run(scenario(url))
        assert crashed.status_code == 500
        assert crashed.json() == {"error": "internal error (RuntimeError); the server goes on"}
        assert good.status_code == other.status_code == 200  # batched with the crash, answered anyway
        assert httpx.post(f"{url}/v1/predict", json={"inputs": PAIR}).status_code == 200


@pytest.mark.parametrize("text", ["\u200b", "\ufeff\u200b ", "\ue000\ue001", "\u0301\u0302", " \u2028 "])
def test_a_text_with_nothing_visible_is_empty(client, text):
    """Zero-width spaces, a BOM, private-use characters or lone combining marks are not a text to score."""
    answer = client.post("/v1/predict", json={"inputs": {"text": text, "text_pair": "두 번째 문장"}})
    assert answer.status_code == 422 and "inputs.text: empty text" in answer.json()["error"]


def test_the_page_answers_head_and_has_an_icon_and_no_cdn_docs(client):
    assert client.head("/").status_code == 200
    icon = client.get("/favicon.ico")
    assert icon.status_code == 200 and icon.headers["content-type"].startswith("image/svg+xml")
    assert client.get("/docs").status_code == 404  # Swagger UI would load from a CDN: blank offline
    assert "cdn" not in client.get("/").text.lower() and "/openapi.json" in client.get("/").text


def test_a_client_gone_mid_body_is_counted_as_gone_not_as_a_server_error(sts_predictor):
    """A request whose client closes the connection before its body has arrived gets no answer; /metrics counts
    it under status 499 (nginx's "client closed request"), not 500, and adds no latency."""
    import socket

    with LiveServer(create_app(sts_predictor, name="tiny-sts", limits=SMALL)) as url:
        port = int(url.rsplit(":", 1)[1])
        for _ in range(3):
            with socket.create_connection(("127.0.0.1", port)) as conn:
                conn.sendall(b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                             b"Content-Length: 500\r\n\r\n" + b'{"inputs": {"text": "')  # fmt: skip
        gone = 'n2m_http_requests_total{method="POST",path="/v1/predict",status="499"} 3.0'
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            metrics = httpx.get(f"{url}/metrics").text
            if gone in metrics:
                break
            time.sleep(0.1)
        assert gone in metrics, metrics
        assert 'status="500"' not in metrics
        assert 'n2m_http_request_duration_seconds_count{path="/v1/predict"}' not in metrics


def test_queued_work_of_clients_that_have_gone_is_dropped(sts_predictor):
    """While the model is busy, five clients queue a request each and give up (their connection closes): none of
    their inputs reaches the model, and the server still answers the next client."""
    gated = GatedPredictor(sts_predictor)
    app = create_app(gated, limits=Limits(max_queue=16, max_inputs=4), max_batch_size=1, max_wait_ms=0)

    async def scenario(url: str) -> None:
        async with httpx.AsyncClient(base_url=url, timeout=60) as http:
            running = asyncio.create_task(http.post("/v1/predict", json={"inputs": PAIR}))
            await asyncio.sleep(0.3)  # the worker took it and waits at the gate
            async with httpx.AsyncClient(base_url=url, timeout=0.5) as impatient:
                gone = await asyncio.gather(
                    *(impatient.post("/v1/predict", json={"inputs": PAIR}) for _ in range(5)), return_exceptions=True
                )
            assert all(isinstance(g, httpx.TimeoutException) for g in gone)
            await asyncio.sleep(0.5)  # the server notices the closed connections
            gated.gate.set()
            assert (await running).status_code == 200
            assert (await http.post("/v1/predict", json={"inputs": PAIR})).status_code == 200
            assert gated.batches == [1, 1]  # the first request and the last: nothing for the five that left
            metrics = (await http.get("/metrics")).text
            assert 'n2m_rejected_requests_total{reason="client_gone"} 5.0' in metrics

    with LiveServer(app) as url:
        asyncio.run(scenario(url))


def test_a_body_that_does_not_arrive_in_time_gets_408_and_the_connection_is_freed(sts_predictor):
    """A client that sends headers and then a trickle (or nothing) does not hold a connection for ever."""
    import socket

    limits = Limits(max_body_bytes=20_000, max_inputs=4, max_chars=50, max_queue=64, body_timeout_s=0.5)
    with LiveServer(create_app(sts_predictor, name="tiny-sts", limits=limits)) as url:
        port = int(url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
            conn.sendall(b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                         b"Content-Length: 500\r\n\r\n" + b'{"inputs": ')  # fmt: skip
            started = time.monotonic()
            first = conn.recv(4096)  # the answer's first packet: when the server gave up waiting
            waited = time.monotonic() - started
            received = [first]
            while received[-1]:  # the server closes the connection after its answer (headers, body may be apart)
                received.append(conn.recv(4096))
            answer = b"".join(received).decode("utf-8", "replace")
        assert answer.startswith("HTTP/1.1 408") and "not received within 0.5 s" in answer
        assert 0.4 <= waited < 5
        assert httpx.post(f"{url}/v1/predict", json={"inputs": PAIR}).status_code == 200
        assert 'n2m_rejected_requests_total{reason="body_timeout"} 1.0' in httpx.get(f"{url}/metrics").text


def test_an_input_longer_than_the_model_reads_is_marked_as_cut(sts_predictor):
    """The model reads `max_tokens` tokens of a text; a longer one is cut, and the answer says which inputs were."""
    with TestClient(create_app(sts_predictor, name="tiny-sts")) as client:
        max_tokens = client.get("/v1/model").json()["limits"]["max_tokens"]
        long = " ".join(["가나다라마바사"] * max_tokens)  # far more tokens than the window
        answer = client.post("/v1/predict", json={"inputs": [PAIR, {"text": long, "text_pair": "짧다"}, PAIR]})
        assert answer.status_code == 200 and answer.json()["truncated"] == [1]
        assert client.post("/v1/predict", json={"inputs": PAIR}).json()["truncated"] == []
        assert (
            "truncated" in client.get("/openapi.json").json()["components"]["schemas"]["PredictResponse"]["properties"]
        )


def test_the_page_shows_the_models_own_title_not_its_folder_name(sts_dir, tmp_path):
    """`provenance.title` in the card (written by `n2m export`) is the title in /v1/model; without one, the folder's
    name; `--name` (create_app's `title`) overrides both."""
    import shutil

    folder = tmp_path / "model"  # what the quick start's folder is called
    shutil.copytree(sts_dir, folder, ignore=shutil.ignore_patterns("*.onnx"))
    card = json.loads((folder / "n2m.json").read_text(encoding="utf-8"))

    def title(**options: str) -> tuple[str, str]:
        (folder / "n2m.json").write_text(json.dumps(card, ensure_ascii=False), encoding="utf-8")
        with TestClient(create_app(Predictor.from_pretrained(folder), name=folder.name, **options)) as c:
            view = c.get("/v1/model").json()
        return view["name"], view["title"]

    card["provenance"]["title"] = "KorSTS 문장 유사도 (e5-small)"
    assert title() == ("model", "KorSTS 문장 유사도 (e5-small)")
    assert title(title="my model") == ("model", "my model")
    card["provenance"].pop("title")
    assert title() == ("model", "model")


def test_a_flood_of_refused_connections_is_one_log_line_per_class():
    """asyncio logs a traceback each time accept() finds no file descriptor left (6,141 of them in one flood):
    the first of a class is one line, the rest are counted only."""
    import logging

    from n2m.serve.connections import RejectionLog

    class Kept(logging.Handler):
        def __init__(self) -> None:
            super().__init__()
            self.records: list[logging.LogRecord] = []

        def emit(self, record: logging.LogRecord) -> None:
            self.records.append(record)

    kept = Kept()
    loggers = [logging.getLogger(name) for name in ("asyncio", "uvicorn.error")]
    counted: list[str] = []
    rejections = RejectionLog(counted.append)
    rejections.install()
    for logger in loggers:
        logger.addHandler(kept)
    try:
        for _ in range(50):
            try:
                raise OSError(24, "Too many open files")
            except OSError:
                loggers[0].error("socket.accept() out of system resource\nsocket: <s>", exc_info=True)
            loggers[1].warning("Exceeded concurrency limit.")
        loggers[1].warning("something else")
    finally:
        rejections.uninstall()
        for logger in loggers:
            logger.removeHandler(kept)
    assert counted.count("out_of_file_descriptors") == 50 and counted.count("max_connections") == 50
    lines = [record.getMessage() for record in kept.records]
    assert len(lines) == 3 and lines[2] == "something else"
    assert all(record.exc_info is None for record in kept.records)  # no traceback
    assert lines[0].startswith("socket.accept() out of system resource (reason out_of_file_descriptors")
    assert "\n" not in lines[0] and 'n2m_rejected_connections_total{reason="max_connections"}' in lines[1]
