"""`create_app(predictor)`: the FastAPI app that serves one exported model (any shape).

POST /v1/predict   one input or a list → {"predictions": [...]} (schema from the model's n2m.json)
POST /v1/stream    one input → server-sent events, for predictors that can `stream(input)` (generation)
GET  /v1/model     what is served: name, title, shape, task, inputs, labels, backbone, version, limits
GET  /healthz      liveness and queue depth
GET  /metrics      Prometheus text: requests, latency, batch sizes, queue depth
GET  /             the web page (static HTML/CSS/JS shipped in the package, laid out from /v1/model)

Every error is answered as `{"error": "<field>: <what is wrong>"}` (`ErrorResponse`): a body that breaks the
schema with 422, one over the byte limit with 413, one that does not arrive in time with 408, a full queue with
503 and `Retry-After`; the OpenAPI document declares each. The predictor runs off the event loop (see
`batching`), so the server keeps answering.
"""

# no `from __future__ import annotations`: FastAPI reads the endpoints' annotations, which are classes
# built at run time from the model's schema

import asyncio
import dataclasses
import json
import logging
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from n2m import __version__
from n2m.serve.batching import MicroBatcher, QueueFull
from n2m.serve.connections import RejectionLog
from n2m.serve.limits import BodySizeLimit, Limits
from n2m.serve.metrics import RequestMetrics, ServerMetrics
from n2m.serve.schemas import ModelView, api_models, input_fields, model_view, output_type

log = logging.getLogger("n2m.serve")
STATIC = "static"
TAGS = ("one", "many")  # union branches of `inputs` (see schemas.api_models), left out of error paths


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
) -> FastAPI:
    """An app around any `Predictor` (anything with `.info` and `.predict(list) -> list`; `.stream` optional).

    `name` names the model in /metrics (the folder's name); `title`, shown on the page, is the card's
    `provenance.title` unless given, else the name.
    """
    limits = limits or Limits()
    if limits.max_queue < limits.max_inputs:
        raise ValueError(f"max_queue ({limits.max_queue}) < max_inputs ({limits.max_inputs}): big requests never fit")
    info = predictor.info
    fields = input_fields(info)
    streaming = callable(getattr(predictor, "stream", None))
    view = model_view(info, name or str(info.get("name", "model")), title, backend, streaming, limits)
    models = api_models(fields, output_type(predictor), limits)
    max_tokens = view.limits.get("max_tokens", 0)  # how much of a text the model reads
    counts = bool(max_tokens) and callable(getattr(predictor, "token_counts", None))

    async def truncated(inputs: list[Any]) -> list[int]:
        """Positions of the inputs longer than the model reads (tokenized off the event loop)."""
        if not counts:
            return []
        lengths = await asyncio.get_running_loop().run_in_executor(None, predictor.token_counts, inputs)
        return [i for i, n in enumerate(lengths) if n > max_tokens]

    metrics = ServerMetrics(view.name, view.shape, backend)
    batcher = MicroBatcher(
        lambda inputs: predictor.predict(inputs, batch_size=max_batch_size),
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

    @app.post("/v1/predict", response_model=models.response, responses=errors, tags=["model"])
    async def predict(body: models.request, request: Request) -> Response:  # type: ignore[valid-type]
        items = body.inputs if isinstance(body.inputs, list) else [body.inputs]
        inputs = [as_predictor_input(item) for item in items]
        submission = asyncio.ensure_future(batcher.submit(inputs))
        gone = asyncio.ensure_future(client_gone(request))
        await asyncio.wait({submission, gone}, return_when=asyncio.FIRST_COMPLETED)
        gone.cancel()
        if not submission.done():  # the client left while its inputs waited: the batcher skips them
            submission.cancel()
            metrics.rejected.labels(reason="client_gone").inc()
            return Response(status_code=499)
        try:
            results = submission.result()
        except QueueFull as full:
            metrics.rejected.labels(reason="queue_full").inc()
            return busy(str(full), full.retry_after)
        except ValueError as err:  # the predictor refused an input the schema let through
            metrics.rejected.labels(reason="invalid").inc()
            return JSONResponse({"error": str(err)}, status_code=422)
        cut = await truncated(inputs)
        return JSONResponse({"predictions": [to_json(r) for r in results], "truncated": cut})

    if streaming:

        @app.post(
            "/v1/stream",
            responses={**errors, 200: {"content": {"text/event-stream": {}}, "description": "server-sent events"}},
            response_class=StreamingResponse,
            tags=["model"],
        )
        async def stream(body: models.stream_request) -> Response:  # type: ignore[valid-type]
            """`data: {"text": piece}` events as they are produced, then `event: done` (or `event: error`)."""
            events = streams.start(predictor.stream, as_predictor_input(body.inputs))
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

    @app.get("/favicon.ico", include_in_schema=False)
    async def favicon() -> FileResponse:
        return FileResponse(static_dir() / "favicon.svg", media_type="image/svg+xml")

    app.mount("/static", StaticFiles(packages=[("n2m.serve", STATIC)]), name="static")

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        found = exc.errors()
        only_count = all(e.get("type") == "too_long" and field_path(tuple(e.get("loc", ()))) == "inputs" for e in found)
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
    if len(parts) > 1 and parts[0] == "inputs" and parts[1] in TAGS:
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
        if kind == "too_long" and path == "inputs":
            message = f"too many inputs in one request: {message.removeprefix('List ')}"
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
