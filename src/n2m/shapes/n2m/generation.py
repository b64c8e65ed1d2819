"""Decoding for N2M: the options a recipe sets (and a call overrides), and token-by-token streaming.

The search itself is Hugging Face's `generate()` (greedy, beam search, sampling with temperature and
top-p, length penalty, no-repeat-n-gram): n2m only decides what to ask for and how to hand it back.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, nullcontext
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

import torch
from transformers import GenerationConfig, PreTrainedModel, PreTrainedTokenizerBase
from transformers.generation import BaseStreamer

from n2m.allocator import generating


@dataclass
class GenerationOptions:
    """How to decode. Greedy by default; `num_beams > 1` is beam search; `do_sample` samples.

    Args:
        max_new_tokens: stop after this many generated tokens even without end-of-sequence.
        num_beams: beams for beam search (1: greedy, or plain sampling with `do_sample`).
        do_sample: sample from the distribution instead of taking the most likely token.
        temperature: sampling temperature (< 1 sharper, > 1 flatter).
        top_p: nucleus sampling: sample only from the smallest set of tokens holding this much probability.
        top_k: sample only from the k most likely tokens (0: no limit).
        length_penalty: beam search scores are divided by length ** length_penalty (> 1 favours longer output).
        no_repeat_ngram_size: never repeat an n-gram of this size (0: off).
        repetition_penalty: > 1 discourages tokens already generated (1: off).
        seed: seeds the sampler so a sampled output can be reproduced (None: not seeded).
    """

    max_new_tokens: int = 64
    num_beams: int = 1
    do_sample: bool = False
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    length_penalty: float = 1.0
    no_repeat_ngram_size: int = 0
    repetition_penalty: float = 1.0
    seed: int | None = None

    def __post_init__(self) -> None:
        if self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be at least 1, got {self.max_new_tokens}")
        if self.num_beams < 1:
            raise ValueError(f"num_beams must be at least 1, got {self.num_beams}")
        if self.temperature <= 0:
            raise ValueError(f"temperature must be positive, got {self.temperature} (use do_sample: false for greedy)")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")

    def override(self, **changes: Any) -> GenerationOptions:
        """A copy with some options changed, e.g. per call: `options.override(num_beams=4)`."""
        known = {f.name for f in fields(self)}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise ValueError(f"unknown generation option(s) {unknown}; known: {sorted(known)}")
        return replace(self, **{k: v for k, v in changes.items() if v is not None})

    def to_config(self, model: PreTrainedModel) -> GenerationConfig:
        """A `GenerationConfig` that starts from the model's own (start / end / pad ids) and sets ours."""
        config = GenerationConfig.from_dict(model.generation_config.to_dict())
        options = asdict(self)
        options.pop("seed")
        if not self.do_sample:  # HF warns about sampling knobs set while not sampling
            options.update(temperature=None, top_p=None, top_k=None)
        config.update(**options, num_return_sequences=1)
        return config


def as_options(value: GenerationOptions | dict[str, Any] | None) -> GenerationOptions:
    """Options from a recipe (a dataclass from the CLI, a dict from a checkpoint's hyperparameters)."""
    if value is None:
        return GenerationOptions()
    if isinstance(value, GenerationOptions):
        return value
    return GenerationOptions(**dict(value))


@torch.inference_mode()
def generate_ids(
    model: PreTrainedModel,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    options: GenerationOptions,
    streamer: BaseStreamer | None = None,
) -> list[list[int]]:
    """Generated token ids per input, without the decoder's start token and without padding."""
    return generate_from(model, {"input_ids": input_ids, "attention_mask": attention_mask}, options, streamer)


@torch.inference_mode()
def generate_from(
    model: PreTrainedModel,
    source: dict[str, torch.Tensor],
    options: GenerationOptions,
    streamer: BaseStreamer | None = None,
) -> list[list[int]]:
    """`generate_ids` for any encoder input: texts' `input_ids` and `attention_mask`, or images' `pixel_values`."""
    if options.seed is not None:
        torch.manual_seed(options.seed)
    config = options.to_config(model)
    with generating():  # the key/value cache grows every token: off mmap (see n2m.allocator)
        out = model.generate(**source, generation_config=config, streamer=streamer)
    pad, eos = config.pad_token_id, config.eos_token_id
    eos_ids = set(eos if isinstance(eos, list) else [eos])
    rows = []
    for seq in out[:, 1:].tolist():  # position 0 is the decoder start token
        ids = []
        for token in seq:
            if token in eos_ids:
                ids.append(token)
                break
            if token == pad and pad not in eos_ids:  # finished rows of a batch are padded
                break
            ids.append(token)
        rows.append(ids)
    return rows


def decode(tokenizer: PreTrainedTokenizerBase, ids: list[int]) -> str:
    """Generated ids → text, special tokens dropped (detokenized: what metrics and users see)."""
    return tokenizer.decode(ids, skip_special_tokens=True, clean_up_tokenization_spaces=False).strip()


class TokenStreamer(BaseStreamer):
    """Receives tokens from `generate()` as they are chosen; `text_pieces()` yields the text each one adds.

    The first `put` is the decoder's start token (not generated), skipped. Text is decoded from all ids
    so far and the new suffix is yielded, so subword merges and spacing come out exactly as `decode`
    writes them: the pieces joined equal the full output.
    """

    _END = object()

    def __init__(self, tokenizer: PreTrainedTokenizerBase, timeout: float | None = None) -> None:
        self.tokenizer = tokenizer
        self.queue: queue.Queue = queue.Queue()
        self.timeout = timeout
        self._started = False

    def put(self, value: torch.Tensor) -> None:
        if value.dim() > 1 and value.shape[0] > 1:
            raise ValueError("streaming works on one input at a time")
        if not self._started:
            self._started = True
            return
        for token in value.reshape(-1).tolist():
            self.queue.put(int(token))

    def end(self) -> None:
        self.queue.put(self._END)

    def fail(self, error: BaseException) -> None:
        self.queue.put(error)

    def text_pieces(self) -> Iterator[str]:
        ids: list[int] = []
        shown = ""
        while True:
            item = self.queue.get(timeout=self.timeout)
            if item is self._END:
                break
            if isinstance(item, BaseException):
                raise item
            ids.append(item)
            text = decode(self.tokenizer, ids)
            if text.startswith(shown) and len(text) > len(shown):
                yield text[len(shown) :]
                shown = text
        final = decode(self.tokenizer, ids)
        if final.startswith(shown) and len(final) > len(shown):
            yield final[len(shown) :]


def stream_text(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    options: GenerationOptions,
) -> Iterator[str]:
    """Yield text as each token is generated (generation runs in a background thread).

    Beam search only knows its best sequence at the end, so with `num_beams > 1` the pieces come all
    at once when the search finishes; greedy and sampling stream token by token.
    """
    yield from stream_from(model, tokenizer, {"input_ids": input_ids, "attention_mask": attention_mask}, options)


def stream_from(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    source: dict[str, torch.Tensor],
    options: GenerationOptions,
    context: Callable[[], AbstractContextManager] = nullcontext,
) -> Iterator[str]:
    """`stream_text` for any encoder input (texts' ids and mask, or images' `pixel_values`). Generation runs in
    `context()` (a predictor's precision): entered in the generating thread, as autocast is per thread."""
    if options.num_beams > 1:
        with context():
            ids = generate_from(model, source, options)[0]
        shown = ""
        for i in range(1, len(ids) + 1):
            text = decode(tokenizer, ids[:i])
            if text.startswith(shown) and len(text) > len(shown):
                yield text[len(shown) :]
                shown = text
        return
    streamer = TokenStreamer(tokenizer)

    def run() -> None:
        try:
            with context():
                generate_from(model, source, options, streamer=streamer)
        except BaseException as err:  # surfaced in the consumer's thread
            streamer.fail(err)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield from streamer.text_pieces()
    finally:
        thread.join()
