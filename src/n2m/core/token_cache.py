"""Token ids kept on disk, so each text is tokenized once per machine (every shape's DataModule uses this)."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from transformers import PreTrainedTokenizerBase

from n2m.backbones import n2m_home


def cached_tokens(tokenizer: PreTrainedTokenizerBase, key: Any, encode: Callable[[], Any]) -> Any:
    """`encode()`'s result, kept under $N2M_HOME/cache/tokens keyed by `key` (JSON: the texts and how they are
    encoded) and the tokenizer's own file."""
    digest = hashlib.sha256()
    digest.update(json.dumps(key, ensure_ascii=False).encode())
    tokenizer_file = Path(tokenizer.name_or_path) / "tokenizer.json"
    digest.update(tokenizer_file.read_bytes() if tokenizer_file.is_file() else tokenizer.name_or_path.encode())
    path = n2m_home() / "cache" / "tokens" / f"{digest.hexdigest()[:32]}.pt"
    if path.is_file():
        return torch.load(path, weights_only=True)
    features = encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    torch.save(features, tmp)
    os.replace(tmp, path)  # atomic: a concurrent reader never sees half a file
    return features
