"""Prometheus metrics of one app (its own registry, so several apps in one process do not collide)."""

from __future__ import annotations

import time

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


class ServerMetrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self, model: str, shape: str, backend: str) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "n2m_http_requests", "HTTP requests answered", ["path", "method", "status"], registry=self.registry
        )
        self.latency = Histogram(
            "n2m_http_request_duration_seconds",
            "Time from request to the end of the response",
            ["path"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.batch_size = Histogram(
            "n2m_batch_size", "Inputs per forward pass", buckets=BATCH_BUCKETS, registry=self.registry
        )
        self.batch_seconds = Histogram(
            "n2m_batch_duration_seconds", "Time of one forward pass", buckets=LATENCY_BUCKETS, registry=self.registry
        )
        self.queue_depth = Gauge("n2m_queue_depth", "Inputs waiting for the model", registry=self.registry)
        self.rejected = Counter(
            "n2m_rejected_requests", "Requests refused before inference", ["reason"], registry=self.registry
        )
        self.rejected_connections = Counter(
            "n2m_rejected_connections",
            "Requests or connections refused before the app (connection cap, malformed HTTP, no file descriptor)",
            ["reason"],
            registry=self.registry,
        )
        info = Gauge("n2m_model_info", "The model being served", ["model", "shape", "backend"], registry=self.registry)
        info.labels(model=model, shape=shape, backend=backend).set(1)

    def observe_batch(self, size: int, seconds: float) -> None:
        self.batch_size.observe(size)
        self.batch_seconds.observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class RequestMetrics:
    """ASGI middleware: count every response by route and status, and time it."""

    def __init__(self, app: ASGIApp, metrics: ServerMetrics, paths: set[str]) -> None:
        self.app = app
        self.metrics = metrics
        self.paths = paths  # known routes; anything else is "other" (bounded label values)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 0  # stays 0 when no answer starts: the client went away first

        async def send_and_record(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_record)
        except BaseException:
            status = status or 500  # the error handler outside this middleware answers it
            raise
        finally:
            path = scope["path"]
            path = "/static" if path.startswith("/static/") else path if path in self.paths else "other"
            # nginx's 499, "client closed request": no answer was sent, so there is no latency to record
            self.metrics.requests.labels(path=path, method=scope["method"], status=str(status or 499)).inc()
            if status:
                self.metrics.latency.labels(path=path).observe(time.perf_counter() - started)
