"""Embeddings, rerank and search served (issue 18): the official `openai` client against a real `n2m serve`
process on loopback, TEI-style rerank for a bi-encoder (cosine) and a cross-encoder (its pair score), search over
a corpus loaded at start-up, and every bad input a clear 4xx (or a one-line error at start-up)."""

from __future__ import annotations

import asyncio
import base64
import signal
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient
from serve_models import STS, LiveServer, free_port, sts_model, train_and_export, wait_for_http
from test_serve_cli import n2m

from n2m import Predictor
from n2m.serve import Limits, create_app
from n2m.serve.corpus import encode_corpus
from n2m.shapes.n21.search import top_k

SENTENCES = ["한 남자가 기타를 치고 있다.", "고양이가 소파에서 잔다.", "주식 시장이 올랐다.", "a man plays the guitar"]
SMALL = Limits(max_body_bytes=20_000, max_inputs=4, max_chars=50, max_queue=64)


@pytest.fixture(scope="module")
def sts_dir(tiny_backbone, korsts_slice, tmp_path_factory) -> Path:
    return sts_model(tiny_backbone, korsts_slice, tmp_path_factory.mktemp("serve-models"))


@pytest.fixture(scope="module")
def bi(sts_dir):
    return Predictor.from_pretrained(sts_dir)


@pytest.fixture(scope="module")
def cross_dir(tiny_backbone, korsts_slice, tmp_path_factory) -> Path:
    """A cross-encoder STS model (pair → 0–5 score), 2 training steps."""
    root = tmp_path_factory.mktemp("serve-cross")
    return train_and_export(tiny_backbone, korsts_slice, STS, "regression", root / "sts-cross", "cross", max_steps=2)


@pytest.fixture(scope="module")
def cross(cross_dir):
    return Predictor.from_pretrained(cross_dir)


@pytest.fixture(scope="module")
def corpus_file(korsts_slice, tmp_path_factory) -> Path:
    """40 real KorSTS sentences, with ids."""
    lines = korsts_slice["train"].read_text(encoding="utf-8").splitlines()[1:41]
    rows = ["id\ttext"] + [f"doc{i}\t{line.split(chr(9))[5]}" for i, line in enumerate(lines)]
    path = tmp_path_factory.mktemp("corpus") / "sentences.tsv"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def served(sts_dir, corpus_file):
    """`n2m serve` as a user runs it, with a corpus: (url, output so far)."""
    port = free_port()
    process = n2m("serve", str(sts_dir), "--port", str(port), "--corpus", str(corpus_file), "--corpus-id", "id")
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(f"{url}/healthz", timeout=120)
        yield url
    finally:
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=30)
    assert process.returncode == 0, output
    assert "the corpus: 40 texts of" in output
    assert "encoded and saved the vectors of 40 documents" in output and "(exact search" in output


def unit(vectors: np.ndarray) -> np.ndarray:
    return vectors / np.linalg.norm(vectors, axis=-1, keepdims=True)


def test_the_openai_client_gets_the_predictors_vectors(served, bi):
    from openai import OpenAI

    client = OpenAI(base_url=f"{served}/v1", api_key="unused", max_retries=0)
    expected = bi.encode(SENTENCES)
    floats = client.embeddings.create(model="anything", input=SENTENCES, encoding_format="float")
    assert floats.object == "list" and floats.model == "sts"  # the served model's name (its folder's)
    assert [d.index for d in floats.data] == [0, 1, 2, 3] and all(d.object == "embedding" for d in floats.data)
    assert np.abs(np.array([d.embedding for d in floats.data]) - expected).max() < 1e-5
    # the client's default: it asks for base64 and decodes it itself
    default = client.embeddings.create(model="anything", input=SENTENCES)
    assert np.abs(np.array([d.embedding for d in default.data]) - expected).max() < 1e-5
    raw = client.embeddings.create(model="anything", input=SENTENCES[0], encoding_format="base64")
    decoded = np.frombuffer(base64.b64decode(raw.data[0].embedding), dtype="<f4")
    assert len(raw.data) == 1 and np.abs(decoded - expected[0]).max() < 1e-5
    counts = bi.text_token_counts(SENTENCES)
    assert floats.usage.prompt_tokens == floats.usage.total_tokens == sum(counts)
    assert np.linalg.norm(expected, axis=1) == pytest.approx(1.0, abs=1e-5)
    passages = client.embeddings.create(model="m", input=SENTENCES, extra_body={"input_type": "passage"})
    got = np.array([d.embedding for d in passages.data])
    assert np.abs(got - bi.encode(SENTENCES, kind="passage")).max() < 1e-5


def test_model_states_the_endpoints_limits_and_the_long_text_rule(served, bi, sts_dir):
    view = httpx.get(f"{served}/v1/model").json()
    assert view["endpoints"] == ["/v1/predict", "/v1/embeddings", "/v1/rerank", "/v1/search"]
    assert view["embedding_dimensions"] == bi.dimension
    assert view["corpus"] == {"source": "sentences.tsv", "documents": 40}
    assert view["limits"]["max_inputs"] == 64 and view["limits"]["max_tokens"] == bi.card.encoding.max_length
    assert "cut to its first max_tokens" in view["long_texts"]
    paths = httpx.get(f"{served}/openapi.json").json()["paths"]
    for path in ("/v1/embeddings", "/v1/rerank", "/v1/search"):
        assert {"200", "408", "413", "422", "503"} <= set(paths[path]["post"]["responses"]), path


def test_a_thousand_inputs_are_refused_with_the_stated_limit(served):
    texts = [f"문장 {i}" for i in range(1000)]
    response = httpx.post(f"{served}/v1/embeddings", json={"input": texts, "model": "m"}, timeout=60)
    assert response.status_code == 422
    assert response.json()["error"].startswith("input: too many inputs in one request: should have at most 64 items")
    assert httpx.post(f"{served}/v1/embeddings", json={"input": texts[:64]}, timeout=120).status_code == 200


def test_a_text_longer_than_the_model_reads_is_cut_and_said(served, bi):
    long = "가나다라마바사 " * 60  # far more than the 48 tokens this model reads
    body = httpx.post(f"{served}/v1/embeddings", json={"input": ["짧다", long]}, timeout=60).json()
    assert body["truncated"] == [1]
    assert body["usage"]["prompt_tokens"] == bi.text_token_counts(["짧다"])[0] + bi.card.encoding.max_length
    assert np.abs(np.array(body["data"][1]["embedding"]) - bi.encode([long])[0]).max() < 1e-5
    # rerank's answer is a bare list: the header names the long query and documents; search says it in the body
    reranked = httpx.post(
        f"{served}/v1/rerank", json={"query": long, "documents": ["짧다", long, "길지 않다"]}, timeout=60
    )
    assert reranked.status_code == 200 and reranked.headers["X-N2M-Truncated"] == "query,1"
    short = httpx.post(f"{served}/v1/rerank", json={"query": "짧다", "documents": ["짧다"]}, timeout=60)
    assert "X-N2M-Truncated" not in short.headers
    assert httpx.post(f"{served}/v1/search", json={"query": long}, timeout=60).json()["truncated"] is True


# (body, the error must contain)
BAD_EMBEDDINGS: dict[str, tuple[dict[str, Any], str]] = {
    "empty text": ({"input": ""}, "input: empty text"),
    "nothing visible in a list": ({"input": ["ok", " \u200b "]}, "input[1]: empty text"),
    "control character": ({"input": "a\x07b"}, "input: control character U+0007 at character 1"),
    "token ids": ({"input": [1, 2, 3]}, "input[0]: Input should be a valid string"),
    "empty list": ({"input": []}, "input: List should have at least 1 item"),
    "over max chars": ({"input": "가" * 2001}, "input: text too long: should have at most 2000 characters"),
    "unknown format": ({"input": "a", "encoding_format": "int8"}, "encoding_format: Input should be 'float' or"),
    "other dimensions": ({"input": "a", "dimensions": 8}, "dimensions: this model gives vectors of"),
    "unknown field": ({"input": "a", "normalize": False}, "normalize: unknown field"),
    "no input": ({"model": "m"}, "input: Field required"),
}


@pytest.mark.parametrize("case", list(BAD_EMBEDDINGS))
def test_bad_embedding_requests_get_a_clear_422(served, case):
    body, message = BAD_EMBEDDINGS[case]
    response = httpx.post(f"{served}/v1/embeddings", json=body, timeout=30)
    assert response.status_code == 422, response.text
    assert message in response.json()["error"]
    assert httpx.post(f"{served}/v1/embeddings", json={"input": "다시"}, timeout=30).status_code == 200


def test_rerank_by_cosine_for_a_bi_encoder(served, bi):
    query, documents = "남자가 기타를 연주한다.", SENTENCES
    cosine = bi.encode(documents, kind="passage") @ bi.encode([query])[0]
    answer = httpx.post(f"{served}/v1/rerank", json={"query": query, "documents": documents}, timeout=30).json()
    assert [r["index"] for r in answer] == sorted(range(4), key=lambda i: -cosine[i])
    assert [r["score"] for r in answer] == pytest.approx(sorted(cosine, reverse=True), abs=1e-5)
    assert all("document" not in r for r in answer)
    tei = {"query": query, "texts": documents, "top_n": 2, "return_documents": True}
    top = httpx.post(f"{served}/v1/rerank", json=tei, timeout=30).json()
    assert top == [{**r, "document": documents[r["index"]]} for r in answer[:2]]


BAD_RERANK: dict[str, tuple[dict[str, Any], str]] = {
    "no documents": ({"query": "q"}, "documents: Field required"),
    "both lists": ({"query": "q", "documents": ["a"], "texts": ["b"]}, "texts: unknown field"),
    "empty query": ({"query": " ", "documents": ["a"]}, "query: empty text"),
    "empty document": ({"query": "q", "texts": ["a", ""]}, "texts[1]: empty text"),
    "too many": ({"query": "q", "documents": ["a"] * 65}, "documents: too many documents in one request"),
    "top_n zero": ({"query": "q", "documents": ["a"], "top_n": 0}, "top_n: Input should be greater than or equal"),
}


@pytest.mark.parametrize("case", list(BAD_RERANK))
def test_bad_rerank_requests_get_a_clear_422(served, case):
    body, message = BAD_RERANK[case]
    response = httpx.post(f"{served}/v1/rerank", json=body, timeout=30)
    assert response.status_code == 422, response.text
    assert message in response.json()["error"]


def test_search_finds_what_exact_cosine_search_finds(served, bi, corpus_file):
    rows = [line.split("\t") for line in corpus_file.read_text(encoding="utf-8").splitlines()[1:]]
    ids, texts = [r[0] for r in rows], [r[1] for r in rows]
    query = texts[7]
    scores, found = top_k(bi.encode([query]), bi.encode(texts, kind="passage"), 5)
    answer = httpx.post(f"{served}/v1/search", json={"query": query, "top_k": 5}, timeout=30).json()
    assert answer["documents"] == 40 and answer["truncated"] is False
    assert [h["id"] for h in answer["hits"]] == [ids[i] for i in found[0]]
    assert [h["rank"] for h in answer["hits"]] == [1, 2, 3, 4, 5]
    assert [h["score"] for h in answer["hits"]] == pytest.approx(scores[0].tolist(), abs=1e-5)
    assert answer["hits"][0]["text"] == texts[found[0][0]]
    too_many = httpx.post(f"{served}/v1/search", json={"query": query, "top_k": 101}, timeout=30)
    assert too_many.status_code == 422 and "top_k: Input should be less than or equal to 100" in too_many.text
    page = httpx.get(f"{served}/search")
    assert page.status_code == 200 and "/static/app.js" in page.text


def test_a_corpus_served_through_the_graph_index_is_read_back_at_the_next_start(sts_dir, bi, corpus_file, tmp_path):
    """`--index usearch` as `n2m search` has it: the vectors and graph saved beside the corpus at the first start,
    read back (not encoded) at the second, and the hits those of exact search on a corpus this small."""
    corpus = tmp_path / corpus_file.name
    corpus.write_bytes(corpus_file.read_bytes())
    texts = [line.split("\t")[1] for line in corpus.read_text(encoding="utf-8").splitlines()[1:]]
    _, found = top_k(bi.encode([texts[3]]), bi.encode(texts, kind="passage"), 3)
    outputs = []
    for _ in range(2):
        port = free_port()
        process = n2m("serve", str(sts_dir), "--port", str(port), "--corpus", str(corpus), "--index", "usearch")
        try:
            wait_for_http(f"http://127.0.0.1:{port}/healthz", timeout=120)
            body = {"query": texts[3], "top_k": 3}
            hits = httpx.post(f"http://127.0.0.1:{port}/v1/search", json=body, timeout=30).json()["hits"]
            assert [int(h["id"]) for h in hits] == found[0].tolist()
        finally:
            process.send_signal(signal.SIGTERM)
            outputs.append(process.communicate(timeout=30)[0])
    assert "encoded and saved the vectors of 40 documents" in outputs[0] and "(usearch search" in outputs[0]
    assert "read the saved vectors of 40 documents" in outputs[1] and "(usearch search" in outputs[1]
    assert len(list(Path(f"{corpus}.n2m-index").glob("*/index.usearch"))) == 1


def test_a_cross_encoder_reranks_by_its_pair_score_and_has_no_vectors(cross):
    query, documents = "남자가 기타를 연주한다.", SENTENCES
    expected = [p.score for p in cross.predict([(query, d) for d in documents])]
    with TestClient(create_app(cross, name="tiny-cross", limits=SMALL)) as client:
        view = client.get("/v1/model").json()
        assert view["endpoints"] == ["/v1/predict", "/v1/rerank"] and view["embedding_dimensions"] is None
        answer = client.post("/v1/rerank", json={"query": query, "documents": documents}).json()
        assert [r["index"] for r in answer] == sorted(range(4), key=lambda i: (-expected[i], i))
        assert [r["score"] for r in answer] == pytest.approx(sorted(expected, reverse=True), abs=1e-5)
        refused = client.post("/v1/embeddings", json={"input": "a"})
        assert refused.status_code == 404
        assert "cross-encoder" in refused.json()["error"] and "no vector per text" in refused.json()["error"]
        assert client.post("/v1/search", json={"query": "a"}).status_code == 404
        assert "/v1/embeddings" not in client.get("/openapi.json").json()["paths"]


class PairClassifier:
    """Stands in for an NLI cross-encoder: classes per pair, no score to rank by and no vectors."""

    def __init__(self) -> None:
        self.info = {"shape": "N21", "task": "classification", "inputs": ["text", "text_pair"], "labels": ["y", "n"]}

    def predict(self, inputs: list[Any], batch_size: int = 16) -> list[dict[str, Any]]:
        return [{"label": "y", "probabilities": {"y": 1.0, "n": 0.0}} for _ in inputs]


def test_a_model_that_cannot_rank_says_why():
    with TestClient(create_app(PairClassifier(), name="nli")) as client:
        refused = client.post("/v1/rerank", json={"query": "q", "documents": ["a"]})
        assert refused.status_code == 404 and "cannot rank documents" in refused.json()["error"]
        assert client.get("/v1/model").json()["endpoints"] == ["/v1/predict"]


def test_embeddings_and_predictions_share_the_micro_batches(bi):
    corpus = encode_corpus(bi, SENTENCES, "four.tsv")
    app = create_app(bi, name="tiny-sts", corpus=corpus, max_batch_size=64, max_wait_ms=50)
    pair = {"text": SENTENCES[0], "text_pair": SENTENCES[1]}

    async def scenario(url: str) -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=url, timeout=60) as http:
            calls = [http.post("/v1/embeddings", json={"input": SENTENCES}) for _ in range(6)]
            calls += [http.post("/v1/predict", json={"inputs": pair}) for _ in range(6)]
            calls += [http.post("/v1/search", json={"query": SENTENCES[2], "top_k": 2}) for _ in range(6)]
            return await asyncio.gather(*calls)

    with LiveServer(app) as url:
        answers = asyncio.run(scenario(url))
        metrics = httpx.get(f"{url}/metrics").text
    assert all(a.status_code == 200 for a in answers)
    expected = bi.encode(SENTENCES)
    for answer in answers[:6]:
        assert np.abs(np.array([d["embedding"] for d in answer.json()["data"]]) - expected).max() < 1e-5
    score = bi.predict([pair])[0].score
    assert all(a.json()["predictions"][0]["score"] == pytest.approx(score, abs=1e-5) for a in answers[6:12])
    assert all(a.json()["hits"][0]["id"] == "2" for a in answers[12:])
    batches = float(next(line.split()[-1] for line in metrics.splitlines() if line.startswith("n2m_batch_size_count")))
    assert batches < 18  # 18 requests, fewer forward passes: they were batched together


def empty_and_blank(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    empty = tmp_path / "empty.tsv"
    empty.write_text("text\n", encoding="utf-8")
    blank = tmp_path / "blank.tsv"
    blank.write_text("id\ttext\n1\t첫 문장\n2\t \n3\t셋째\n", encoding="utf-8")
    return {"empty": (empty, f"{empty}: has no rows"), "blank": (blank, f"{blank}, line 3, column 'text': empty text")}


@pytest.mark.parametrize("case", ["empty", "blank", "no column", "cross-encoder"])
def test_a_bad_corpus_is_one_line_and_exit_2(case, sts_dir, cross_dir, tmp_path):
    files = empty_and_blank(tmp_path)
    model, options, message = str(sts_dir), [], ""
    if case in files:
        path, message = files[case]
    else:
        path = files["blank"][0]
    if case == "no column":
        options, message = ["--corpus-column", "answer"], "missing column 'answer'"
    if case == "cross-encoder":
        good = tmp_path / "good.tsv"
        good.write_text("text\n하나\n둘\n", encoding="utf-8")
        path, message = good, "--corpus needs a model with sentence vectors"
        model = str(cross_dir)
    process = n2m("serve", model, "--port", str(free_port()), "--corpus", str(path), *options)
    output, _ = process.communicate(timeout=120)
    assert process.returncode == 2, output
    lines = [line for line in output.splitlines() if line.startswith("n2m: error:")]
    assert len(lines) == 1 and message in lines[0], output
    assert "Traceback" not in output


def test_the_onnx_backend_serves_vectors_and_reranks(sts_dir, bi):
    """The ONNX graph's pooled output gives the torch backend's vectors (an odd count too: a pair graph takes
    them as two halves), and rerank agrees with the cosine."""
    from n2m.shapes.n21.onnx import export_onnx

    export_onnx(sts_dir)
    onnx = Predictor.from_pretrained(sts_dir, backend="onnx")
    query, documents = "남자가 기타를 연주한다.", SENTENCES
    with TestClient(create_app(onnx, name="tiny-sts", backend="onnx")) as client:
        view = client.get("/v1/model").json()
        assert "/v1/embeddings" in view["endpoints"]
        for texts in (documents, documents[:3]):
            body = client.post("/v1/embeddings", json={"input": texts}).json()
            assert np.abs(np.array([d["embedding"] for d in body["data"]]) - bi.encode(texts)).max() < 1e-4
        cosine = bi.encode(documents, kind="passage") @ bi.encode([query])[0]
        ranked = client.post("/v1/rerank", json={"query": query, "documents": documents}).json()
        assert [r["index"] for r in ranked] == sorted(range(4), key=lambda i: -cosine[i])
