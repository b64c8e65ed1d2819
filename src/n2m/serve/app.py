"""`create_app(predictor)`: the FastAPI app that serves one exported model (any shape).

POST /v1/predict     one input or a list → {"predictions": [...]} (schema from the model's n2m.json); a captioner
                     takes images: base64 in JSON or a multipart upload, checked before queueing (`serve.images`)
POST /v1/stream      one input → server-sent events, for predictors that can `stream(input)` (generation)
POST /v1/embeddings  OpenAI's request and answer: unit sentence vectors (a model with a vector per text)
POST /v1/rerank      a query and documents → [{"index", "score"}] best first (TEI's shape; cosine, or a pair score)
POST /v1/search      a query → the nearest documents of the corpus loaded at start-up (`create_app(corpus=...)`)
GET  /v1/model       what is served: name, title, shape, task, inputs, labels, backbone, version, limits, endpoints
GET  /healthz        liveness and queue depth
GET  /metrics        Prometheus text: requests, latency, batch sizes, queue depth
GET  /, /search      the web page (static HTML/CSS/JS shipped in the package, laid out from /v1/model)

An endpoint the model cannot answer (embeddings from a cross-encoder, search without a corpus) is left out of
the OpenAPI document and answered 404 with the reason. Every model input, from any endpoint, goes through the
one micro-batcher (tagged `Work`), so the limits, the queue and the 4xx rules are the same everywhere.

Every error is answered as `{"error": "<field>: <what is wrong>"}` (`ErrorResponse`): a body that breaks the
schema with 422, one over the byte limit with 413, one that does not arrive in time with 408, a full queue with
503 and `Retry-After`; the OpenAPI document declares each. The predictor runs off the event loop (see
`batching`), so the server keeps answering.
"""

# no `from __future__ import annotations`: FastAPI reads the endpoints' annotations, which are classes
# built at run time from the model's schema

import asyncio
import base64
import dataclasses
import json
import logging
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import Any, Literal

import numpy as np
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from n2m import __version__
from n2m.serve.batching import MicroBatcher, QueueFull
from n2m.serve.connections import RejectionLog
from n2m.serve.corpus import MAX_TOP_K, Corpus
from n2m.serve.images import IMAGE_FIELD, ImageUploads, decode_image, describe, image_limits
from n2m.serve.limits import BodySizeLimit, Limits
from n2m.serve.metrics import RequestMetrics, ServerMetrics
from n2m.serve.schemas import (
    EmbeddingsResponse,
    ModelView,
    RerankResult,
    SearchResponse,
    api_models,
    input_fields,
    model_view,
    output_type,
    vector_models,
)
from n2m.shapes.n2m.images import ImageError

log = logging.getLogger("n2m.serve")
# a multipart upload to a captioner's /v1/predict or /v1/stream (`serve.images.ImageUploads`)
UPLOAD_SCHEMA = {
    "type": "object",
    "properties": {"image": {"type": "array", "items": {"type": "string", "format": "binary"}}},
    "required": ["image"],
    "description": "one or more image files, each in a part named `image`",
}
STATIC = "static"
# union branches (see schemas.api_models and vector_models), left out of error paths
TAGS = ("one", "many", "with_documents", "with_texts")
LISTS = {"inputs": "inputs", "input": "inputs", "documents": "documents", "texts": "documents"}
WorkKind = Literal["predict", "query", "passage"]


@dataclasses.dataclass(frozen=True)
class Work:
    """One input for the model, from any endpoint: `predict` (an input as /v1/predict takes it) or a text to
    encode as a `query` or a `passage` (the prefix differs for e5-style models)."""

    kind: WorkKind
    item: Any


def run_work(predictor: Any, batch_size: int) -> Callable[[list[Work]], list[Any]]:
    """One micro-batch of mixed work → results in order: each kind in one call (longest-first batching inside)."""

    def run(works: list[Work]) -> list[Any]:
        results: list[Any] = [None] * len(works)
        for kind in ("predict", "query", "passage"):
            positions = [i for i, work in enumerate(works) if work.kind == kind]
            if not positions:
                continue
            items = [works[i].item for i in positions]
            if kind == "predict":
                done = predictor.predict(items, batch_size=batch_size)
            else:
                done = list(predictor.encode(items, batch_size, kind=kind))
            for i, result in zip(positions, done, strict=True):
                results[i] = result
        return results

    return run


def vector_length(predictor: Any, info: dict[str, Any]) -> tuple[int | None, str]:
    """The length of the model's sentence vectors, or None and why it has none (the 404's message)."""
    what = f"this model ({info.get('shape')} {info.get('task')})"
    gives = getattr(predictor, "gives_vectors", None)  # an N21 predictor's answer; other shapes have none
    if gives is None or not callable(getattr(predictor, "encode", None)):
        return None, f"{what} gives no sentence vectors"
    if not gives:
        return None, (f"{what} is a cross-encoder: it reads both texts of a pair together and has no vector per "
                      "text; score pairs with /v1/predict or /v1/rerank, or serve a bi-encoder")  # fmt: skip
    try:  # one short text: the backend says if it cannot (an ONNX file exported without the vectors)
        probe = predictor.encode(["a"], kind="query")
    except ValueError as err:
        return None, f"{what}: {err}"
    return int(probe.shape[1]), ""


def rerank_mode(predictor: Any, info: dict[str, Any], fields: list[str], vectors: bool) -> tuple[str | None, str]:
    """`cosine` (a model with sentence vectors), `pair` (a cross-encoder giving a pair one score) or None and why."""
    if vectors:
        return "cosine", ""
    if len(fields) == 2 and info.get("task") in ("regression", "retrieval"):
        return "pair", ""
    return None, (f"this model ({info.get('shape')} {info.get('task')}, inputs {fields}) gives neither sentence "
                  "vectors nor one score per pair of texts, so it cannot rank documents")  # fmt: skip


def vector_json(vector: np.ndarray, encoding_format: str) -> list[float] | str:
    """float32 values as JSON numbers (exact), or their little-endian bytes in base64, as OpenAI sends them."""
    values = np.asarray(vector, dtype="<f4")
    return base64.b64encode(values.tobytes()).decode("ascii") if encoding_format == "base64" else values.tolist()


class ErrorDetail(BaseModel):
    loc: list[str]
    msg: str
    type: str


class ErrorResponse(BaseModel):
    """The body of every error the app answers (uvicorn's own 503 past the connection cap is plain text)."""

    error: str
    detail: list[ErrorDetail] | None = Field(default=None, description="each invalid field (422 only)")


# past --max-connections uvicorn answers before the app, in plain text, on any path
CONNECTION_CAP = {"content": {"text/plain": {"schema": {"type": "string"}}}, "description": "over the connection cap"}


def create_app(
    predictor: Any,
    *,
    name: str | None = None,
    title: str | None = None,
    backend: str = "torch",
    limits: Limits | None = None,
    max_batch_size: int = 32,
    max_wait_ms: float = 5.0,
    corpus: Corpus | None = None,
) -> FastAPI:
    """An app around any `Predictor` (anything with `.info` and `.predict(list) -> list`; `.stream` optional;
    `.encode(texts, batch_size, kind=...)` and `.gives_vectors` for embeddings, rerank by cosine and search).

    `name` names the model in /metrics (the folder's name); `title`, shown on the page, is the card's
    `provenance.title` unless given, else the name. `corpus` (`serve.corpus.encode_corpus`) adds /v1/search.
    """
    limits = limits or Limits()
    if limits.max_queue < limits.max_inputs:
        raise ValueError(f"max_queue ({limits.max_queue}) < max_inputs ({limits.max_inputs}): big requests never fit")
    info = predictor.info
    fields = input_fields(info)
    streaming = callable(getattr(predictor, "stream", None))
    view = model_view(info, name or str(info.get("name", "model")), title, backend, streaming, limits)
    models = api_models(fields, output_type(predictor), limits)
    takes_images = fields == [IMAGE_FIELD]  # a captioner: images in, base64 or uploaded
    if takes_images:
        images = image_limits(limits.max_body_bytes)
        view.images = describe(images)
        view.limits.pop("max_tokens", None)  # an image is never cut
        if hasattr(predictor, "image_limits"):
            predictor.image_limits = images  # checked here already; the predictor agrees
    max_tokens = view.limits.get("max_tokens", 0)  # how much of a text the model reads
    counts = bool(max_tokens) and callable(getattr(predictor, "token_counts", None))
    dimensions, no_vectors = vector_length(predictor, info)
    ranking, no_ranking = rerank_mode(predictor, info, fields, dimensions is not None)
    if corpus is not None and dimensions is None:
        raise ValueError(f"a corpus needs sentence vectors, and {no_vectors}")
    vmodels = vector_models(limits, dimensions, MAX_TOP_K)
    view.embedding_dimensions = dimensions
    view.endpoints = ["/v1/predict", *(["/v1/stream"] if streaming else [])]
    view.endpoints += [*(["/v1/embeddings"] if dimensions else []), *(["/v1/rerank"] if ranking else [])]
    if corpus is not None:
        view.endpoints.append("/v1/search")
        view.corpus = {"source": corpus.source, "documents": len(corpus)}
        view.limits["max_top_k"] = MAX_TOP_K

    async def truncated(inputs: list[Any]) -> list[int]:
        """Positions of the inputs longer than the model reads (tokenized off the event loop)."""
        if not counts:
            return []
        lengths = await asyncio.get_running_loop().run_in_executor(None, predictor.token_counts, inputs)
        return [i for i, n in enumerate(lengths) if n > max_tokens]

    async def text_tokens(texts: list[str], kind: WorkKind) -> list[int]:
        """Uncut token counts of texts encoded alone (prefix included), off the event loop; [] if unknown."""
        count = getattr(predictor, "text_token_counts", None)
        if not callable(count):
            return []
        return await asyncio.get_running_loop().run_in_executor(None, lambda: count(texts, kind))

    async def over_limit(texts: list[str], kind: WorkKind) -> list[int]:
        """Positions of the texts (encoded alone) longer than the model reads."""
        return [i for i, n in enumerate(await text_tokens(texts, kind)) if n > (max_tokens or n)]

    metrics = ServerMetrics(view.name, view.shape, backend)
    batcher = MicroBatcher(
        run_work(predictor, max_batch_size),
        max_batch_size=max_batch_size,
        max_wait_ms=max_wait_ms,
        max_queue=limits.max_queue,
        on_batch=metrics.observe_batch,
        on_depth=metrics.queue_depth.set,
    )
    streams = StreamSlots(limits.max_streams)

    # installed once the server runs (uvicorn has set its logging up by then), removed when it stops
    rejections = RejectionLog(lambda reason: metrics.rejected_connections.labels(reason=reason).inc())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await batcher.start()
        rejections.install()
        try:
            yield
        finally:
            rejections.uninstall()
            await batcher.stop()
            streams.shutdown()

    app = FastAPI(
        title=f"n2m · {view.name}",
        version=__version__,
        description=f"{view.shape} model ({view.task}); inputs: {', '.join(fields)}. Web page at `/`.",
        lifespan=lifespan,
        docs_url=None,  # Swagger UI and ReDoc load their scripts from a CDN: blank pages offline
        redoc_url=None,
        responses={503: CONNECTION_CAP},
    )
    app.state.batcher = batcher
    app.state.metrics = metrics
    app.state.view = view
    retry_after = {"Retry-After": {"schema": {"type": "integer"}, "description": "seconds to wait (a full queue)"}}
    errors: dict[int | str, dict[str, Any]] = {
        408: {"model": ErrorResponse, "description": f"body not received within {limits.body_timeout_s:g} s"},
        413: {"model": ErrorResponse, "description": f"body over {limits.max_body_bytes} bytes"},
        422: {"model": ErrorResponse, "description": "a body the schema does not allow, or that the model refused"},
        503: {
            "model": ErrorResponse,
            "description": "server busy (queue full, or every stream slot taken): retry after `Retry-After` s",
            "headers": retry_after,
            **CONNECTION_CAP,
        },
    }

    def as_predictor_input(item: BaseModel) -> Any:
        # single-text models take the string itself, which every shape's predictor accepts
        return getattr(item, fields[0]) if len(fields) == 1 else item.model_dump()

    async def model_inputs(items: list[BaseModel]) -> list[Any] | Response:
        """What the predictor takes for each input: its text(s), or its image decoded and checked (off the event
        loop), a bad one answered with its own 4xx before anything is queued."""
        if not takes_images:
            return [as_predictor_input(item) for item in items]

        def decode_all() -> list[Any]:
            out = []
            for i, item in enumerate(items):
                try:
                    out.append(decode_image(getattr(item, IMAGE_FIELD), images))
                except ImageError as err:
                    where = f"inputs[{i}].image" if len(items) > 1 else "inputs.image"
                    raise ImageError(f"{where}: {err}", err.status) from None
            return out

        try:
            return await asyncio.get_running_loop().run_in_executor(None, decode_all)
        except ImageError as err:
            metrics.rejected.labels(reason="bad_image").inc()
            return JSONResponse({"error": str(err)}, status_code=err.status)

    async def queued(works: list[Work], request: Request) -> list[Any] | Response:
        """The results of one request's work, or the response that ends it (499, 503, 422)."""
        submission = asyncio.ensure_future(batcher.submit(works))
        gone = asyncio.ensure_future(client_gone(request))
        await asyncio.wait({submission, gone}, return_when=asyncio.FIRST_COMPLETED)
        gone.cancel()
        if not submission.done():  # the client left while its inputs waited: the batcher skips them
            submission.cancel()
            metrics.rejected.labels(reason="client_gone").inc()
            return Response(status_code=499)
        try:
            return submission.result()
        except QueueFull as full:
            metrics.rejected.labels(reason="queue_full").inc()
            return busy(str(full), full.retry_after)
        except ValueError as err:  # the predictor refused an input the schema let through
            metrics.rejected.labels(reason="invalid").inc()
            return JSONResponse({"error": str(err)}, status_code=422)

    uploads = {"requestBody": {"content": {"multipart/form-data": {"schema": UPLOAD_SCHEMA}}}} if takes_images else None

    @app.post("/v1/predict", response_model=models.response, responses=errors, tags=["model"], openapi_extra=uploads)
    async def predict(body: models.request, request: Request) -> Response:  # type: ignore[valid-type]
        items = body.inputs if isinstance(body.inputs, list) else [body.inputs]
        inputs = await model_inputs(items)
        if isinstance(inputs, Response):
            return inputs
        results = await queued([Work("predict", x) for x in inputs], request)
        if isinstance(results, Response):
            return results
        cut = await truncated(inputs)
        return JSONResponse({"predictions": [to_json(r) for r in results], "truncated": cut})

    def unavailable(path: str, reason: str) -> None:
        """A hidden route that says why this model has no such endpoint (404), instead of a bare Not Found."""

        async def refuse() -> JSONResponse:
            metrics.rejected.labels(reason="unavailable").inc()
            return JSONResponse({"error": f"{path}: {reason}"}, status_code=404)

        app.add_api_route(path, refuse, methods=["POST"], include_in_schema=False)

    if dimensions:

        @app.post("/v1/embeddings", response_model=EmbeddingsResponse, responses=errors, tags=["vectors"])
        async def embeddings(body: vmodels.embeddings, request: Request) -> Response:  # type: ignore[valid-type]
            """OpenAI's embeddings API: unit-length vectors in input order (`input_type`: n2m's own, for
            models with query and passage prefixes). A text over `max_tokens` is cut and listed in `truncated`."""
            texts = body.input if isinstance(body.input, list) else [body.input]
            vectors = await queued([Work(body.input_type, t) for t in texts], request)
            if isinstance(vectors, Response):
                return vectors
            lengths = await text_tokens(texts, body.input_type)
            read = sum(min(n, max_tokens or n) for n in lengths)
            data = [{"object": "embedding", "index": i, "embedding": vector_json(v, body.encoding_format)}
                    for i, v in enumerate(vectors)]  # fmt: skip
            return JSONResponse({
                "object": "list", "data": data, "model": view.name,
                "usage": {"prompt_tokens": read, "total_tokens": read},
                "truncated": [i for i, n in enumerate(lengths) if n > (max_tokens or n)],
            })  # fmt: skip

    else:
        unavailable("/v1/embeddings", no_vectors)

    if ranking:

        @app.post("/v1/rerank", response_model=list[RerankResult], responses=errors, tags=["vectors"])
        async def rerank(body: vmodels.rerank, request: Request) -> Response:  # type: ignore[valid-type]
            """Documents (`documents`, or TEI's `texts`) scored against the query, best first; ties keep their
            order. A bi-encoder scores by cosine, a cross-encoder reads each (query, document) pair."""
            documents = getattr(body, "documents", None) or body.texts
            if ranking == "cosine":
                works = [Work("query", body.query)] + [Work("passage", d) for d in documents]
            else:
                works = [Work("predict", dict(zip(fields, (body.query, d), strict=True))) for d in documents]
            results = await queued(works, request)
            if isinstance(results, Response):
                return results
            if ranking == "cosine":
                scores = (np.stack(results[1:]) @ results[0]).tolist()
                marks = ["query"] if await over_limit([body.query], "query") else []
                marks += map(str, await over_limit(documents, "passage"))
            else:  # a pair is cut as one text
                scores = [float(to_json(r)["score"]) for r in results]
                marks = [str(i) for i in await truncated([work.item for work in works])]
            order = sorted(range(len(documents)), key=lambda i: (-scores[i], i))[: body.top_n or len(documents)]
            answer = [
                {"index": i, "score": scores[i], **({"document": documents[i]} if body.return_documents else {})}
                for i in order
            ]
            return JSONResponse(answer, headers={"X-N2M-Truncated": ",".join(marks)} if marks else None)

    else:
        unavailable("/v1/rerank", no_ranking)

    if corpus is not None:

        @app.post("/v1/search", response_model=SearchResponse, responses=errors, tags=["vectors"])
        async def search(body: vmodels.search, request: Request) -> Response:  # type: ignore[valid-type]
            """The corpus's documents nearest the query by cosine, best first (exact search)."""
            vectors = await queued([Work("query", body.query)], request)
            if isinstance(vectors, Response):
                return vectors
            loop = asyncio.get_running_loop()
            hits = await loop.run_in_executor(None, corpus.search, vectors[0], body.top_k)
            long_query = bool(await over_limit([body.query], "query"))
            return JSONResponse({"hits": hits, "documents": len(corpus), "truncated": long_query})

    else:
        unavailable("/v1/search", "no corpus is loaded: start the server with `n2m serve MODEL --corpus FILE`")

    if streaming:

        @app.post(
            "/v1/stream",
            responses={**errors, 200: {"content": {"text/event-stream": {}}, "description": "server-sent events"}},
            response_class=StreamingResponse,
            tags=["model"],
            openapi_extra=uploads,
        )
        async def stream(body: models.stream_request) -> Response:  # type: ignore[valid-type]
            """`data: {"text": piece}` events as they are produced, then `event: done` (or `event: error`)."""
            inputs = await model_inputs([body.inputs])
            if isinstance(inputs, Response):
                return inputs
            events = streams.start(predictor.stream, inputs[0])
            if events is None:
                metrics.rejected.labels(reason="streams_full").inc()
                return busy(f"server busy: {limits.max_streams} generations are streaming already", 1)
            return StreamingResponse(events, media_type="text/event-stream", headers={"Cache-Control": "no-cache"})

    @app.get("/v1/model", response_model=ModelView, tags=["model"])
    async def model() -> ModelView:
        return view

    @app.get("/healthz", tags=["server"])
    async def healthz() -> dict[str, Any]:
        return {"status": "ok", "queue_depth": batcher.depth}

    @app.get("/metrics", tags=["server"], response_class=Response)
    async def prometheus() -> Response:
        return Response(metrics.render(), media_type=metrics.content_type)

    @app.api_route("/", methods=["GET", "HEAD"], include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(static_dir() / "index.html", media_type="text/html; charset=utf-8")

    if corpus is not None:  # the same page, in its search mode (`/` opens in it too when a corpus is loaded)

        @app.api_route("/search", methods=["GET", "HEAD"], include_in_schema=False)
        async def search_page() -> FileResponse:
            return FileResponse(static_dir() / "index.html", media_type="text/html; charset=utf-8")

    @app.get("/favicon.ico", include_in_schema=False)
    async def favicon() -> FileResponse:
        return FileResponse(static_dir() / "favicon.svg", media_type="image/svg+xml")

    app.mount("/static", StaticFiles(packages=[("n2m.serve", STATIC)]), name="static")

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        found = exc.errors()
        only_count = all(e.get("type") == "too_long" and field_path(tuple(e.get("loc", ()))) in LISTS for e in found)
        metrics.rejected.labels(reason="too_many_inputs" if only_count else "invalid").inc()
        body = {"error": describe_validation_errors(found), "detail": jsonable_errors(found)}
        return JSONResponse(body, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400 and request.method == "POST":  # FastAPI could not decode the body at all
            metrics.rejected.labels(reason="invalid").inc()
            return JSONResponse({"error": "body is not valid JSON (it must be UTF-8 text)"}, status_code=422)
        return JSONResponse({"error": str(exc.detail)}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(Exception)
    async def crashed(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s", request.url.path)
        return JSONResponse({"error": f"internal error ({type(exc).__name__}); the server goes on"}, status_code=500)

    routes = {route.path for route in app.routes if hasattr(route, "path")}
    if takes_images:  # inside the size limit, which counts the upload's own bytes
        app.add_middleware(ImageUploads)
    app.add_middleware(
        BodySizeLimit, max_bytes=limits.max_body_bytes, on_reject=rejected_by(metrics), timeout_s=limits.body_timeout_s
    )
    app.add_middleware(RequestMetrics, metrics=metrics, paths=routes)  # outermost: sees every response
    return app


async def client_gone(request: Request) -> None:
    """Returns when the client has closed the connection (its body is read already: the next message is that)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


def busy(message: str, retry_after: int) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=503, headers={"Retry-After": str(retry_after)})


def rejected_by(metrics: ServerMetrics):
    return lambda reason: metrics.rejected.labels(reason=reason).inc()


def static_dir():
    from importlib.resources import files

    return files("n2m.serve") / STATIC


def to_json(result: Any) -> Any:
    if dataclasses.is_dataclass(result) and not isinstance(result, type):
        return dataclasses.asdict(result)
    if isinstance(result, BaseModel):
        return result.model_dump()
    return result


def field_path(loc: tuple[Any, ...]) -> str:
    """("body", "inputs", "many", 0, "text") → "inputs[0].text"."""
    parts = list(loc[1:] if loc and loc[0] == "body" else loc)
    if parts and parts[0] in TAGS:  # a body that is a union itself (/v1/rerank)
        del parts[0]
    if len(parts) > 1 and parts[0] in LISTS and parts[1] in TAGS:
        del parts[1]
    path = ""
    for part in parts:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or "body"


def describe_validation_errors(errors: list[dict[str, Any]]) -> str:
    """One line naming each wrong field (too many inputs too: the schema says how many, so it is a 422)."""
    lines = []
    for error in errors[:5]:
        loc = tuple(error.get("loc", ()))
        path = field_path(loc)
        kind = error.get("type", "")
        message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
        if kind == "json_invalid":
            problem = (error.get("ctx") or {}).get("error", "")
            lines.append(f"body is not valid JSON{': ' + problem if problem else ''}")
            continue
        if kind == "too_long" and path in LISTS:
            message = f"too many {LISTS[path]} in one request: {message.removeprefix('List ')}"
        elif kind == "literal_error" and path == "dimensions":
            expected = (error.get("ctx") or {}).get("expected", "its own number of")
            message = f"this model gives vectors of {expected} dimensions only; it cannot shorten them (leave it out)"
        elif kind == "string_unicode":  # an unpaired surrogate escape such as "\ud800"
            message = "not valid Unicode text (an unpaired surrogate escape?)"
        elif kind == "string_too_long":
            message = f"text too long: {message.removeprefix('String ')}"
        elif kind == "extra_forbidden":
            message = "unknown field (check its name)"
        lines.append(f"{path}: {message}")
    if len(errors) > 5:
        lines.append(f"and {len(errors) - 5} more")
    return "; ".join(lines)


def jsonable_errors(errors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {"loc": [str(x) for x in e.get("loc", ())], "msg": str(e.get("msg")), "type": e.get("type")} for e in errors
    ]


class StreamSlots:
    """A bounded number of generations streaming at once, each in its own thread.

    A slot is held by the generating thread, from `start` until the generation ends or the client has
    gone (checked between pieces), so a client that disconnects early cannot leak a slot.
    """

    def __init__(self, slots: int) -> None:
        self.slots = slots
        self.active = 0
        self.executor = ThreadPoolExecutor(max_workers=max(slots, 1), thread_name_prefix="n2m-stream")

    def shutdown(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)

    def start(self, stream: Any, item: Any) -> AsyncIterator[str] | None:
        """Start generating now; None when every slot is taken. The iterator yields SSE text."""
        if self.active >= self.slots:
            return None
        self.active += 1
        loop = asyncio.get_running_loop()
        pieces: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        client_gone = False

        def release() -> None:
            self.active -= 1

        def produce() -> None:
            try:
                for piece in stream(item):
                    if client_gone:
                        break
                    loop.call_soon_threadsafe(pieces.put_nowait, ("piece", piece))
                loop.call_soon_threadsafe(pieces.put_nowait, ("done", None))
            except Exception as err:  # reported to the client as an SSE error event
                loop.call_soon_threadsafe(pieces.put_nowait, ("error", f"{type(err).__name__}: {err}"))
            finally:
                loop.call_soon_threadsafe(release)

        loop.run_in_executor(self.executor, produce)

        async def events() -> AsyncIterator[str]:
            nonlocal client_gone
            text = ""
            try:
                while True:
                    kind, value = await pieces.get()
                    if kind == "piece":
                        data = piece_json(value)
                        text += str(data.get("text", ""))
                        yield f"data: {json.dumps(data, ensure_ascii=False)}\n\n"
                    elif kind == "done":
                        yield f"event: done\ndata: {json.dumps({'text': text}, ensure_ascii=False)}\n\n"
                        return
                    else:
                        yield f"event: error\ndata: {json.dumps({'error': value}, ensure_ascii=False)}\n\n"
                        return
            finally:
                client_gone = True

        return events()


def piece_json(piece: Any) -> dict[str, Any]:
    if isinstance(piece, str):
        return {"text": piece}
    converted = to_json(piece)
    return converted if isinstance(converted, dict) else {"text": str(converted)}
