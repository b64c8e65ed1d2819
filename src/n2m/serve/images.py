"""Images over HTTP, for models whose input is an image (captioners): base64 in JSON (a `data:` URL too), or a
multipart upload turned into the same JSON before the app sees it, so both ways share one schema, one set of
limits and one queue.

An image is checked before it is queued (`n2m.shapes.n2m.images.open_image`, off the event loop): bytes,
pixels from the header (a 20,000 × 20,000 "decompression bomb" is refused before anything is decoded: 413),
formats (415), a file that is no image, a text file named .png or a truncated one (422). An animated GIF,
WebP or PNG is read as its first frame, and `/v1/model` says so.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any

from PIL import Image
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from n2m.shapes.n2m.images import ANIMATED, ImageError, ImageLimits, open_image

IMAGE_FIELD = "image"
DATA_URL = re.compile(r"^data:[\w.+-]+/[\w.+-]+;base64,", re.IGNORECASE)
UPLOAD_PATHS = ("/v1/predict", "/v1/stream")


def image_limits(max_body_bytes: int) -> ImageLimits:
    """The server's image limits: an image's bytes can be no more than a body's."""
    defaults = ImageLimits()
    return ImageLimits(min(defaults.max_bytes, max_body_bytes), defaults.max_pixels, defaults.formats)


def describe(limits: ImageLimits) -> dict[str, Any]:
    """What `/v1/model` says about images."""
    return {
        "formats": list(limits.formats),
        "max_bytes": limits.max_bytes,
        "max_pixels": limits.max_pixels,
        "animated": ANIMATED,
        "upload": "base64 in JSON ({'inputs': {'image': '<base64 or data: URL>'}}), or multipart/form-data with "
        "one or more `image` file parts",
    }


def decode_image(text: str, limits: ImageLimits) -> Image.Image:
    """A base64 image (or a `data:` URL) → a checked RGB image; `ImageError` (with its HTTP status) if not."""
    payload = DATA_URL.sub("", text.strip(), count=1)
    if len(payload) > (limits.max_bytes * 4) // 3 + 4:  # before decoding it
        raise ImageError(f"the image is over the limit of {limits.max_bytes} bytes", status=413)
    try:
        data = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise ImageError("not base64: send the image file's bytes in base64 (or as a data: URL)") from None
    return open_image(data, limits)


class ImageUploads:
    """ASGI middleware: a `multipart/form-data` POST to /v1/predict or /v1/stream becomes the JSON body
    `{"inputs": [{"image": <base64>}, ...]}` (one file part: a single input), so uploads are validated, limited and
    queued exactly as JSON is. Sits inside the body-size limit, which has counted the upload's real bytes."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = dict(scope.get("headers") or [])
        kind = headers.get(b"content-type", b"").decode("latin-1")
        if scope["type"] != "http" or scope["path"] not in UPLOAD_PATHS or not kind.startswith("multipart/form-data"):
            await self.app(scope, receive, send)
            return
        chunks = []
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        try:
            images = file_parts(kind, b"".join(chunks))
        except ValueError as err:
            await JSONResponse({"error": f"body: {err}"}, status_code=422)(scope, receive, send)
            return
        encoded = [{IMAGE_FIELD: base64.b64encode(data).decode("ascii")} for data in images]
        inputs: Any = encoded[0] if len(encoded) == 1 or scope["path"] == "/v1/stream" else encoded
        body = json.dumps({"inputs": inputs}).encode()
        rest = [(k, v) for k, v in scope["headers"] if k not in (b"content-type", b"content-length")]
        scope = {**scope, "headers": [*rest, (b"content-type", b"application/json"),
                                      (b"content-length", str(len(body)).encode())]}  # fmt: skip
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


def file_parts(content_type: str, body: bytes) -> list[bytes]:
    """The `image` file parts of a multipart/form-data body (the stdlib's MIME parser: no extra dependency)."""
    head = b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n"
    message = BytesParser(policy=HTTP).parsebytes(head + body)
    if not message.is_multipart():
        raise ValueError("not a multipart/form-data body (a boundary is missing?)")
    found = []
    for part in message.iter_parts():
        disposition = part.get("Content-Disposition", "")
        if part.get_param("name", header="content-disposition") == IMAGE_FIELD and "filename" in disposition:
            found.append(part.get_payload(decode=True) or b"")
    if not found:
        raise ValueError(f"no `{IMAGE_FIELD}` file part in the upload (send the image as a file field named image)")
    return found
