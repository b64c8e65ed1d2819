"""What one request may hold, and the checks that turn bad input into a clear 4xx instead of a 500.

Texts are checked before they reach the queue: a text that would crash the tokenizer (an unpaired
surrogate cannot be encoded as UTF-8) or that carries control characters is refused with the field and
the position, so one bad request never fails the batch it would have shared with good ones.
"""

from __future__ import annotations

import asyncio
import sys
import unicodedata
from dataclasses import dataclass
from functools import cache

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from n2m.readers.tables import INVISIBLE, visible

ALLOWED_CONTROLS = {"\t", "\n", "\r"}
# the control characters `check_text` refuses, as a regex class (an unpaired surrogate is refused too, but a JSON
# Schema string is Unicode text, which has none, and regex engines such as Rust's cannot name them)
FORBIDDEN = "\\u0000-\\u0008\\u000b\\u000c\\u000e-\\u001f\\u007f-\\u009f"


@dataclass(frozen=True)
class Limits:
    """Per-request limits (413 / 422 past them) and the bounds that keep the server itself in shape."""

    max_body_bytes: int = 1_000_000
    max_inputs: int = 64  # inputs in one request
    max_chars: int = 2_000  # characters in one text
    max_queue: int = 256  # inputs waiting for the model; past it a request gets 503 + Retry-After
    max_streams: int = 4  # generations streaming at once (each holds a worker thread)
    body_timeout_s: float = 10.0  # a request body must arrive within this; past it: 408, connection closed


def check_text(text: str) -> str:
    """Refuse empty texts, unpaired surrogates and control characters (tab and newlines are fine)."""
    if not visible(text):
        raise ValueError("empty text: send at least one visible character")
    for position, char in enumerate(text):
        code = ord(char)
        if 0xD800 <= code <= 0xDFFF:
            raise ValueError(f"unpaired surrogate U+{code:04X} at character {position}: the text is not valid Unicode")
        if char not in ALLOWED_CONTROLS and unicodedata.category(char) == "Cc":
            raise ValueError(f"control character U+{code:04X} at character {position}: remove it")
    return text


@cache
def text_pattern() -> str:
    """`check_text`'s rule as a JSON-Schema `pattern`, for the OpenAPI document: no forbidden character, and one
    visible one at least (a letter, digit, punctuation or symbol, by the same Unicode categories as `visible`).

    Code points are escaped \\uXXXX in the BMP and written as themselves above it, which Python's `re` and
    ECMAScript's `u` mode read alike. Built from the running Python's Unicode tables, as the check is.
    """
    ranges: list[tuple[int, int]] = []
    for code in range(sys.maxunicode + 1):
        if unicodedata.category(chr(code)) in INVISIBLE:
            continue
        if ranges and ranges[-1][1] == code - 1:
            ranges[-1] = (ranges[-1][0], code)
        else:
            ranges.append((code, code))

    def char(code: int) -> str:
        return f"\\u{code:04x}" if code <= 0xFFFF else chr(code)

    shown = "".join(char(a) if a == b else f"{char(a)}-{char(b)}" for a, b in ranges)
    return f"^[^{FORBIDDEN}]*[{shown}][^{FORBIDDEN}]*$"


class BodySizeLimit:
    """ASGI middleware: a request body over `max_bytes` gets 413 before anything parses it, and one that has not
    arrived within `timeout_s` gets 408 (the connection is closed, not held).

    A declared Content-Length over the limit is refused at once; a chunked body is counted as it
    arrives, and the app sees the body replayed only once it is known to fit.
    """

    def __init__(self, app: ASGIApp, max_bytes: int, on_reject=None, timeout_s: float = 10.0) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.on_reject = on_reject
        self.timeout_s = timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._reject(scope, receive, send, int(declared))
            return
        chunks: list[bytes] = []
        size = 0
        deadline = asyncio.get_running_loop().time() + self.timeout_s
        while True:
            try:
                message = await asyncio.wait_for(receive(), deadline - asyncio.get_running_loop().time())
            except TimeoutError:  # a trickle or nothing: the connection is not held for ever
                message = f"request body not received within {self.timeout_s:g} s"
                await self._refuse(scope, receive, send, 408, "body_timeout", message)
                return
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._reject(scope, receive, send, size)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # after the body: wait for the disconnect, as the app may

        await self.app(scope, replay, send)

    async def _reject(self, scope: Scope, receive: Receive, send: Send, size: int) -> None:
        message = f"request body of {size}+ bytes is over the limit of {self.max_bytes} bytes"
        await self._refuse(scope, receive, send, 413, "body_too_large", message)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, status: int, reason: str, message: str) -> None:
        if self.on_reject:
            self.on_reject(reason)
        # the same response class as the app's other errors, so the same bytes and headers
        headers = {"connection": "close"} if status == 408 else None
        await JSONResponse({"error": message}, status_code=status, headers=headers)(scope, receive, send)
