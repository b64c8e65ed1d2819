"""`ModelCard`: what an exported model is, saved as its folder's `n2m.json` (one versioned schema for every shape):
a common head and one `settings` section of the shape's own. Folders of n2m 0.1 are read through `migrate_v1`."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

CARD_FILE = "n2m.json"
FORMAT_VERSION = 2
MAX_LENGTH = 128  # the one default of `max_length` (tokens of an input, start and end included)


@dataclass(frozen=True)
class Encoding:
    """How a text becomes ids, for every shape. Kept in the card so a served model tokenizes as in training."""

    max_length: int = MAX_LENGTH
    text_prefix: str = ""  # put before every text, e.g. e5's "query: "


@dataclass
class ModelCard:
    shape: str  # a registry key: N21, N2N, N2M, ensemble
    task: str  # regression | classification | multilabel | bio | tags | generation
    inputs: list[str]
    backbone: str  # the name it was trained from (`e5-small`, a folder, a hub id)
    encoding: Encoding = field(default_factory=Encoding)
    labels: list[str] | None = None
    settings: dict[str, Any] = field(default_factory=dict)  # the shape's own section
    provenance: dict[str, Any] = field(default_factory=dict)  # n2m_version, validation score, …
    format_version: int = FORMAT_VERSION

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelCard:
        data = dict(data)
        data["encoding"] = Encoding(**data.get("encoding", {}))
        return cls(**data)

    def save(self, folder: str | Path) -> None:
        text = json.dumps(self.to_dict(), ensure_ascii=False, indent=2) + "\n"
        Path(folder, CARD_FILE).write_text(text, encoding="utf-8")

    @classmethod
    def load(cls, folder: str | Path) -> ModelCard:
        path = Path(folder, CARD_FILE)
        if not path.is_file():
            raise FileNotFoundError(f"{path} not found: is {folder} a folder written by `n2m export`?")
        data = json.loads(path.read_text(encoding="utf-8"))
        version = data.get("format_version", 1)
        if version == 1:
            return migrate_v1(data, Path(folder))
        if version != FORMAT_VERSION:
            raise ValueError(f"{path} has format_version {version}; this n2m reads 1 and {FORMAT_VERSION}: upgrade n2m")
        return cls.from_dict(data)


def migrate_v1(old: dict[str, Any], folder: Path) -> ModelCard:
    """The three `n2m.json` dialects of n2m ≤ 0.1.0 (one per shape, and ensembles) → a version-2 card."""
    shape = old.get("shape", "N21")
    extra = old.get("extra") or {}
    provenance = {"n2m_version": old.get("n2m_version", ""), "validation": extra.get("validation", {})}
    if shape == "ensemble":
        first = ModelCard.load((folder / old["members"][0]).resolve())
        settings = {k: old[k] for k in ("members", "weights", "weighting")}
        return ModelCard("ensemble", first.task, first.inputs, first.backbone, first.encoding, first.labels, settings)
    if shape == "N2N":
        return ModelCard(
            "N2N",
            old["scheme"],
            old.get("inputs", ["text"]),
            old["backbone"],
            Encoding(old.get("max_length", MAX_LENGTH)),
            list(old["label_names"]),
            {"unit": old.get("unit", "word"), "constrained_decoding": old.get("constrained_decoding", True)},
            provenance,
        )
    if shape == "N2M":
        settings = {k: old[k] for k in ("architecture", "generation", "metrics", "bleu_tokenize")}
        settings.update({k: extra.get(k) for k in ("encoder_layers", "decoder_layers", "tie_encoder_decoder")})
        encoding = Encoding(old.get("max_source_length", MAX_LENGTH), old.get("source_prefix", ""))
        return ModelCard("N2M", "generation", old.get("inputs", ["text"]), old["backbone"], encoding, None, settings,
                         provenance)  # fmt: skip
    encoding = old.get("encoding", {})
    return ModelCard(
        "N21",
        old["objective"],
        old["inputs"],
        old["backbone"],
        Encoding(encoding.get("max_length", MAX_LENGTH), encoding.get("text_prefix", "")),
        old.get("label_names"),
        {
            "pair_encoding": encoding.get("pair_encoding", "cross"),
            "pooling": old.get("pooling", "mean"),
            "score_range": old.get("score_range"),
        },
        provenance,
    )
