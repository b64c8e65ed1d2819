"""Shared by the serve tests: tiny exported models (trained a few steps, then `n2m export`ed) and a real
uvicorn server on a free loopback port, run in a background thread."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import lightning as L
import uvicorn

from n2m.core.export import export_checkpoint
from n2m.core.task import Optimization
from n2m.shapes.n21.data import TextDataModule
from n2m.shapes.n21.examples import Columns
from n2m.shapes.n21.task import SequenceTask

STS = Columns(text="sentence1", text_pair="sentence2", label="score", id="id")
_BUILT: dict[str, Path] = {}


def train_and_export(
    backbone: str,
    files: dict[str, Path],
    columns: Columns,
    objective: str,
    out: Path,
    pair_encoding: str = "cross",
    max_epochs: int = 1,
    max_steps: int = -1,
    lr: float = 1e-3,
) -> Path:
    data = TextDataModule(
        train=str(files["train"]),
        val=str(files["val"]),
        columns=columns,
        batch_size=8,
        backbone=backbone,
        objective=objective,
        pair_encoding=pair_encoding,
        max_length=48,
        cache_tokens=False,
    )
    task = SequenceTask.from_data(data, optimization=Optimization(lr=lr))
    trainer = L.Trainer(
        max_epochs=max_epochs,
        max_steps=max_steps,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=out.parent,
        accelerator="cpu",
    )
    trainer.fit(task, data)
    ckpt = out.parent / f"{out.name}.ckpt"
    trainer.save_checkpoint(ckpt)
    return export_checkpoint(ckpt, out)


def sts_model(backbone: str, korsts: dict[str, Path], root: Path) -> Path:
    """A bi-encoder STS model (pair → score in KorSTS's 0–5 range), 2 training steps."""
    if "sts" not in _BUILT:
        _BUILT["sts"] = train_and_export(backbone, korsts, STS, "regression", root / "sts", "bi", max_steps=2)
    return _BUILT["sts"]


def sentiment_model(backbone: str, root: Path) -> Path:
    """A one-text classifier that really learned its rule: 'good' / 'bad' / 'fine' are in the text."""
    if "sentiment" not in _BUILT:
        rows = ["text\tlabel"] + [
            f"this is {w} number {i}\t{label}"
            for i in range(30)
            for w, label in (("good", "positive"), ("bad", "negative"), ("fine", "neutral"))
        ]
        train = root / "sentiment.tsv"
        train.write_text("\n".join(rows) + "\n", encoding="utf-8")
        files = {"train": train, "val": train}
        _BUILT["sentiment"] = train_and_export(
            backbone, files, Columns(), "classification", root / "sentiment", max_epochs=6, lr=3e-3
        )
    return _BUILT["sentiment"]


def entity_model(backbone: str, root: Path) -> Path:
    """An N2N model (word-level BIO) trained until it tags the cities of a toy corpus as `location`."""
    if "entities" not in _BUILT:
        from n2m.shapes.n2n.data import TokenDataModule
        from n2m.shapes.n2n.task import TokenTask

        cities = ["Paris", "Seoul", "Busan", "Tokyo"]
        blocks = []
        for i in range(48):
            city = cities[i % 4]
            words = [("we", "O"), ("flew", "O"), ("to", "O"), (city, "B-location"), ("on", "O"), (f"day{i}", "O")]
            blocks.append("\n".join(f"{w}\t{t}" for w, t in words))
        train = root / "cities.conll"
        train.write_text("\n\n".join(blocks) + "\n\n", encoding="utf-8")
        data = TokenDataModule(
            train=str(train), val=str(train), format="conll", batch_size=8, backbone=backbone, cache_tokens=False
        )
        task = TokenTask.from_data(data, optimization=Optimization(lr=5e-3))
        trainer = L.Trainer(
            max_epochs=8,
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            default_root_dir=root,
            accelerator="cpu",
        )
        trainer.fit(task, data)
        trainer.save_checkpoint(root / "entities.ckpt")
        _BUILT["entities"] = export_checkpoint(root / "entities.ckpt", root / "entities")
    return _BUILT["entities"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LiveServer:
    """uvicorn serving `app` on 127.0.0.1:<free port> in a thread; `with LiveServer(app) as url: ...`."""

    def __init__(self, app: Any, **config: Any) -> None:
        self.port = free_port()
        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", **config)
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        return self.url

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


def wait_for_http(url: str, timeout: float = 60.0) -> None:
    """Until `url` answers 200 (a server started in another process)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"{url} did not answer within {timeout} s")
        time.sleep(0.2)
