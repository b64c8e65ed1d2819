"""`SequencePredictor`: an exported N21 folder → scores, a class, or labels (the core `Predictor` pipeline).

>>> p = Predictor.from_pretrained("out/korsts")
>>> p.predict([("한 남자가 기타를 치고 있다.", "남자가 기타를 연주한다.")])
[ScorePrediction(score=4.6)]

Sentence vectors, from a bi-encoder export or from a backbone never fine-tuned:

>>> e5 = SequencePredictor.from_backbone("e5-small")        # "query: " / "passage: " prefixes, as e5 was trained
>>> e5.encode(["환불은 어떻게 하나요?"], kind="query").shape
(1, 384)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from transformers import PreTrainedTokenizerBase

from n2m.backbones import resolve_backbone
from n2m.core.batching import pad_id
from n2m.core.card import Encoding, ModelCard
from n2m.core.encoder import Pooling, build_encoder
from n2m.core.predictor import Predictor as BasePredictor
from n2m.shapes.n21.encoding import Features, collate_features, encode_texts, feature_length
from n2m.shapes.n21.model import SequenceModel
from n2m.shapes.n21.outputs import OUTPUT_TYPES, Prediction, decode_output

Input = str | tuple[str, str] | list[str] | dict[str, str]
TextKind = Literal["query", "passage"]


# How each backbone was trained to be used for embeddings: query and passage prefixes, and how many tokens
# it reads. e5 models were trained with "query: " / "passage: "; MiniLM (sentence-transformers) with none, and
# with 256 tokens (its sentence-transformers config). A local folder whose name holds "e5" follows e5.
E5_PREFIXES = ("query: ", "passage: ")
BACKBONE_CONVENTIONS: dict[str, tuple[str, str, int]] = {
    "e5-small": (*E5_PREFIXES, 512),
    "minilm-l6": ("", "", 256),
}


class SequencePredictor(BasePredictor):
    """N21: one text or a pair → a `ScorePrediction`, `ClassPrediction` or `LabelsPrediction`.
    `predict(inputs, threshold=0.5)`: the probability from which a multilabel model gives a label."""

    postprocess_options = frozenset({"threshold"})

    model: SequenceModel | None

    def __init__(
        self, model: SequenceModel | None, tokenizer: PreTrainedTokenizerBase, card: ModelCard, device: str = "cpu"
    ) -> None:
        super().__init__(model, tokenizer, card, device)
        self.output_type = OUTPUT_TYPES[card.task]

    def split_inputs(self, inputs: Sequence[Input]) -> tuple[list[str], list[str] | None]:
        """Texts (and second texts of pairs) from strings, tuples, lists or `{"text": …, "text_pair": …}`."""
        fields = self.card.inputs
        texts: list[str] = []
        pairs: list[str] = []
        for i, item in enumerate(inputs):
            if isinstance(item, dict):
                missing = [k for k in fields if k not in item]
                if missing:
                    raise ValueError(f"input {i}: missing field(s) {missing}; this model takes {fields}")
                parts = [item[k] for k in fields]
            elif isinstance(item, str):
                parts = [item]
            else:
                parts = list(item)
            if len(parts) != len(fields):
                raise ValueError(f"input {i}: expected {len(fields)} text(s), got {len(parts)}")
            if not all(isinstance(p, str) for p in parts):
                raise ValueError(f"input {i}: every text must be a string")
            texts.append(parts[0])
            pairs += parts[1:]
        return texts, pairs if len(fields) == 2 else None

    def preprocess(self, inputs: Sequence[Input]) -> list[Features]:
        texts, pairs = self.split_inputs(inputs)
        settings = self.card.settings
        pair_encoding = settings.get("pair_encoding", "cross")
        return encode_texts(self.tokenizer, texts, pairs, self.card.encoding, pair_encoding,
                            settings.get("passage_prefix"))  # fmt: skip

    def token_counts(self, inputs: Sequence[Input]) -> list[int]:
        """Uncut token counts; for a bi-encoder pair, the longer of its two texts (each is cut alone)."""
        texts, pairs = self.split_inputs(inputs)
        if pairs is None:
            return self.text_token_counts(texts)
        if self.card.settings.get("pair_encoding", "cross") == "cross":
            firsts = [self.text_encoding("query").text_prefix + t for t in texts]
            seconds = [self.text_encoding("passage").text_prefix + t for t in pairs]
            return [len(ids) for ids in self.tokenizer(firsts, seconds)["input_ids"]]
        a, b = self.text_token_counts(texts), self.text_token_counts(pairs, "passage")
        return [max(x, y) for x, y in zip(a, b, strict=True)]

    def length(self, feature: Features) -> int:
        return feature_length(feature)

    def forward(self, features: list[Features], output: str = "outputs", **options: Any) -> list[torch.Tensor]:
        """`output="vector"` (what `encode` asks, never a user option): pooled vectors of texts alone."""
        batch = collate_features(features, pad_id(self.tokenizer))
        batch = {part: {k: v.to(self.device) for k, v in seqs.items()} for part, seqs in batch.items()}
        if output == "vector":
            return list(self.embed_batch(batch["a"]).float().cpu())
        return list(self.forward_batch(batch).float().cpu())

    def forward_batch(self, batch: dict[str, dict[str, torch.Tensor]]) -> torch.Tensor:
        """One padded batch → outputs: the PyTorch backend (the ONNX one overrides this)."""
        assert self.model is not None
        return self.model.to_outputs(self.model(batch))

    def postprocess(self, output: torch.Tensor, feature: Features, threshold: float = 0.5) -> Prediction:
        return decode_output(output, self.card.task, self.card.labels, threshold)

    # ---- sentence vectors --------------------------------------------------------------------------------
    @classmethod
    def from_backbone(
        cls,
        name: str,
        device: str = "cpu",
        pooling: Pooling = "mean",
        max_length: int | None = None,
        query_prefix: str | None = None,
        passage_prefix: str | None = None,
    ) -> SequencePredictor:
        """A bi-encoder straight from a pretrained backbone (`e5-small`, `minilm-l6`, a local Hugging Face
        folder or a hub id), never fine-tuned: `encode` gives its pooled vectors and `predict` on pairs their
        cosine. Prefixes and `max_length` default to the backbone's own conventions (`BACKBONE_CONVENTIONS`;
        an unknown folder: no prefix, as many tokens as its tokenizer and positions allow)."""
        from transformers import AutoTokenizer

        folder = resolve_backbone(name)
        tokenizer = AutoTokenizer.from_pretrained(folder)
        encoder = build_encoder(folder)
        known = BACKBONE_CONVENTIONS.get(name)
        if known is None:
            e5 = "e5" in Path(name).name.lower()
            positions = getattr(encoder.config, "max_position_embeddings", 512)
            # RoBERTa-style models (e5 is one) start counting positions after the padding id: 514 → 512
            usable = (
                positions - 2 if getattr(encoder.config, "model_type", "") in ("xlm-roberta", "roberta") else positions
            )
            known = (*(E5_PREFIXES if e5 else ("", "")), min(tokenizer.model_max_length, usable))
        query, passage, longest = known
        query = query if query_prefix is None else query_prefix
        passage = passage if passage_prefix is None else passage_prefix
        settings = {"pair_encoding": "bi", "pooling": pooling, "score_range": None, "passage_prefix": passage}
        card = ModelCard("N21", "retrieval", ["text", "text_pair"], name, Encoding(max_length or longest, query),
                         None, settings)  # fmt: skip
        model = SequenceModel(encoder, "retrieval", 1, "bi", pooling, dropout=0.0)
        return cls(model, tokenizer, card, device)

    @property
    def gives_vectors(self) -> bool:
        """Whether a text alone has a vector this model compares: a bi-encoder's, or a one-text model's. A
        cross-encoder reads both texts of a pair at once and has none."""
        return len(self.card.inputs) == 1 or self.card.settings.get("pair_encoding", "cross") == "bi"

    def text_encoding(self, kind: TextKind = "query") -> Encoding:
        """How a text alone is encoded: queries (and first texts) with `text_prefix`, passages with the card's
        `passage_prefix` where it has one (else the same `text_prefix`: the model was trained that way)."""
        if kind not in ("query", "passage"):
            raise ValueError(f"kind must be 'query' or 'passage', not {kind!r}")
        passage = self.card.settings.get("passage_prefix")
        if kind == "passage" and passage is not None:
            return replace(self.card.encoding, text_prefix=passage)
        return self.card.encoding

    def encode(
        self,
        texts: Sequence[str],
        batch_size: int | None = None,
        normalize: bool = True,
        kind: TextKind = "query",
        progress: bool = False,
    ) -> np.ndarray:
        """Texts → float32 vectors `(N, H)` in input order, unit length unless `normalize=False` (then the pooled
        vectors as the model's head sees them). A text longer than the card's `max_length` tokens (prefix, start
        and end included) is cut to its first `max_length` tokens, as in training; `text_token_counts` says
        which were. `progress` shows a bar (chunks of 16 batches)."""
        if not self.gives_vectors:
            raise ValueError("a cross-encoder reads both texts together and has no vector per text; "
                             "score pairs with `predict` instead")  # fmt: skip
        texts = self.texts(texts)
        encoding = self.text_encoding(kind)
        size = batch_size or self.default_batch_size
        chunk = size * 16  # longest-first batching within a chunk; the bar moves per chunk
        starts = range(0, len(texts), chunk)
        if progress:
            from tqdm.auto import tqdm

            starts = tqdm(starts, total=len(starts), unit="chunk", desc=f"encoding {len(texts)} texts")
        vectors: list[torch.Tensor] = []
        for start in starts:
            features = encode_texts(self.tokenizer, texts[start : start + chunk], None, encoding)
            vectors += self.run(features, size, output="vector")
        if not vectors:
            return np.zeros((0, self.dimension), dtype=np.float32)
        stacked = torch.stack(vectors).float()
        return (F.normalize(stacked, dim=-1) if normalize else stacked).numpy()

    @property
    def dimension(self) -> int:
        """The length of a sentence vector: the encoder's width (the ONNX backend reads its graph's)."""
        assert self.model is not None
        return int(self.model.encoder.config.hidden_size)

    def text_token_counts(self, texts: Sequence[str], kind: TextKind = "query") -> list[int]:
        """Uncut token counts of texts encoded alone (prefix included); above `max_length`, the model reads
        only the start."""
        prefix = self.text_encoding(kind).text_prefix
        return [len(ids) for ids in self.tokenizer([prefix + t for t in self.texts(texts)])["input_ids"]]

    def embed_batch(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        """One padded batch of texts alone → pooled vectors `(B, H)`, not normalized (the PyTorch backend)."""
        assert self.model is not None  # a backend without a torch model overrides this
        return self.model.embed(inputs)

    def predict_outputs(self, inputs: Sequence[Input], batch_size: int | None = None) -> torch.Tensor:
        """Raw outputs in input order: scores `(N,)` or probabilities `(N, C)` (what ensembles average)."""
        outputs = self.run(self.preprocess(inputs), batch_size)
        return torch.stack(outputs) if outputs else torch.empty(0)


Predictor = SequencePredictor
