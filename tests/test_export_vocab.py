"""An export of a model trained on a vocabulary-trimmed backbone reads other text as the full backbone does:
trained rows back in the whole table (`--vocab full`, the default), or the small table (`--vocab trained`)."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoTokenizer

from n2m.backbones import resolve_backbone
from n2m.backbones.vocab_trim import TrimMap, full_vocabulary
from n2m.core.card import ModelCard
from n2m.core.export import export_checkpoint
from n2m.core.predictor import Predictor
from n2m.core.task import Optimization
from n2m.shapes.n21.data import TextDataModule
from n2m.shapes.n21.examples import Columns

# pieces KorSTS's first rows never use: a trimmed tokenizer turns them into <unk> or smaller pieces
UNSEEN = "개인정보 활용·사생활 침해 우려에 콘텐츠 플랫폼이 약관을 고쳤다."
EMBEDDINGS = "encoder.embeddings.word_embeddings.weight"


@pytest.fixture(scope="module")
def trained(korsts_slice: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """A KorSTS bi-encoder trained 3 steps on a trimmed e5-small; its checkpoint and both exports."""
    root = tmp_path_factory.mktemp("vocab")
    data = TextDataModule(
        train=str(korsts_slice["train"]),
        val=str(korsts_slice["val"]),
        columns=Columns(text="sentence1", text_pair="sentence2", label="score"),
        batch_size=8,
        backbone="e5-small",
        objective="regression",
        pair_encoding="bi",
        score_range=(0.0, 5.0),
        max_length=48,
        trim_vocab=True,
        cache_tokens=False,
    )
    from n2m.shapes.n21.task import SequenceTask

    task = SequenceTask.from_data(data, optimization=Optimization(lr=1e-3))
    trainer = L.Trainer(max_steps=3, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, accelerator="cpu", default_root_dir=root)  # fmt: skip
    trainer.fit(task, data)
    ckpt = root / "run" / "checkpoints" / "last.ckpt"
    trainer.save_checkpoint(ckpt)
    return ckpt, export_checkpoint(ckpt, root / "full"), export_checkpoint(ckpt, root / "trained", vocab="trained")


def test_full_export_keeps_trained_rows_and_the_backbone_elsewhere(trained: tuple[Path, Path, Path]) -> None:
    ckpt, full, small = trained
    trim = TrimMap.of(Path(torch.load(ckpt, weights_only=True)["n2m_backbone_dir"]))
    assert trim is not None
    e5 = resolve_backbone("e5-small")
    pretrained = load_file(str(e5 / "model.safetensors"))["embeddings.word_embeddings.weight"]
    table = load_file(str(full / "model.safetensors"))[EMBEDDINGS]
    trained_rows = load_file(str(small / "model.safetensors"))[EMBEDDINGS]
    assert table.shape == pretrained.shape and trained_rows.shape[0] == len(trim.kept)
    assert torch.equal(table[trim.kept], trained_rows)
    assert not torch.equal(trained_rows, pretrained[trim.kept])  # training moved them: the test can tell
    untouched = torch.ones(len(pretrained), dtype=torch.bool)
    untouched[trim.kept] = False
    assert torch.equal(table[untouched], pretrained[untouched])
    assert len(AutoTokenizer.from_pretrained(full)) == len(AutoTokenizer.from_pretrained(e5))
    assert ModelCard.load(full).provenance["vocabulary"] == {"trained_pieces": len(trim.kept), "exported": "full"}
    assert ModelCard.load(full).provenance["title"] == "run"  # the run folder, not `checkpoints`


def test_unseen_text_reads_as_the_backbone_reads_it(trained: tuple[Path, Path, Path], korsts_slice) -> None:
    _, full, small = trained
    e5 = AutoTokenizer.from_pretrained(resolve_backbone("e5-small"))
    assert AutoTokenizer.from_pretrained(full).tokenize(UNSEEN) == e5.tokenize(UNSEEN)
    cut = AutoTokenizer.from_pretrained(small).tokenize(UNSEEN)
    assert cut != e5.tokenize(UNSEEN)  # the trimmed tokenizer loses pieces on this text
    # text made of trained pieces scores the same both ways: only untrained rows differ
    seen = korsts_slice["train"].read_text(encoding="utf-8").splitlines()[1].split("\t")
    pair = {"text": seen[5], "text_pair": seen[6]}
    a, b = Predictor.from_pretrained(full), Predictor.from_pretrained(small)
    assert a.predict([pair])[0].score == pytest.approx(b.predict([pair])[0].score, abs=1e-5)
    unseen = {"text": UNSEEN, "text_pair": "콘텐츠 플랫폼의 약관 변경"}
    assert a.predict([unseen])[0].score != pytest.approx(b.predict([unseen])[0].score, abs=1e-4)


def test_a_generator_keeps_its_trained_vocabulary() -> None:
    """Rows that never trained in an output layer would compete in every generated token: no write-back."""
    trim = TrimMap(Path("/nonexistent"), [0, 2, 5])
    state = {"encoder.embeddings.word_embeddings.weight": torch.zeros(3, 4), "lm_head.weight": torch.zeros(3, 4)}
    assert full_vocabulary(state, trim) is None
    with pytest.raises(FileNotFoundError, match="trimmed from is gone"):
        full_vocabulary({"encoder.embeddings.word_embeddings.weight": torch.zeros(3, 4)}, trim)
