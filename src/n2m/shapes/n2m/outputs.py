"""What an N2M model returns for one input (the server documents it in its API schema)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class GeneratedText:
    text: str
