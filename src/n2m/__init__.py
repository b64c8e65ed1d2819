"""n2m: any NLP problem as N21, N2N or N2M — read, train, score, predict, export, serve."""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
_LAZY = {
    "Predictor": "n2m.core.predictor",
    "ModelCard": "n2m.core.card",
    "Optimization": "n2m.core.task",
    "export_checkpoint": "n2m.core.export",
    "SequencePredictor": "n2m.shapes.n21.predictor",
    "SequenceTask": "n2m.shapes.n21.task",
    "TextDataModule": "n2m.shapes.n21.data",
    "TokenPredictor": "n2m.shapes.n2n.predictor",
    "TokenTask": "n2m.shapes.n2n.task",
    "TokenDataModule": "n2m.shapes.n2n.data",
    "Seq2SeqPredictor": "n2m.shapes.n2m.predictor",
    "Seq2SeqTask": "n2m.shapes.n2m.task",
    "Seq2SeqDataModule": "n2m.shapes.n2m.data",
}
__all__ = [*_LAZY, "__version__"]


def __getattr__(name: str) -> Any:
    """Import heavy parts (torch, transformers, Lightning) only when they are used."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'n2m' has no attribute {name!r}")
