"""`TaskSchema`: what an exported model is (shape, inputs, outputs, how it tokenizes), saved as `n2m.json`."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from n2m.data.encoding import EncodingSpec

SCHEMA_FILE = "n2m.json"


def read_info(folder: str | Path) -> dict[str, Any]:
    """The raw `n2m.json` of an exported folder; every shape's file has at least `shape`."""
    path = Path(folder, SCHEMA_FILE)
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: is {folder} a folder written by `n2m export`?")
    return json.loads(path.read_text(encoding="utf-8"))


@dataclass
class TaskSchema:
    """The N21 schema."""

    shape: str
    objective: str
    inputs: list[str]
    backbone: str
    encoding: EncodingSpec
    pooling: str = "mean"
    label_names: list[str] | None = None
    score_range: list[float] | None = None
    n2m_version: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_hparams(cls, model: Mapping[str, Any], data: Mapping[str, Any]) -> TaskSchema:
        """From a SequenceTask's and a TextDataModule's hyperparameters (live or from a checkpoint)."""
        from n2m import __version__

        columns = data.get("columns") or {}
        inputs = ["text", "text_pair"] if columns.get("text_pair") else ["text"]
        return cls(
            shape="N21",
            objective=model["objective"],
            inputs=inputs,
            backbone=model["backbone"],
            encoding=EncodingSpec(model["pair_encoding"], data.get("max_length", 128), data.get("text_prefix", "")),
            pooling=model["pooling"],
            label_names=list(model["label_names"]) if model.get("label_names") else None,
            score_range=list(model["score_range"]) if model.get("score_range") else None,
            n2m_version=__version__,
        )

    def save(self, folder: str | Path) -> None:
        data = asdict(self)
        Path(folder, SCHEMA_FILE).write_text(json.dumps(data, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, folder: str | Path) -> TaskSchema:
        data = read_info(folder)
        data["encoding"] = EncodingSpec(**data["encoding"])
        return cls(**data)
