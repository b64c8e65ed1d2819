"""Connections below the app: the ones refused are logged once per class, and silent ones are not held.

uvicorn answers 503 past its connection cap and 400 to malformed HTTP with a warning each, and asyncio logs a
traceback each time `accept()` finds no file descriptor left: under a flood that is thousands of lines. Here
the first of each class is logged (one line, no traceback) and every one is counted, in /metrics as
`n2m_rejected_connections_total{reason=...}`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from uvicorn.protocols.http.h11_impl import H11Protocol

# (logger, how its message starts) → the reason counted in /metrics
CLASSES = {
    ("uvicorn.error", "Exceeded concurrency limit"): "max_connections",
    ("uvicorn.error", "Invalid HTTP request received"): "invalid_http",
    ("asyncio", "socket.accept() out of system resource"): "out_of_file_descriptors",
}
LOGGERS = sorted({name for name, _ in CLASSES})


def reason_of(record: logging.LogRecord) -> str | None:
    message = str(record.msg)
    for (name, start), reason in CLASSES.items():
        if record.name == name and message.startswith(start):
            return reason
    return None


class OncePerClass(logging.Filter):
    """The one filter on uvicorn's and asyncio's loggers, shared by the apps running in this process (a test
    runs several): each rejection is counted by every app, and its class logged once while any app runs."""

    def __init__(self) -> None:
        super().__init__()
        self.apps: list[RejectionLog] = []
        self.logged: set[str] = set()

    def add(self, app: RejectionLog) -> None:
        if not self.apps:
            self.logged.clear()
            for name in LOGGERS:
                logging.getLogger(name).addFilter(self)
        self.apps.append(app)

    def discard(self, app: RejectionLog) -> None:
        if app in self.apps:
            self.apps.remove(app)
        if not self.apps:
            for name in LOGGERS:
                logging.getLogger(name).removeFilter(self)

    def filter(self, record: logging.LogRecord) -> bool:
        reason = reason_of(record)
        if reason is None:
            return True
        for app in self.apps:
            app.count(reason)
        if reason in self.logged:
            return False
        self.logged.add(reason)
        first_line = record.getMessage().splitlines()[0]
        record.msg = (
            f"{first_line} (reason {reason}: the first one; the others are counted, not logged: "
            f'n2m_rejected_connections_total{{reason="{reason}"}} in /metrics)'
        )
        record.args = None
        record.exc_info = None  # one line, not a traceback
        record.exc_text = None
        return True


ONCE_PER_CLASS = OncePerClass()


class RejectionLog:
    """One app's share of `OncePerClass`: `count(reason)` is called for every rejection while installed."""

    def __init__(self, count: Callable[[str], None]) -> None:
        self.count = count

    def install(self) -> None:
        ONCE_PER_CLASS.add(self)

    def uninstall(self) -> None:
        ONCE_PER_CLASS.discard(self)


class SilentConnectionsClose(H11Protocol):
    """uvicorn's HTTP/1.1 protocol, but a connection that sends nothing is closed after the keep-alive timeout,
    as an idle one between requests is: uvicorn starts that clock only after a first response, so connections
    opened and left silent were held for ever, each a file descriptor."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        # the first bytes that arrive cancel it, as they cancel the clock between requests
        self.timeout_keep_alive_task = self.loop.call_later(self.timeout_keep_alive, self.timeout_keep_alive_handler)
