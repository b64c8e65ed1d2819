"""TokenTask, its data, its exporter and its Predictor, on tiny random backbones (seconds each)."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import lightning as L
import pytest
import torch
from helpers import build_metaspace_backbone

from n2m.cli import main
from n2m.core.export import export_checkpoint
from n2m.core.predictor import Predictor
from n2m.core.task import Optimization
from n2m.shapes.n2n.data import TokenDataModule
from n2m.shapes.n2n.outputs import EntityPrediction, TagPrediction
from n2m.shapes.n2n.predictor import TokenPredictor
from n2m.shapes.n2n.task import TokenTask

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data"


def sentence_blocks(path: Path) -> tuple[list[str], list[str]]:
    """(leading comment lines, sentence blocks) of a blank-line-separated file."""
    text = path.read_text(encoding="utf-8")
    blocks = [b for b in re.split(r"\n[ \t]*\n", text.replace("\r\n", "\n")) if b.strip()]
    head = [line for line in blocks[0].splitlines() if line.startswith("## ") and "\t" not in line]
    blocks[0] = "\n".join(line for line in blocks[0].splitlines() if line not in head)
    return head, blocks


def write_slice(source: Path, target: Path, start: int, count: int) -> Path:
    head, blocks = sentence_blocks(source)
    target.write_text("\n".join([*head, "\n\n".join(blocks[start : start + count])]) + "\n\n", encoding="utf-8")
    return target


@pytest.fixture(scope="session")
def klue_ner_slice(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("klue-ner")
    source = DATA / "klue_ner/klue-ner-v1.1_dev.tsv"
    return {
        "train": write_slice(source, folder / "train.tsv", 0, 48),
        "val": write_slice(source, folder / "val.tsv", 100, 24),
    }


@pytest.fixture(scope="session")
def wnut_slice(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("wnut")
    return {
        "train": write_slice(DATA / "wnut17/wnut17train.conll", folder / "train.conll", 0, 64),
        "val": write_slice(DATA / "wnut17/emerging.dev.conll", folder / "dev.conll", 0, 32),
    }


@pytest.fixture(scope="session")
def klue_backbone(tmp_path_factory, klue_ner_slice) -> str:
    from n2m.shapes.n2n.examples import load_token_examples

    texts = [ex.text for ex in load_token_examples(klue_ner_slice["train"], "klue-ner")]
    texts += [ex.text for ex in load_token_examples(klue_ner_slice["val"], "klue-ner")]
    return build_metaspace_backbone(tmp_path_factory.mktemp("klue-bert"), texts, vocab_size=600)


def make(backbone: str, train: Path, val: Path, fmt: str, scheme: str = "bio", lr: float = 1e-3):
    data = TokenDataModule(
        train=str(train), val=str(val), format=fmt, batch_size=8, backbone=backbone, scheme=scheme, cache_tokens=False
    )
    task = TokenTask.from_data(data, optimization=Optimization(lr=lr))
    return task, data


def quick_trainer(tmp_path: Path, **kwargs) -> L.Trainer:
    options = dict(
        max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, default_root_dir=tmp_path, accelerator="cpu",
    )  # fmt: skip
    return L.Trainer(**{**options, **kwargs})


def test_word_level_ner_trains(tiny_backbone, wnut_slice, tmp_path):
    task, data = make(tiny_backbone, wnut_slice["train"], wnut_slice["val"], "conll")
    assert data.unit == "word" and data.label_names[0] == "O" and "B-location" in data.label_names
    trainer = quick_trainer(tmp_path)
    trainer.fit(task, data)
    metrics = trainer.callback_metrics
    assert {"val/f1", "val/f1_argmax", "val/f1_constrained", "val/precision", "val/recall", "train/loss"} <= set(
        metrics
    )
    f1, precision, recall = (float(metrics[f"val/{k}"]) for k in ("f1", "precision", "recall"))
    assert f1 == pytest.approx(float(metrics["val/f1_constrained"]))  # constrained decoding is the default
    assert f1 == pytest.approx(2 * precision * recall / (precision + recall) if precision + recall else 0.0, abs=1e-6)


def test_entity_edges_inside_tokens_are_learned(tmp_path):
    """Words like `박씨의` are single tokens while only `박` is the entity: the head must put the edge inside the
    token. A check that could fail: a head reading only the token could not tell `박` from `씨`."""
    rng = random.Random(0)
    people, others = ["박씨의", "김씨가", "이씨는"], ["학교에", "오늘은", "사람이", "아주"]
    lines, texts = [], []
    for s in range(120):
        words = [rng.choice(people + others) for _ in range(rng.randint(2, 5))]
        text = " ".join(words)
        texts.append(text)
        lines.append(f"## s{s}\t{text}")
        for w, word in enumerate(words):
            for c, char in enumerate(word):
                lines.append(f"{char}\t{('B-PS' if c == 0 else 'O') if word in people else 'O'}")
            if w < len(words) - 1:
                lines.append(" \tO")
        lines.append("")
    train = tmp_path / "train.tsv"
    train.write_text("\n".join(lines) + "\n", encoding="utf-8")
    backbone = build_metaspace_backbone(tmp_path / "bert", texts, words=people + others)
    from transformers import AutoTokenizer

    assert "▁박씨의" in AutoTokenizer.from_pretrained(backbone).tokenize("박씨의")  # one token, edge inside
    task, data = make(backbone, train, train, "klue-ner", lr=3e-3)
    assert data.unit == "char"
    trainer = quick_trainer(tmp_path, max_epochs=8)
    trainer.fit(task, data)
    assert float(trainer.callback_metrics["val/f1"]) > 0.95


def test_pos_tags_scheme(klue_backbone, tmp_path):
    """The reported test accuracy is the share of gold tags the written predictions match (a tag unseen in
    training counts as wrong), and the tagger learns: on its own training sentences it is far above the
    majority tag. (Seeds 0-4: on the held-out sentences the tiny model stays under the majority tag, 0.05-0.10
    against 0.11, nothing to assert; on its training sentences it reaches 0.48-0.52 against 0.10.)"""
    from n2m.core.callbacks import TestPredictionWriter

    source = DATA / "klue_dp/klue-dp-v1.1_dev.tsv"
    train = write_slice(source, tmp_path / "train.tsv", 0, 40)
    val = write_slice(source, tmp_path / "val.tsv", 40, 20)
    L.seed_everything(0, verbose=False)
    options = dict(format="klue-dp", batch_size=8, backbone=klue_backbone, scheme="tags", cache_tokens=False)
    data = TokenDataModule(train=str(train), val=str(val), test=str(val), **options)
    task = TokenTask.from_data(data, optimization=Optimization(lr=1e-2))
    assert "NNP+JKS" in data.label_names
    trainer = quick_trainer(tmp_path, max_epochs=8, callbacks=[TestPredictionWriter(tmp_path)])
    trainer.fit(task, data)

    def accuracies(data: TokenDataModule) -> tuple[float, float, int]:
        """(reported, recomputed from test_predictions.jsonl, gold tags never seen in training)."""
        reported = trainer.test(task, data, verbose=False)[0]["test/accuracy"]
        rows = [json.loads(line) for line in (tmp_path / "test_predictions.jsonl").read_text().splitlines()]
        assert len(rows) == len(data.examples["test"])
        pairs = [(g, w["tag"]) for r in rows for g, w in zip(r["gold"]["tags"], r["prediction"]["words"], strict=True)]
        unseen = sum(g not in data.label_names for g, _ in pairs)
        return reported, sum(g == p for g, p in pairs) / len(pairs), unseen

    reported, recomputed, unseen = accuracies(data)
    assert unseen > 0  # tag sequences never seen in training: kept, scored as wrong
    assert reported == pytest.approx(recomputed, abs=1e-6)

    on_train = TokenDataModule(train=str(train), test=str(train), **options)
    reported, recomputed, _ = accuracies(on_train)
    assert reported == pytest.approx(recomputed, abs=1e-6)
    tags = [t for ex in on_train.examples["test"] for t in ex.tags]
    majority = max(tags.count(t) for t in set(tags)) / len(tags)
    assert reported > majority + 0.25, (reported, majority)


def test_unknown_entity_type_names_file_and_line(tiny_backbone, wnut_slice, tmp_path):
    bad = tmp_path / "dev.conll"
    bad.write_text("Hello\tO\nBerlin\tB-city\n\n", encoding="utf-8")
    from n2m.errors import DataError

    _, data = make(tiny_backbone, wnut_slice["train"], bad, "conll")
    with pytest.raises(DataError) as err:
        data.setup("fit")
    assert err.value.line == 2 and "'B-city' never appears in the training data" in str(err.value)


def test_not_bio_tags_say_use_tags_scheme(tiny_backbone, tmp_path):
    from n2m.errors import DataError

    pos = write_slice(DATA / "klue_dp/klue-dp-v1.1_dev.tsv", tmp_path / "pos.tsv", 0, 5)
    with pytest.raises(DataError, match="scheme: tags"):
        make(tiny_backbone, pos, pos, "klue-dp", scheme="bio")


def test_export_and_predictor_match_the_task(klue_backbone, klue_ner_slice, tmp_path):
    task, data = make(klue_backbone, klue_ner_slice["train"], klue_ner_slice["val"], "klue-ner")
    trainer = quick_trainer(tmp_path, max_epochs=2, enable_checkpointing=True)
    trainer.fit(task, data)
    ckpt = tmp_path / "model.ckpt"
    trainer.save_checkpoint(ckpt)
    out = export_checkpoint(ckpt, tmp_path / "export")
    predictor = Predictor.from_pretrained(out)
    assert isinstance(predictor, TokenPredictor) and predictor.info["shape"] == "N2N"
    assert predictor.info["settings"]["unit"] == "char"

    examples = data.examples["val"]
    exported = predictor.predict_units(examples, batch_size=5)
    task.eval()
    with torch.no_grad():
        for i, (_, probs) in enumerate(exported):
            batch = data.collate([data.datasets["val"][i]])
            reference = task.model(batch).softmax(-1)[0]
            assert (probs - reference).abs().max() <= 1e-4

    results = predictor.predict([ex.text for ex in examples])
    assert all(isinstance(r, EntityPrediction) for r in results)
    for ex, result in zip(examples, results, strict=True):
        for entity in result.entities:
            assert ex.text[entity.start : entity.end] == entity.text  # nothing lost or shifted
            assert 0.0 <= entity.score <= 1.0


def test_cli_fit_predict_export(klue_backbone, klue_ner_slice, tmp_path):
    root = tmp_path / "run"
    common = [
        "--config", str(ROOT / "recipes/klue-ner.yaml"), "--data.backbone", klue_backbone,
        "--model.optimization.lr", "1e-3",
        "--data.train", str(klue_ner_slice["train"]), "--data.val", str(klue_ner_slice["val"]),
        "--data.test", str(klue_ner_slice["val"]), "--data.split_file", "null", "--data.trim_vocab", "false",
        "--data.batch_size", "8", "--data.cache_tokens", "false", "--trainer.default_root_dir", str(root),
        "--trainer.max_epochs", "1", "--trainer.enable_progress_bar", "false",
    ]  # fmt: skip
    main(["fit", *common])
    results = json.loads((root / "results.json").read_text())
    assert {"test/f1", "test/f1_argmax", "test/f1_constrained"} <= set(results["test"])

    texts = ["경찰은 또 박씨의 딸(32)과 16명을 입건했다.", "서울에서 만났다"]
    inputs = tmp_path / "in.jsonl"
    inputs.write_text(
        "".join(json.dumps({"id": f"t{i}", "text": t}, ensure_ascii=False) + "\n" for i, t in enumerate(texts))
    )
    output = tmp_path / "pred.jsonl"
    last = str(root / "checkpoints/last.ckpt")
    main(["predict", *common, "--ckpt_path", last, "--data.predict", str(inputs), "--output", str(output)])
    rows = [json.loads(line) for line in output.read_text(encoding="utf-8").splitlines()]
    assert [r["id"] for r in rows] == ["t0", "t1"] and all(set(r) == {"id", "entities"} for r in rows)

    main(["export", last, str(tmp_path / "export")])
    predictor = Predictor.from_pretrained(tmp_path / "export")
    predicted = [json.loads(json.dumps(r.entities, default=vars)) for r in predictor.predict(texts)]
    assert predicted == [r["entities"] for r in rows]  # the exported model predicts what the checkpoint did


def test_predictor_tags_words(tiny_backbone, tmp_path):
    source = DATA / "klue_dp/klue-dp-v1.1_dev.tsv"
    train = write_slice(source, tmp_path / "train.tsv", 0, 20)
    task, data = make(tiny_backbone, train, train, "klue-dp", scheme="tags")
    trainer = quick_trainer(tmp_path, max_steps=1)
    trainer.fit(task, data)
    trainer.save_checkpoint(tmp_path / "m.ckpt")
    predictor = Predictor.from_pretrained(export_checkpoint(tmp_path / "m.ckpt", tmp_path / "export"))
    (result,) = predictor.predict(["유희열이  홍정희의 탈락에"])
    assert isinstance(result, TagPrediction)
    assert [(w.text, w.start, w.end) for w in result.words] == [
        ("유희열이", 0, 4),
        ("홍정희의", 6, 10),
        ("탈락에", 11, 14),
    ]
    assert all(w.tag in data.label_names for w in result.words)


def test_text_prefix_trains_exports_and_predicts_alike(tiny_backbone, wnut_slice, tmp_path):
    """The prefix is in every training input and in the card, so the exported model reads texts as in training."""
    data = TokenDataModule(train=str(wnut_slice["train"]), val=str(wnut_slice["val"]), format="conll", batch_size=8,
                           backbone=tiny_backbone, cache_tokens=False, text_prefix="query: ")  # fmt: skip
    task = TokenTask.from_data(data, optimization=Optimization(lr=1e-3))
    assert task.spec.encoding.text_prefix == "query: "
    trainer = quick_trainer(tmp_path, max_steps=3)
    trainer.fit(task, data)
    prefix_ids = data.tokenizer("query: ")["input_ids"][:-1]  # [CLS] and the prefix's tokens
    assert all(f["input_ids"][: len(prefix_ids)] == prefix_ids for f in data.datasets["val"].features)
    trainer.save_checkpoint(tmp_path / "m.ckpt")
    predictor = Predictor.from_pretrained(export_checkpoint(tmp_path / "m.ckpt", tmp_path / "export"))
    assert predictor.info["encoding"]["text_prefix"] == "query: "

    examples = data.examples["val"]
    task.eval()
    with torch.no_grad():
        for i, (_, probs) in enumerate(predictor.predict_units(examples)):
            reference = task.model(data.collate([data.datasets["val"][i]])).softmax(-1)[0]
            assert (probs - reference).abs().max() <= 1e-4
    for ex, result in zip(examples, predictor.predict([ex.text for ex in examples]), strict=True):
        assert all(ex.text[e.start : e.end] == e.text for e in result.entities)  # offsets of the text, not prefix


def test_ddp_scores_equal_one_process(tiny_backbone, wnut_slice, tmp_path):
    """Two CPU processes each score half the test sentences; summed states give the one-process entity F1."""
    import os
    import subprocess
    import sys

    root = tmp_path / "ddp"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "tests"), "OMP_NUM_THREADS": "1"}
    files = ["--data.train", str(wnut_slice["train"]), "--data.val", str(wnut_slice["val"]),
             "--data.test", str(wnut_slice["val"])]  # fmt: skip
    cmd = [sys.executable, "-m", "n2m.cli", "fit", "--config", str(ROOT / "recipes/wnut17.yaml"), *files,
           "--data.backbone", tiny_backbone, "--model.optimization.lr", "1e-3", "--data.batch_size", "8",
           "--data.cache_tokens", "false", "--trainer.max_epochs", "1", "--trainer.default_root_dir", str(root),
           "--trainer.enable_progress_bar", "false", "--trainer.strategy", "ddp", "--trainer.devices", "2",
           "--trainer.accelerator", "cpu"]  # fmt: skip
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads((root / "results.json").read_text())
    assert report["test"]["test/f1"] > 0.0  # something found, so the comparison below means something

    task = TokenTask.load_from_checkpoint(report["best_checkpoint"], map_location="cpu")
    data = TokenDataModule(
        train=str(wnut_slice["train"]), test=str(wnut_slice["val"]), format="conll", backbone=tiny_backbone,
        batch_size=8, cache_tokens=False, label_names=task.spec.labels,
    )  # fmt: skip
    (single,) = quick_trainer(tmp_path).test(task, datamodule=data, verbose=False)
    for key in ("test/f1", "test/precision", "test/recall", "test/f1_argmax"):
        assert single[key] == pytest.approx(report["test"][key], abs=1e-6), key
