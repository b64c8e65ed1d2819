"""`n2m serve MODEL_DIR [--corpus FILE]`: load an exported folder (PyTorch or ONNX Runtime) and serve it with
uvicorn; with a corpus, its passage vectors are encoded at start-up (or read back from the last start's) for
/v1/search and the search page."""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

from n2m.errors import ConfigError
from n2m.serve.limits import Limits


def build_parser() -> argparse.ArgumentParser:
    from n2m.core.predictor import precision_argument
    from n2m.shapes.n21.search import index_arguments

    defaults = Limits()
    parser = argparse.ArgumentParser(
        prog="n2m serve",
        description="Serve an exported model folder: JSON API (/v1/predict, /v1/embeddings, /v1/rerank, "
        "/openapi.json), web page (/), /metrics; with --corpus, /v1/search and a search page.",
    )
    parser.add_argument("model_dir", help="a folder written by `n2m export`")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0 for every interface)")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--backend", choices=["torch", "onnx"], default="torch", help="onnx needs `export --onnx`")
    parser.add_argument(
        "--onnx-file", default="model.onnx", help="which ONNX file of the folder (model.int8.onnx: quantized)"
    )
    precision_argument(parser)
    parser.add_argument("--name", default=None,
                        help="the model's name in /v1/model and /metrics, and its title on the page (default: the "
                        "folder's name; the page shows the model's own title when its card has one)")  # fmt: skip
    parser.add_argument("--max-batch-size", type=int, default=32, help="inputs per forward pass")
    parser.add_argument("--max-wait-ms", type=float, default=5.0, help="how long a busy server gathers a batch")
    parser.add_argument("--max-queue", type=int, default=defaults.max_queue, help="waiting inputs before 503")
    parser.add_argument("--max-body-bytes", type=int, default=defaults.max_body_bytes)
    parser.add_argument("--max-inputs", type=int, default=defaults.max_inputs, help="inputs per request")
    parser.add_argument("--max-chars", type=int, default=defaults.max_chars, help="characters per text")
    parser.add_argument("--max-streams", type=int, default=defaults.max_streams, help="generations at once")
    parser.add_argument("--body-timeout", type=float, default=defaults.body_timeout_s,
                        help="seconds a request body may take to arrive (then 408)")  # fmt: skip
    parser.add_argument("--max-connections", type=int, default=512,
                        help="open connections served at once; a request on one more is answered 503")  # fmt: skip
    parser.add_argument("--keep-alive", type=float, default=5.0,
                        help="seconds an idle connection stays open (a silent new one too)")  # fmt: skip
    parser.add_argument(
        "--corpus",
        default=None,
        help="a file of documents (CSV, TSV, JSONL, JSON) to search: encoded once at start-up, "
        "searched by POST /v1/search and the page at /search (needs a model with sentence vectors)",
    )
    parser.add_argument("--corpus-column", default="text", help="the corpus's column of texts")
    parser.add_argument("--corpus-id", default=None, help="the corpus's id column (else row numbers from 0)")
    index_arguments(parser)  # as `n2m search`: the corpus's vectors kept beside it, an HNSW graph past 100,000
    parser.add_argument("--threads", type=int, default=None, help="intra-op threads of the model (default: all cores)")
    parser.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    parser.add_argument("--access-log", action="store_true", help="log every request (costs time under load)")
    return parser


def main(argv: list[str]) -> None:
    import torch
    import uvicorn

    from n2m.core.predictor import Predictor
    from n2m.serve.app import create_app, vector_length
    from n2m.serve.connections import SilentConnectionsClose
    from n2m.serve.corpus import open_served_corpus
    from n2m.shapes.n21.examples import load_texts
    from n2m.shapes.n21.search import runtime_name

    args = build_parser().parse_args(argv)
    folder = Path(args.model_dir)
    # the corpus is read and checked before the model loads: a bad file costs a second, not a model load
    texts = load_texts(args.corpus, args.corpus_column, id_column=args.corpus_id) if args.corpus else None
    if args.threads:
        torch.set_num_threads(args.threads)
    options = {"onnx_file": args.onnx_file, "threads": args.threads} if args.backend == "onnx" else {}
    try:
        predictor = Predictor.from_pretrained(folder, backend=args.backend, precision=args.precision, **options)
    except FileNotFoundError:
        raise  # already says what is missing and how to make it
    except Exception as err:  # a broken folder (bad JSON, cut-off weights, …): one line, not a traceback
        first = str(err).strip().splitlines()[0] if str(err).strip() else ""
        raise ConfigError(f"{folder} cannot be served: {type(err).__name__}: {first}") from None
    backend = runtime_name("torch", args.precision) if args.backend == "torch" else f"onnx ({args.onnx_file})"
    corpus = None
    if texts is not None:
        dimensions, why = vector_length(predictor, predictor.info)
        if dimensions is None:
            raise ConfigError(f"--corpus needs a model with sentence vectors, and {why}")
        corpus = open_served_corpus(predictor, texts, args.corpus, args.model_dir, backend, index=args.index,
                                    index_dir=args.index_dir, reencode=args.reencode,
                                    batch_size=args.max_batch_size)  # fmt: skip
    limits = Limits(
        max_body_bytes=args.max_body_bytes,
        max_inputs=args.max_inputs,
        max_chars=args.max_chars,
        max_queue=args.max_queue,
        max_streams=args.max_streams,
        body_timeout_s=args.body_timeout,
    )
    app = create_app(
        predictor,
        name=args.name or folder.resolve().name,
        title=args.name,
        backend=backend,
        limits=limits,
        max_batch_size=args.max_batch_size,
        max_wait_ms=args.max_wait_ms,
        corpus=corpus,
    )
    print(f"serving {folder} ({backend}) on http://{args.host}:{args.port}/  (API schema: /openapi.json)", flush=True)
    # uvicorn drains on SIGTERM, then raises the signal again under the handler it found: make that one a clean
    # exit, so a scheduler's stop after a clean drain exits 0, not 143
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    server = {
        "log_level": args.log_level,
        "access_log": args.access_log,
        # uvicorn counts the connection asking among the open ones: N + 1 serves N connections, the next gets 503
        "limit_concurrency": args.max_connections + 1,
        "timeout_keep_alive": args.keep_alive,
        "http": SilentConnectionsClose,
    }
    uvicorn.run(app, host=args.host, port=args.port, **server)
