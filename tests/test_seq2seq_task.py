"""Seq2SeqTask through the `n2m` command on a tiny backbone: fit (validation generates and scores), test,
predict, export, and the exported Predictor (batch and stream); a from-scratch model; learning a copy task."""

from __future__ import annotations

import json
from pathlib import Path

import lightning as L
import pytest
import torch
import yaml

from n2m.cli import main
from n2m.core.export import BACKBONE_KEY, CARD_KEY
from n2m.core.predictor import Predictor
from n2m.shapes.n2m.data import Seq2SeqDataModule
from n2m.shapes.n2m.examples import Seq2SeqColumns
from n2m.shapes.n2m.predictor import Seq2SeqPredictor
from n2m.shapes.n2m.task import Seq2SeqOptimization, Seq2SeqTask

ROOT = Path(__file__).resolve().parents[1]
TATOEBA = ROOT / "data/tatoeba_kor_eng/kor.txt"


@pytest.fixture(scope="module")
def copy_files(tmp_path_factory) -> dict[str, Path]:
    """Tatoeba slices (English and Korean columns) for an English copy task: 48 / 12 / 12 / 6 rows."""
    folder = tmp_path_factory.mktemp("tatoeba")
    lines = TATOEBA.read_text(encoding="utf-8").splitlines()
    parts = {"train": lines[100:148], "val": lines[200:212], "test": lines[300:312], "predict": lines[400:406]}
    files = {}
    for name, rows in parts.items():
        files[name] = folder / f"{name}.txt"
        files[name].write_text("\n".join(rows) + "\n", encoding="utf-8")
    return files


def override(
    tmp_path: Path, backbone: str, files: dict[str, Path], architecture: str = "warm_start", **model: object
) -> Path:
    """A second config over the real recipe: tiny backbone, tiny data, one short epoch."""
    data_file = {"format": "tab_pairs", "column_names": ["en", "ko", "attribution"]}
    config = {
        "model": {
            "encoder_layers": 2,
            "decoder_layers": 1,
            "optimization": {"lr": 1e-3},
            "generation": {"num_beams": 2, "max_new_tokens": 8},
            "val_generation": {"num_beams": 1, "max_new_tokens": 8},
            **model,
        },
        "data": {
            "backbone": backbone,
            "architecture": architecture,
            "train": [{"path": str(files["train"]), **data_file}],
            "val": [{"path": str(files["val"]), **data_file}],
            "test": [{"path": str(files["test"]), **data_file}],
            "columns": {"source": "en", "target": "en"},
            "split_file": None,
            "trim_vocab": False,  # the tiny backbone has minilm's WordPiece vocabulary
            "cache_tokens": False,
            "batch_size": 8,
        },
        "trainer": {"max_epochs": 1, "enable_progress_bar": False, "default_root_dir": str(tmp_path / "run")},
    }
    path = tmp_path / "override.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def cli(command: str, tmp_path: Path, config: Path, *extra: str) -> None:
    main([command, "--config", str(ROOT / "recipes/ko-en-translation.yaml"), "--config", str(config), *extra])


def test_recipes_parse(capsys):
    for recipe in ("ko-en-translation", "ko-chatbot", "scitldr-en"):
        with pytest.raises(SystemExit) as exit_:
            main(["fit", "--config", str(ROOT / f"recipes/{recipe}.yaml"), "--print_config"])
        assert exit_.value.code == 0
        out = capsys.readouterr().out
        assert "architecture:" in out and "generation:" in out


def test_fit_test_predict_export_stream(tiny_backbone, copy_files, tmp_path):
    config = override(tmp_path, tiny_backbone, copy_files)
    cli("fit", tmp_path, config)
    root = tmp_path / "run"
    report = json.loads((root / "results.json").read_text())
    assert {"test/bleu", "test/chrf", "test/chrf++", "test/loss"} <= set(report["test"])  # the recipe asks for both
    assert 0 <= report["test"]["test/bleu"] <= 100 and "val/bleu" in report["best_val"]
    generations = [json.loads(line) for line in (root / "test_generations.jsonl").read_text().splitlines()]
    assert [g["line"] for g in generations] == list(range(1, 13))  # file order, every test row
    assert all(isinstance(g["prediction"], str) and g["references"] for g in generations)
    # the reported BLEU is sacrebleu's corpus BLEU of exactly these generations (13a, as the recipe scores it)
    import sacrebleu

    hypotheses, references = [g["prediction"] for g in generations], [g["references"] for g in generations]
    depth = max(map(len, references))
    streams = [[r[i] if i < len(r) else r[0] for r in references] for i in range(depth)]
    bleu = sacrebleu.corpus_bleu(hypotheses, streams, tokenize="13a").score
    assert report["test"]["test/bleu"] == pytest.approx(bleu, abs=1e-3)
    # `chrf` is chrF (characters only: sacrebleu's default), `chrf++` adds word bigrams; they differ here
    chrf = sacrebleu.corpus_chrf(hypotheses, streams, word_order=0).score
    chrf_pp = sacrebleu.corpus_chrf(hypotheses, streams, word_order=2).score
    assert report["test"]["test/chrf"] == pytest.approx(chrf, abs=1e-2) and chrf > 0
    assert report["test"]["test/chrf++"] == pytest.approx(chrf_pp, abs=1e-2) and abs(chrf - chrf_pp) > 1e-2
    ckpt = torch.load(root / "checkpoints/last.ckpt", weights_only=True)
    assert ckpt[CARD_KEY]["shape"] == "N2M"

    last = str(root / "checkpoints/last.ckpt")
    out = tmp_path / "pred.jsonl"
    predict_file = json.dumps([{"path": str(copy_files["predict"]), "format": "tab_pairs",
                                "column_names": ["en", "ko", "attribution"]}])  # fmt: skip
    cli("predict", tmp_path, config, "--ckpt_path", last, "--data.predict", predict_file, "--output", str(out))
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [r["id"] for r in rows] == [str(i) for i in range(6)] and all(set(r) == {"id", "text"} for r in rows)

    main(["export", last, str(tmp_path / "export")])
    predictor = Predictor.from_pretrained(tmp_path / "export")
    assert isinstance(predictor, Seq2SeqPredictor)
    assert predictor.info["shape"] == "N2M" and predictor.info["settings"]["generation"]["num_beams"] == 2
    sources = [line.split("\t")[0] for line in copy_files["predict"].read_text(encoding="utf-8").splitlines()]
    assert [p.text for p in predictor.predict(sources)] == [r["text"] for r in rows]  # export = checkpoint
    greedy = predictor.predict(sources[:1], num_beams=1)[0].text  # per-call override
    assert "".join(predictor.stream(sources[0], num_beams=1)) == greedy
    assert predictor.predict([{"text": sources[0]}], num_beams=1)[0].text == greedy


def test_scratch_and_tied_models_train_and_export(tiny_backbone, copy_files, tmp_path, monkeypatch):
    monkeypatch.setenv("N2M_HOME", str(tmp_path / "home"))
    scratch = {"hidden_size": 32, "encoder_layers": 1, "decoder_layers": 1, "heads": 2, "ffn_size": 64}
    config = override(tmp_path, tiny_backbone, copy_files, architecture="scratch", scratch=scratch,
                      tie_encoder_decoder=True)  # fmt: skip
    cli("fit", tmp_path, config, "--data.tokenizer_vocab_size", "400")
    ckpt = torch.load(tmp_path / "run/checkpoints/last.ckpt", weights_only=True)
    tokenizer_dir = Path(ckpt[BACKBONE_KEY])
    assert tokenizer_dir.parent == tmp_path / "home/backbones"  # trained on the training text, cached
    spec = ckpt["hyper_parameters"]["spec"]
    assert spec["backbone_dir"] == str(tokenizer_dir) and spec["settings"]["architecture"] == "scratch"
    main(["export", str(tmp_path / "run/checkpoints/last.ckpt"), str(tmp_path / "export")])
    predictor = Predictor.from_pretrained(tmp_path / "export")
    assert len(predictor.tokenizer) <= 400  # the trained tokenizer travels with the model
    task = Seq2SeqTask(spec=spec, scratch=scratch, tie_encoder_decoder=True, generation={"max_new_tokens": 8})
    task.load_state_dict(ckpt["state_dict"])
    batch = predictor.collate(predictor.preprocess(["Tom is here.", "I like cats very much."]))
    assert task.generate(batch, num_beams=2) == [
        p.text for p in predictor.predict(["Tom is here.", "I like cats very much."])
    ]


def test_training_learns_to_copy(tiny_backbone, copy_files, tmp_path):
    def data_file(name):
        return {"path": str(copy_files[name]), "format": "tab_pairs", "column_names": ["en", "ko", "attribution"]}

    data = Seq2SeqDataModule(train=[data_file("train")], val=[data_file("val")], columns=Seq2SeqColumns("en", "en"),
                             batch_size=8, trim_vocab=False, cache_tokens=False, backbone=tiny_backbone)  # fmt: skip
    torch.manual_seed(0)
    task = Seq2SeqTask.from_data(data, label_smoothing=0.0, generation={"max_new_tokens": 8},
                                 optimization=Seq2SeqOptimization(lr=3e-3, warmup_ratio=0.0))  # fmt: skip
    data.setup("fit")
    batch = next(iter(data.val_dataloader()))
    task.eval()
    with torch.no_grad():
        before = float(task.loss(batch))
    trainer = L.Trainer(max_epochs=6, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, limit_val_batches=0, accelerator="cpu")  # fmt: skip
    trainer.fit(task, datamodule=data)
    task.eval()
    with torch.no_grad():
        after = float(task.loss(batch))
    assert after < before - 1.5  # nats per token on held-out rows: from ln(30k) ≈ 10.3 at random


def test_any_hf_seq2seq_model_trains_exports_and_predicts(copy_files, tmp_path, monkeypatch):
    """`pretrained`: a local HF seq2seq folder (here a tiny random BART, whose decoder starts with </s> and
    whose labels keep their <s>: the model's own conventions are followed)."""
    from transformers import AutoTokenizer, BartConfig, BartForConditionalGeneration

    from n2m.shapes.n2m.data import train_tokenizer

    monkeypatch.setenv("N2M_HOME", str(tmp_path / "home"))
    texts = [line.split("\t")[0] for line in TATOEBA.read_text(encoding="utf-8").splitlines()]
    tokenizer = AutoTokenizer.from_pretrained(train_tokenizer(texts, 600))
    config = BartConfig(vocab_size=len(tokenizer), d_model=32, encoder_layers=1, decoder_layers=1,
                        encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=64, decoder_ffn_dim=64,
                        max_position_embeddings=64, pad_token_id=tokenizer.pad_token_id,
                        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                        decoder_start_token_id=tokenizer.eos_token_id, forced_eos_token_id=None)  # fmt: skip
    folder = tmp_path / "tiny-bart"
    torch.manual_seed(0)
    BartForConditionalGeneration(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)

    train = [{"path": str(copy_files["train"]), "format": "tab_pairs", "column_names": ["en", "ko", "attribution"]}]
    data = Seq2SeqDataModule(train=train, columns=Seq2SeqColumns("en", "en"), backbone=str(folder),
                             architecture="pretrained", cache_tokens=False)  # fmt: skip
    data.setup("fit")
    labels = data.datasets["train"].targets[0]
    assert labels[0] == tokenizer.bos_token_id and labels[-1] == tokenizer.eos_token_id  # BART keeps <s>

    config_file = override(tmp_path, str(folder), copy_files, architecture="pretrained")
    cli("fit", tmp_path, config_file)
    last = str(tmp_path / "run/checkpoints/last.ckpt")
    main(["export", last, str(tmp_path / "export")])
    predictor = Predictor.from_pretrained(tmp_path / "export")
    assert type(predictor.model).__name__ == "BartForConditionalGeneration"
    out = predictor.predict(["Tom is here.", "I like cats."], max_new_tokens=5)
    assert len(out) == 2 and all(isinstance(o.text, str) for o in out)


def tiny_data(backbone: str) -> Seq2SeqDataModule:
    """Data that only names the backbone: enough for the model to be built (no files, no trimming)."""
    return Seq2SeqDataModule(backbone=backbone, trim_vocab=False)


def test_new_parts_of_a_warm_start_train_at_head_lr(tiny_backbone):
    assert (Seq2SeqOptimization().lr, Seq2SeqOptimization().head_lr) == (1e-4, 1e-3)  # N2M's own defaults
    optimization = Seq2SeqOptimization(lr=1e-4, head_lr=1e-3, weight_decay=0.0)
    task = Seq2SeqTask.from_data(tiny_data(tiny_backbone), optimization=optimization)
    task.trainer = type("T", (), {"estimated_stepping_batches": 10})()  # what configure_optimizers reads
    optimizer = task.configure_optimizers()["optimizer"]
    lr_of = {id(p): g["initial_lr"] for g in optimizer.param_groups for p in g["params"]}  # before warm-up
    names = dict(task.model.named_parameters())
    cross = names["net.decoder.bert.encoder.layer.0.crossattention.self.query.weight"]
    self_attention = names["net.decoder.bert.encoder.layer.0.attention.self.query.weight"]
    encoder = names["net.encoder.encoder.layer.0.attention.self.query.weight"]
    assert lr_of[id(cross)] == 1e-3 and lr_of[id(self_attention)] == 1e-4 and lr_of[id(encoder)] == 1e-4
    assert sum(len(g["params"]) for g in optimizer.param_groups) == len(names)


def test_monitoring_the_validation_loss_keeps_the_lowest(tiny_backbone, tmp_path):
    from n2m.core.callbacks import default_callbacks

    data = tiny_data(tiny_backbone)
    task = Seq2SeqTask.from_data(data, monitor="loss")
    checkpoint = default_callbacks(task, tmp_path, progress_bar=False)[0]
    assert (checkpoint.monitor, checkpoint.mode) == ("val/loss", "min")
    assert default_callbacks(Seq2SeqTask.from_data(data), tmp_path, False)[0].mode == "max"
    with pytest.raises(ValueError, match="rouge1"):
        Seq2SeqTask.from_data(data, monitor="rouge1")
