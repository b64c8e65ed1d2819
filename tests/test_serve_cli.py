"""`n2m serve` as a user runs it: a separate process on a free port, both backends, clean exit, clear errors."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from serve_models import free_port, sts_model, wait_for_http

from n2m.shapes.n21.onnx import export_onnx

PAIR = {"text": "한 남자가 기타를 치고 있다.", "text_pair": "남자가 기타를 연주한다."}


@pytest.fixture(scope="module")
def sts_dir(tiny_backbone, korsts_slice, tmp_path_factory) -> Path:
    return sts_model(tiny_backbone, korsts_slice, tmp_path_factory.mktemp("serve-models"))


def n2m(*args: str, **kwargs) -> subprocess.Popen:
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false", "HF_HUB_OFFLINE": "1"}
    command = [sys.executable, "-c", "from n2m.cli import main; main()", *args]
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kwargs)


@pytest.mark.parametrize("backend", ["torch", "onnx"])
def test_serve_command_answers_and_exits_cleanly(sts_dir, backend):
    if backend == "onnx":
        export_onnx(sts_dir)
    port = free_port()
    process = n2m("serve", str(sts_dir), "--port", str(port), "--backend", backend, "--max-batch-size", "8")
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(f"{url}/healthz")
        view = httpx.get(f"{url}/v1/model").json()
        assert view["name"] == sts_dir.name and view["backend"].startswith(backend)
        card = json.loads((sts_dir / "n2m.json").read_text(encoding="utf-8"))
        assert view["title"] == card["provenance"].get("title", sts_dir.name)  # the model's own, else the folder's
        response = httpx.post(f"{url}/v1/predict", json={"inputs": [PAIR, PAIR]})
        assert response.status_code == 200 and len(response.json()["predictions"]) == 2
        page = httpx.get(url)
        assert page.status_code == 200 and '<script src="/static/app.js"></script>' in page.text
        assert httpx.get(f"{url}/static/app.css").headers["content-type"].startswith("text/css")
    finally:  # a scheduler's SIGTERM and a terminal's Ctrl-C both end it cleanly, exit 0
        process.send_signal(signal.SIGTERM if backend == "torch" else signal.SIGINT)
        output, _ = process.communicate(timeout=30)
    assert process.returncode == 0, output
    assert f"serving {sts_dir}" in output and "/openapi.json" in output


def test_serve_without_an_onnx_file_says_what_to_run(sts_dir, tmp_path):
    folder = tmp_path / "no-onnx"
    shutil.copytree(sts_dir, folder, ignore=shutil.ignore_patterns("*.onnx"))
    process = n2m("serve", str(folder), "--port", str(free_port()), "--backend", "onnx")
    output, _ = process.communicate(timeout=120)
    assert process.returncode == 2
    assert "n2m: error:" in output and "n2m export CKPT" in output and "--onnx" in output
    assert "Traceback" not in output


@pytest.mark.parametrize(
    "damage", ["n2m.json not JSON", "n2m.json without shape", "model.safetensors cut", "model.safetensors empty"]
)
def test_a_broken_model_folder_is_one_line_not_a_traceback(sts_dir, tmp_path, damage):
    folder = tmp_path / "broken"
    shutil.copytree(sts_dir, folder, ignore=shutil.ignore_patterns("*.onnx"))
    name, what = damage.split(" ", 1)
    original = (folder / name).read_bytes()
    broken = {"not JSON": original[:40], "without shape": b'{"format_version": 2, "task": "regression"}',
              "cut": original[: len(original) // 2], "empty": b""}[what]  # fmt: skip
    (folder / name).write_bytes(broken)
    process = n2m("serve", str(folder), "--port", str(free_port()))
    output, _ = process.communicate(timeout=120)
    assert process.returncode == 2, output
    assert "n2m: error:" in output and str(folder) in output and "Traceback" not in output


def test_serve_help_lists_the_knobs():
    process = n2m("serve", "--help")
    output, _ = process.communicate(timeout=60)
    assert process.returncode == 0
    for option in ("--backend {torch,onnx}", "--max-batch-size", "--max-wait-ms", "--max-queue", "--max-chars",
                   "--body-timeout", "--max-connections", "--keep-alive"):  # fmt: skip
        assert option in output


def answer_of(conn: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (or 10 s pass)."""
    conn.settimeout(10)
    received = b""
    while chunk := conn.recv(4096):
        received += chunk
    return received


def test_connections_past_the_cap_are_refused_cleanly_and_logged_once(sts_dir):
    """`--max-connections 4`: four connections are served; requests on more get 503 and their connection closed,
    malformed HTTP gets 400, a connection that says nothing is closed after `--keep-alive`; the server answers
    afterwards, logs one line per class (no traceback, no line each) and counts every one in /metrics."""
    port = free_port()
    options = ["--max-connections", "4", "--keep-alive", "2", "--body-timeout", "60"]
    process = n2m("serve", str(sts_dir), "--port", str(port), *options)
    url = f"http://127.0.0.1:{port}"
    held: list[socket.socket] = []
    try:
        wait_for_http(f"{url}/healthz")
        for _ in range(4):  # four requests in progress: their bodies are on the way (body timeout: 60 s)
            conn = socket.create_connection(("127.0.0.1", port), timeout=10)
            conn.sendall(b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                         b"Content-Length: 500\r\n\r\n" + b'{"inputs": ')  # fmt: skip
            held.append(conn)
        time.sleep(0.5)
        for _ in range(6):
            with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
                conn.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                answer = answer_of(conn)
            assert answer.startswith(b"HTTP/1.1 503") and b"connection: close" in answer.lower(), answer
        for _ in range(3):
            with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
                conn.sendall(b"NOT HTTP AT ALL\r\n\r\n")
                assert answer_of(conn).startswith(b"HTTP/1.1 400")
        for conn in held:
            conn.close()
        wait_for_http(f"{url}/healthz", timeout=20)  # the slots are free again
        with socket.create_connection(("127.0.0.1", port), timeout=10) as silent:
            started = time.monotonic()
            assert answer_of(silent) == b""  # closed by the server, not held for ever
            assert time.monotonic() - started < 8
        assert httpx.post(f"{url}/v1/predict", json={"inputs": PAIR}, timeout=30).status_code == 200
        metrics = httpx.get(f"{url}/metrics").text
        assert 'n2m_rejected_connections_total{reason="max_connections"} 6.0' in metrics
        assert 'n2m_rejected_connections_total{reason="invalid_http"} 3.0' in metrics
    finally:
        for conn in held:
            conn.close()
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=30)
    assert process.returncode == 0, output
    assert output.count("Exceeded concurrency limit") == 1, output
    assert output.count("Invalid HTTP request received") == 1, output
    assert "Traceback" not in output
