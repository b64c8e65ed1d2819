"""n2m: any NLP problem as N21, N2N or N2M — read, train, score, predict, export, serve."""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["Predictor", "SequencePredictor", "SequenceTask", "TextDataModule", "__version__"]

_LAZY = {
    "Predictor": "n2m.predictor",
    "SequencePredictor": "n2m.predictor",
    "SequenceTask": "n2m.tasks.sequence",
    "TextDataModule": "n2m.data.datamodule",
}


def __getattr__(name: str) -> Any:
    """Import heavy parts (torch, transformers, Lightning) only when they are used."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'n2m' has no attribute {name!r}")
