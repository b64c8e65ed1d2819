"""Serving under load: `n2m serve` (PyTorch and ONNX Runtime backends) vs an HF `pipeline` behind the same
minimal FastAPI endpoint, on the same exported KorSTS model, in one run on the same machine.

Each system is a uvicorn server in its own process on loopback; a bounded async client (httpx, `c`
workers sharing a fixed list of requests) sends one KorSTS test pair per request at concurrency 1, 8
and 32. Reported per level: requests/s, p50 / p99 latency, failed requests, and the server's peak RSS.
On a shared machine each level first waits until other processes are quiet, and reports the cores other
processes took while it ran (`other_cores`, near 0 when the figures are the system's alone). With 1379
requests per level every KorSTS test pair is served once, and the Pearson of what was served is reported.

The baseline is what a user writes for this bi-encoder with the ordinary tool: the exported encoder
saved as a plain HF folder, `pipeline("feature-extraction")` on each sentence (with the model's
`query: ` prefix and max length), mean pooling, cosine similarity mapped to 0–5, one request at a time.
The script checks that it gives the same scores as n2m before timing anything.

    python benchmarks/serve_load.py --model runs/korsts-export                 # full run → results/serve_load.json
    python benchmarks/serve_load.py --model runs/korsts-export --quick         # a smoke run → serve_load.quick.json
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from _measure import machine, today  # noqa: E402
from docs_pages import write_pages  # noqa: E402

RESULTS = ROOT / "benchmarks/results"
KORSTS_TEST = ROOT / "data/korsts/sts-test.tsv"


# ---------------------------------------------------------------- the baseline: an HF pipeline server


def write_hf_folder(model_dir: Path, out: Path) -> Path:
    """The exported encoder as a plain HF folder (`encoder.` prefix dropped), loadable by `pipeline`."""
    from safetensors.torch import load_file, save_file
    from transformers import AutoConfig, AutoTokenizer

    weights = load_file(str(model_dir / "model.safetensors"))
    encoder = {k.removeprefix("encoder."): v for k, v in weights.items() if k.startswith("encoder.")}
    if len(encoder) != len(weights):
        raise SystemExit(f"{model_dir} has a head besides the encoder: this baseline covers cosine bi-encoders")
    out.mkdir(parents=True, exist_ok=True)
    save_file(encoder, str(out / "model.safetensors"), metadata={"format": "pt"})
    AutoConfig.from_pretrained(model_dir).save_pretrained(out)
    AutoTokenizer.from_pretrained(model_dir).save_pretrained(out)
    return out


def pipeline_app(hf_dir: str, prefix: str, max_length: int, low: float, high: float):
    """What a user writes: a pipeline, a lock (one request at a time), the same JSON in and out."""
    import threading

    import torch
    from fastapi import FastAPI
    from transformers import pipeline

    extractor = pipeline(
        "feature-extraction",
        model=hf_dir,
        tokenizer=hf_dir,
        device=-1,
        tokenize_kwargs={"truncation": True, "max_length": max_length},
    )
    lock = threading.Lock()
    app = FastAPI()

    @app.get("/healthz")
    def healthz() -> dict:
        return {"status": "ok"}

    @app.post("/v1/predict")
    def predict(body: dict) -> dict:
        item = body["inputs"]
        with lock:
            a, b = extractor([prefix + item["text"], prefix + item["text_pair"]], return_tensors=True)
        u, v = a[0].mean(0), b[0].mean(0)
        score = low + float(torch.cosine_similarity(u, v, dim=0)) * (high - low)
        return {"predictions": [{"score": score}]}

    return app


def serve_pipeline(args: argparse.Namespace) -> None:
    import uvicorn

    app = pipeline_app(args.serve_hf, args.prefix, args.max_length, args.low, args.high)
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False)


# ---------------------------------------------------------------- the client


def read_pairs() -> tuple[list[dict[str, str]], list[float]]:
    with KORSTS_TEST.open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    return [{"text": r["sentence1"], "text_pair": r["sentence2"]} for r in rows], [float(r["score"]) for r in rows]


async def drive(url: str, pairs: list[dict[str, str]], requests: int, concurrency: int) -> tuple[dict, list]:
    """`requests` requests by `concurrency` workers; every request is counted, failures included.
    Also returns the score of each request (None where it failed), in request order."""
    import httpx
    import numpy as np

    latencies: list[float] = []
    scores: list[float | None] = [None] * requests
    errors = 0
    next_index = 0
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as client:

        async def worker() -> None:
            nonlocal next_index, errors
            while next_index < requests:
                index = next_index
                next_index += 1
                started = time.perf_counter()
                try:
                    response = await client.post("/v1/predict", json={"inputs": pairs[index % len(pairs)]})
                    ok = response.status_code == 200
                    scores[index] = response.json()["predictions"][0]["score"] if ok else None
                except (httpx.HTTPError, ValueError, KeyError, IndexError):
                    ok = False
                latencies.append(time.perf_counter() - started)
                errors += not ok

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        wall = time.perf_counter() - started
    ms = np.array(latencies) * 1000
    result = {
        "rps": round(requests / wall, 2),
        "p50_ms": round(float(np.percentile(ms, 50)), 1),
        "p99_ms": round(float(np.percentile(ms, 99)), 1),
        "errors": errors,
        "requests": requests,
    }
    return result, scores


TICK = os.sysconf("SC_CLK_TCK")


def busy_cpu_seconds() -> float:
    """CPU time the whole machine has spent busy (all processes, all cores), from /proc/stat."""
    user, nice, system, _idle, _iowait, irq, softirq, steal = map(int, Path("/proc/stat").read_text().split()[1:9])
    return (user + nice + system + irq + softirq + steal) / TICK


def process_cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime + stime, all threads


def other_cores(pids: list[int], seconds: float = 5.0) -> float:
    """Cores busy with processes other than `pids` over a few seconds (0 on a quiet machine)."""
    before = busy_cpu_seconds() - sum(process_cpu_seconds(p) for p in pids)
    time.sleep(seconds)
    return (busy_cpu_seconds() - sum(process_cpu_seconds(p) for p in pids) - before) / seconds


def wait_for_quiet(pids: list[int], limit: float, max_wait: float) -> float:
    """Wait (up to `max_wait` s) until other processes use under `limit` cores: a shared machine's other jobs
    would otherwise be timed as part of whichever system happens to run beside them."""
    deadline = time.monotonic() + max_wait
    while True:
        busy = other_cores(pids)
        if busy < limit or time.monotonic() > deadline:
            return busy
        print(f"  waiting for a quiet machine: other processes use {busy:.2f} cores", flush=True)
        time.sleep(25)


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return float("nan")


def wait_until_up(url: str, process: subprocess.Popen, timeout: float = 300) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"server exited with {process.returncode}")
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise SystemExit(f"{url} did not come up in {timeout} s")


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def scores_of(url: str, pairs: list[dict[str, str]]) -> list[float]:
    import httpx

    return [
        httpx.post(f"{url}/v1/predict", json={"inputs": p}, timeout=60).json()["predictions"][0]["score"] for p in pairs
    ]


def run_system(
    name: str, command: list[str], args: argparse.Namespace, pairs: list[dict[str, str]]
) -> tuple[dict, list, list]:
    """Results per concurrency level, the scores of the first 16 pairs, and those of the last level's requests."""
    port = free_port()
    command = [arg.replace("{port}", str(port)) for arg in command]
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false", "HF_HUB_OFFLINE": "1"}
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(url, process)
        check = scores_of(url, pairs[:16])  # also warms the model up
        asyncio.run(drive(url, pairs, args.warmup, 8))  # warm-up under load, not timed
        levels, scores = {}, []
        mine = [os.getpid(), process.pid]
        for concurrency in args.concurrency:
            wait_for_quiet(mine, args.quiet_cores, args.max_quiet_wait)
            busy_before = busy_cpu_seconds()
            own_before = sum(process_cpu_seconds(p) for p in mine)
            started = time.perf_counter()
            result, scores = asyncio.run(drive(url, pairs, args.requests, concurrency))
            wall = time.perf_counter() - started
            own = sum(process_cpu_seconds(p) for p in mine) - own_before
            result["peak_rss_mb"] = peak_rss_mb(process.pid)
            # cores that other processes took meanwhile: near 0 means the figures are this system's alone
            result["other_cores"] = round(max(0.0, busy_cpu_seconds() - busy_before - own) / wall, 2)
            levels[str(concurrency)] = result
            print(f"{name:>14} c={concurrency:<3} {result}", flush=True)
        return levels, check, scores
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()


def markdown_table(report: dict) -> str:
    lines = [
        "| system | concurrency | requests/s | p50 ms | p99 ms | failed | peak RSS MB | other jobs (cores) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for system, levels in report["systems"].items():
        for concurrency, r in levels.items():
            lines.append(
                f"| {system} | {concurrency} | {r['rps']} | {r['p50_ms']} | {r['p99_ms']} | {r['errors']} "
                f"| {r['peak_rss_mb']} | {r['other_cores']} |"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=str(ROOT / "runs/korsts-export"), help="an exported KorSTS folder")
    parser.add_argument("--requests", type=int, default=1379, help="timed requests per level (1379: KorSTS test)")
    parser.add_argument("--warmup", type=int, default=64)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--max-batch-size", type=int, default=32)
    parser.add_argument("--max-wait-ms", type=float, default=5.0)
    parser.add_argument("--systems", nargs="+", default=["hf_pipeline", "n2m_torch", "n2m_onnx", "n2m_onnx_int8"])
    parser.add_argument("--quiet-cores", type=float, default=0.2, help="wait until others use fewer cores")
    parser.add_argument("--max-quiet-wait", type=float, default=1800, help="seconds to wait for that, per level")
    parser.add_argument("--quick", action="store_true", help="60 requests per level, to serve_load.quick.json")
    parser.add_argument("--serve-hf", help=argparse.SUPPRESS)  # internal: run the baseline server
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--prefix", default="", help=argparse.SUPPRESS)
    parser.add_argument("--max-length", type=int, default=128, help=argparse.SUPPRESS)
    parser.add_argument("--low", type=float, default=0.0, help=argparse.SUPPRESS)
    parser.add_argument("--high", type=float, default=1.0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_hf:
        serve_pipeline(args)
        return
    if args.quick:
        args.requests, args.warmup = min(args.requests, 60), min(args.warmup, 16)

    model = Path(args.model)
    info = json.loads((model / "n2m.json").read_text(encoding="utf-8"))
    if info.get("encoding", {}).get("pair_encoding") != "bi" or info.get("objective") != "regression":
        raise SystemExit(f"{model}: this benchmark serves a bi-encoder STS model (recipes/korsts.yaml)")
    if not (model / "model.onnx").is_file() or not (model / "model.int8.onnx").is_file():
        from n2m.shapes.n21.onnx import export_onnx

        print(f"writing ONNX files into {model}", flush=True)
        export_onnx(model, quantize="int8")
    low, high = info["score_range"]
    pairs, gold = read_pairs()
    python = sys.executable
    n2m = [python, "-c", "from n2m.cli import main; main()", "serve", str(model), "--port", "{port}"]
    n2m += ["--max-batch-size", str(args.max_batch_size), "--max-wait-ms", str(args.max_wait_ms)]
    n2m += ["--log-level", "warning", "--name", "korsts"]
    with tempfile.TemporaryDirectory() as tmp:
        hf_dir = write_hf_folder(model, Path(tmp) / "hf")
        baseline = [python, __file__, "--serve-hf", str(hf_dir), "--port", "{port}"]
        baseline += ["--prefix", info["encoding"]["text_prefix"], "--max-length", str(info["encoding"]["max_length"])]
        baseline += ["--low", str(low), "--high", str(high)]
        commands = {
            "hf_pipeline": baseline,
            "n2m_torch": [*n2m, "--backend", "torch"],
            "n2m_onnx": [*n2m, "--backend", "onnx", "--onnx-file", "model.onnx"],
            "n2m_onnx_int8": [*n2m, "--backend", "onnx", "--onnx-file", "model.int8.onnx"],
        }
        systems, checks, served = {}, {}, {}
        for name in args.systems:
            systems[name], checks[name], served[name] = run_system(name, commands[name], args, pairs)

    reference = checks.get("n2m_torch") or next(iter(checks.values()))
    agreement = {
        name: round(max(abs(a - b) for a, b in zip(s, reference, strict=True)), 6) for name, s in checks.items()
    }
    report = {
        "machine": machine(),
        "date": today(),
        "model": f"{model.name}: KorSTS bi-encoder ({info['backbone']}, {info['encoding']['max_length']} tokens max)",
        "systems": systems,
        "settings": {
            "requests_per_level": args.requests,
            "client": "httpx.AsyncClient, one KorSTS test pair per request, N workers over a fixed request list",
            "n2m": {"max_batch_size": args.max_batch_size, "max_wait_ms": args.max_wait_ms},
            "hf_pipeline": "pipeline('feature-extraction') + mean pooling + cosine, one request at a time (a lock)",
        },
        "max_score_difference_vs_n2m_torch": agreement,
    }
    if args.requests == len(pairs):  # every test pair served once at the last level: score what was served
        import numpy as np

        report["test_pearson_as_served"] = {
            name: round(float(np.corrcoef([np.nan if s is None else s for s in scores], gold)[0, 1]), 4)
            for name, scores in served.items()
        }
    top, single = str(max(args.concurrency)), str(min(args.concurrency))
    best = max((s for s in systems if s.startswith("n2m")), key=lambda s: systems[s][top]["rps"], default=None)
    if best and "hf_pipeline" in systems:
        report["summary"] = {
            "best_n2m": best,
            f"rps_ratio_at_{top}": round(systems[best][top]["rps"] / systems["hf_pipeline"][top]["rps"], 2),
            f"p50_ms_at_{single}": {
                "n2m": systems[best][single]["p50_ms"],
                "hf_pipeline": systems["hf_pipeline"][single]["p50_ms"],
            },
            "failed_requests": sum(r["errors"] for levels in systems.values() for r in levels.values()),
        }
    RESULTS.mkdir(parents=True, exist_ok=True)
    stem = "serve_load.quick" if args.quick else "serve_load"
    (RESULTS / f"{stem}.json").write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    table = markdown_table(report)
    (RESULTS / f"{stem}.md").write_text(table + "\n", encoding="utf-8")
    write_pages("serve_load")
    print(table)
    print(json.dumps(report.get("summary", {}), indent=2))


if __name__ == "__main__":
    main()
