"""Serving a captioner (issue 19): `/v1/predict` and `/v1/stream` take an image as base64 in JSON (a data: URL
too) or as a multipart upload; bad images get a 4xx that says why (a text file named .png, a truncated file, a
20,000 × 20,000 decompression bomb, a format not allowed), never a 500; an animated GIF is read as its first
frame, as /v1/model says. The page in headless Chromium: a chosen image is shown and its caption streamed
(screenshot `serve-caption.png`, in docs/ with N2M_SCREENSHOT_DIR=docs).

The model is real: the tiny captioner of test_caption_model, trained until it tells its two pictures apart."""

from __future__ import annotations

import base64
import io
import json
import struct
import zlib
from pathlib import Path

import httpx
import pytest
from PIL import Image
from serve_models import LiveServer
from test_caption_model import IMAGE_SIZE, RECIPE, TINY_VISION, draw
from test_serve_api import sse_events
from test_serve_browser import browser, open_page, shots  # noqa: F401 (fixtures)

from n2m.cli import main
from n2m.core.predictor import Predictor
from n2m.serve import create_app
from n2m.serve.limits import Limits

RED = "a red square on the left"
BLUE = "a blue square on the right"


@pytest.fixture(scope="module")
def captioner(tiny_backbone, tmp_path_factory) -> Path:
    """Two pictures, one caption each, trained until it tells them apart (as in test_caption_model)."""
    import yaml

    root = tmp_path_factory.mktemp("captioner")
    (root / "images").mkdir()
    rows = []
    for name, (colour, side) in {"r": ("red", "left"), "b": ("blue", "right")}.items():
        draw(colour, "square", side).save(root / f"images/{name}.png")
        rows += [{"image": f"images/{name}.png", "caption": f"a {colour} square on the {side}"}] * 8
    train = root / "train.jsonl"
    train.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    config = {
        "model": {
            "decoder_layers": 1,
            "vision": TINY_VISION,
            "metrics": ["bleu"],
            "monitor": "bleu",
            "scenes": None,
            "caption_vocabulary": None,
            "generation": {"num_beams": 1, "max_new_tokens": 10},
            "val_generation": {"num_beams": 1, "max_new_tokens": 10},
            "label_smoothing": 0.0,
            "optimization": {"lr": 6e-3, "head_lr": 6e-3, "warmup_ratio": 0.0, "schedule": "constant"},
        },
        "data": {
            "backbone": tiny_backbone,
            "train": str(train),
            "val": str(train),
            "test": str(train),
            "trim_vocab": False,
            "cache_tokens": False,
            "batch_size": 8,
            "group_by_length": False,  # both pictures in a batch, as in test_caption_model
            "images": {"size": IMAGE_SIZE},
        },
        "trainer": {
            "max_epochs": 60,
            "check_val_every_n_epoch": 60,
            "enable_progress_bar": False,
            "default_root_dir": str(root / "run"),
            # without the recipe's weight average: over 120 steps a 200-step average would hold them all
            "callbacks": [],
        },
    }
    (root / "override.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    main(["fit", "--config", str(RECIPE), "--config", str(root / "override.yaml")])
    best = json.loads((root / "run/results.json").read_text())["best_checkpoint"]
    main(["export", best, str(root / "export"), "--title", "tiny captioner"])
    return root


@pytest.fixture(scope="module")
def server(captioner):
    app = create_app(Predictor.from_pretrained(captioner / "export"), name="captioner", limits=Limits())
    with LiveServer(app) as url:
        yield url


def png(image: Image.Image, format: str = "PNG", **options) -> bytes:
    out = io.BytesIO()
    image.save(out, format=format, **options)
    return out.getvalue()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def bomb(width: int = 20_000, height: int = 20_000) -> bytes:
    """A PNG whose header says width × height pixels, with almost no data: refused from its header alone."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")
    )


def test_the_model_view_says_what_images_it_takes(server):
    view = httpx.get(f"{server}/v1/model").json()
    assert (view["layout"], view["inputs"], view["task"]) == ("caption", ["image"], "captioning")
    assert view["images"]["animated"] == "first frame" and "PNG" in view["images"]["formats"]
    assert "/v1/stream" in view["endpoints"] and "max_tokens" not in view["limits"]
    spec = httpx.get(f"{server}/openapi.json").json()
    body = spec["paths"]["/v1/predict"]["post"]["requestBody"]["content"]
    assert {"application/json", "multipart/form-data"} <= set(body)


def test_base64_json_and_multipart_uploads_caption_alike(server, captioner):
    red, blue = (captioner / "images/r.png").read_bytes(), (captioner / "images/b.png").read_bytes()
    one = httpx.post(f"{server}/v1/predict", json={"inputs": {"image": b64(red)}}, timeout=60)
    assert one.status_code == 200 and one.json()["predictions"] == [{"text": RED}]
    data_url = "data:image/png;base64," + b64(blue)
    two = httpx.post(f"{server}/v1/predict", json={"inputs": [{"image": b64(red)}, {"image": data_url}]}, timeout=60)
    assert [p["text"] for p in two.json()["predictions"]] == [RED, BLUE]
    upload = httpx.post(f"{server}/v1/predict", files={"image": ("r.png", red, "image/png")}, timeout=60)
    assert upload.status_code == 200 and upload.json()["predictions"] == [{"text": RED}]
    both = httpx.post(
        f"{server}/v1/predict",
        files=[("image", ("r.png", red, "image/png")), ("image", ("b.png", blue, "image/png"))],
        timeout=60,
    )
    assert [p["text"] for p in both.json()["predictions"]] == [RED, BLUE]
    jpeg = png(draw("blue", "square", "right"), "JPEG", quality=95)
    assert httpx.post(f"{server}/v1/predict", json={"inputs": {"image": b64(jpeg)}}, timeout=60).status_code == 200


def test_the_caption_streams(server, captioner):
    blue = (captioner / "images/b.png").read_bytes()
    response = httpx.post(f"{server}/v1/stream", json={"inputs": {"image": b64(blue)}}, timeout=60)
    events = sse_events(response.text)
    pieces = [data["text"] for kind, data in events if kind == "message"]
    assert len(pieces) > 1 and "".join(pieces) == BLUE and events[-1] == ("done", {"text": BLUE})
    upload = httpx.post(f"{server}/v1/stream", files={"image": ("b.png", blue, "image/png")}, timeout=60)
    assert sse_events(upload.text)[-1] == ("done", {"text": BLUE})


def test_an_animated_gif_is_read_as_its_first_frame(server):
    frames = [draw("red", "square", "left"), draw("blue", "square", "right")]
    gif = io.BytesIO()
    frames[0].save(gif, format="GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    answer = httpx.post(f"{server}/v1/predict", json={"inputs": {"image": b64(gif.getvalue())}}, timeout=60)
    assert answer.status_code == 200 and answer.json()["predictions"] == [{"text": RED}]


@pytest.mark.parametrize(
    ("name", "payload", "status", "words"),
    [
        ("text named .png", b"this is a text file, not a picture\n", 422, "not an image"),
        ("truncated", "truncated", 422, "truncated"),
        ("decompression bomb", bomb(), 413, "pixels"),
        ("too many pixels", bomb(6_000, 6_000), 413, "over the limit"),
        ("a format not allowed", "tiff", 415, "TIFF"),
        ("empty", b"", 422, "at least 1 character"),
    ],
)
def test_bad_images_get_a_4xx_that_says_why(server, name, payload, status, words):
    if payload == "truncated":
        whole = png(draw("red", "circle", "left", size=64))
        payload = whole[: len(whole) * 2 // 3]
    elif payload == "tiff":
        payload = png(draw("red", "circle", "left"), "TIFF")
    answer = httpx.post(f"{server}/v1/predict", json={"inputs": {"image": b64(payload)}}, timeout=60)
    assert answer.status_code == status and words in answer.json()["error"], (name, answer.text)
    assert answer.json()["error"].startswith("inputs.image: ")
    upload = httpx.post(f"{server}/v1/predict", files={"image": ("x.png", payload, "image/png")}, timeout=60)
    assert upload.status_code == status, (name, upload.text)
    stream = httpx.post(f"{server}/v1/stream", json={"inputs": {"image": b64(payload)}}, timeout=60)
    assert stream.status_code == status


def test_other_bad_requests_are_4xx_too(server):
    for body in ({"inputs": {"image": "not base64 at all!"}}, {"inputs": {"image": ""}}, {"inputs": {"text": "hi"}}):
        answer = httpx.post(f"{server}/v1/predict", json=body, timeout=60)
        assert answer.status_code == 422, answer.text
    no_file = httpx.post(f"{server}/v1/predict", files={"other": ("x.png", b"abc", "image/png")}, timeout=60)
    assert no_file.status_code == 422 and "no `image` file part" in no_file.json()["error"]
    broken = httpx.post(
        f"{server}/v1/predict", content=b"--x\r\nnonsense", headers={"content-type": "multipart/form-data"}, timeout=60
    )
    assert 400 <= broken.status_code < 500
    big = httpx.post(f"{server}/v1/predict", files={"image": ("big.png", b"\0" * 2_000_000, "image/png")}, timeout=60)
    assert big.status_code == 413
    metrics = httpx.get(f"{server}/metrics").text
    assert 'reason="bad_image"' in metrics


def test_the_page_shows_the_image_and_streams_its_caption(browser, server, captioner, shots):  # noqa: F811
    page, errors = open_page(browser, f"{server}/?lang=en", width=720, height=760)
    assert page.inner_text("#model-task").startswith("A caption for an image")
    page.click("#submit")
    assert "Please fill in “Image”" in page.inner_text("#error")
    page.set_input_files("#input-image", str(captioner / "images/b.png"))
    page.wait_for_selector("#preview:not([hidden])")
    page.click("#submit")
    page.wait_for_selector("#generated:not(.streaming)")
    page.wait_for_function(f"document.querySelector('#generated').textContent === {json.dumps(BLUE)}")
    assert page.inner_text("#result h2") == "Caption"
    page.screenshot(path=str(shots / "serve-caption.png"), full_page=True)
    page.set_input_files("#input-image", files=[{"name": "notes.png", "mimeType": "image/png", "buffer": b"text"}])
    page.click("#submit")
    page.wait_for_function("document.querySelector('#error').textContent.startsWith('422')")
    assert errors == []
