"""The `n2m` command end to end on a tiny backbone: fit, resume, test, predict, export, DDP, bad input."""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from n2m import Predictor
from n2m.cli import main
from n2m.shapes.n21.ensemble import ensemble_score

ROOT = Path(__file__).resolve().parents[1]


def sts_args(backbone: str, files: dict[str, Path], root: Path, *extra: str) -> list[str]:
    return [
        "--config",
        str(ROOT / "recipes/korsts.yaml"),
        "--data.backbone",
        backbone,
        "--model.optimization.lr",
        "1e-3",
        "--data.train",
        str(files["train"]),
        "--data.val",
        str(files["val"]),
        "--data.test",
        str(files["test"]),
        "--data.batch_size",
        "8",
        "--data.cache_tokens",
        "false",
        "--data.trim_vocab",
        "false",  # the tiny test backbone has minilm's WordPiece vocabulary
        "--trainer.default_root_dir",
        str(root),
        "--trainer.max_epochs",
        "1",
        "--trainer.enable_progress_bar",
        "false",
        *extra,
    ]


def test_print_config_shows_linked_recipe(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["fit", "--config", str(ROOT / "recipes/korsts.yaml"), "--print_config"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert "pair_encoding: bi" in out and "sts-train.tsv" in out


def test_fit_test_predict_export(tiny_backbone, korsts_slice, tmp_path, capsys):
    root = tmp_path / "run"
    main(["fit", *sts_args(tiny_backbone, korsts_slice, root)])
    checkpoints = sorted(p.name for p in (root / "checkpoints").iterdir())
    assert "last.ckpt" in checkpoints and any(c.startswith("best-") for c in checkpoints)
    assert any((root / "logs").rglob("metrics.csv")) and any((root / "logs").rglob("events.out.tfevents*"))

    last = str(root / "checkpoints/last.ckpt")  # one epoch: the same weights as the best, which fit tested
    fit_test = json.loads((root / "results.json").read_text(encoding="utf-8"))["test"]["test/pearson"]
    capsys.readouterr()
    main(["test", *sts_args(tiny_backbone, korsts_slice, root), "--ckpt_path", last])
    printed = re.search(r"test/pearson\W+(-?\d\.\d+)", capsys.readouterr().out)
    assert printed and float(printed.group(1)) == pytest.approx(fit_test, abs=1e-4)

    out_csv = tmp_path / "pred.csv"
    main(
        [
            "predict",
            *sts_args(tiny_backbone, korsts_slice, root),
            "--ckpt_path",
            last,
            "--data.predict",
            str(korsts_slice["test"]),
            "--output",
            str(out_csv),
        ]
    )
    with out_csv.open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    with korsts_slice["test"].open(encoding="utf-8") as f:
        gold = list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    assert [r["id"] for r in rows] == [g["id"] for g in gold]  # file order and ids kept
    predicted, truth = [float(r["score"]) for r in rows], [float(g["score"]) for g in gold]
    assert float(np.corrcoef(predicted, truth)[0, 1]) == pytest.approx(fit_test, abs=1e-4)  # the scores tested

    out_jsonl = tmp_path / "pred.jsonl"
    main(
        [
            "predict",
            *sts_args(tiny_backbone, korsts_slice, root),
            "--ckpt_path",
            last,
            "--data.predict",
            str(korsts_slice["test"]),
            "--output",
            str(out_jsonl),
        ]
    )
    first = json.loads(out_jsonl.read_text(encoding="utf-8").splitlines()[0])
    assert set(first) == {"id", "score"}

    main(["export", last, str(tmp_path / "export")])
    predictor = Predictor.from_pretrained(tmp_path / "export")
    scores = predictor.predict_outputs([(g["sentence1"], g["sentence2"]) for g in gold])
    from_ckpt = torch.tensor([float(r["score"]) for r in rows])
    assert (scores - from_ckpt).abs().max() <= 1e-4

    # the export over a file, no recipe: the same scores, the file's ids kept
    out_model = tmp_path / "pred-model.csv"
    main(["predict", "--model", str(tmp_path / "export"), "--input", str(korsts_slice["test"]), "--output",
          str(out_model), "--column", "text=sentence1", "--column", "text_pair=sentence2", "--id", "id"])  # fmt: skip
    with out_model.open(encoding="utf-8") as f:
        model_rows = list(csv.DictReader(f))
    assert [r["id"] for r in model_rows] == [g["id"] for g in gold]
    assert torch.allclose(torch.tensor([float(r["score"]) for r in model_rows]), from_ckpt, atol=1e-4)

    # --precision bf16: bfloat16 autocast, so scores near fp32's but computed otherwise
    out_bf16 = tmp_path / "pred-bf16.csv"
    main(["predict", "--model", str(tmp_path / "export"), "--input", str(korsts_slice["test"]), "--output",
          str(out_bf16), "--column", "text=sentence1", "--column", "text_pair=sentence2",
          "--precision", "bf16"])  # fmt: skip
    with out_bf16.open(encoding="utf-8") as f:
        bf16 = torch.tensor([float(r["score"]) for r in csv.DictReader(f)])
    assert 0 < (bf16 - from_ckpt).abs().max() <= 0.05


def test_predict_refuses_exports_where_checkpoints_go_and_broken_folders(tmp_path, korsts_slice, capsys):
    """An export given as `--ckpt_path`, and a folder whose model cannot load: one line each, exit 2."""
    fixture = Path(__file__).parent / "fixtures/exports_v0/n21-bi-regression"
    with pytest.raises(SystemExit) as exit_:
        main(["predict", "--config", "recipes/korsts.yaml", "--ckpt_path", str(fixture), "--output", "x.csv"])
    assert exit_.value.code == 2 and "is an exported model, not a training checkpoint" in capsys.readouterr().err
    broken = tmp_path / "broken"
    broken.mkdir()
    for name in ("n2m.json", "config.json", "tokenizer.json", "tokenizer_config.json"):
        (broken / name).write_bytes((fixture / name).read_bytes())
    (broken / "model.safetensors").write_bytes((fixture / "model.safetensors").read_bytes()[:100])  # cut off
    args = ["predict", "--model", str(broken), "--input", str(korsts_slice["test"]), "--output", "x.csv",
            "--column", "text=sentence1", "--column", "text_pair=sentence2"]  # fmt: skip
    with pytest.raises(SystemExit) as exit_:
        main(args)
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and "cannot be loaded as an n2m model" in err and "Traceback" not in err


def test_resume_after_interrupt(tiny_backbone, korsts_slice, tmp_path):
    """A run that dies of an exception in epoch 2 saves nothing then (a half-done step is no state to resume
    from), resumes from the end of epoch 1 and finishes. Killed mid-epoch after a periodic checkpoint, with the
    weights compared against an uninterrupted run: tests/test_resume.py."""
    root = tmp_path / "run"
    steps_per_epoch = 8  # 64 rows / batch 8
    crash = json.dumps({"class_path": "helpers.CrashAtStep", "init_args": {"step": steps_per_epoch + 3}})
    with pytest.raises(RuntimeError, match="simulated crash"):
        main(
            [
                "fit",
                *sts_args(
                    tiny_backbone, korsts_slice, root, "--trainer.max_epochs", "2", "--trainer.callbacks+", crash
                ),
            ]
        )
    last = torch.load(root / "checkpoints/last.ckpt", weights_only=True)
    assert last["global_step"] == steps_per_epoch  # the end of epoch 1 survived the crash

    main(["fit", *sts_args(tiny_backbone, korsts_slice, root, "--trainer.max_epochs", "2"), "--ckpt_path", "last"])
    resumed = torch.load(root / "checkpoints/last.ckpt", weights_only=True)
    assert resumed["global_step"] == 2 * steps_per_epoch
    assert resumed["epoch"] == 1


def test_last_checkpoint_follows_every_epoch(tiny_backbone, korsts_slice, tmp_path):
    """With lr 0 no epoch beats the first on validation; last.ckpt still moves on with each epoch."""
    root = tmp_path / "run"
    main(
        [
            "fit",
            *sts_args(tiny_backbone, korsts_slice, root, "--trainer.max_epochs", "2", "--model.optimization.lr", "0"),
        ]
    )
    assert torch.load(root / "checkpoints/last.ckpt", weights_only=True)["global_step"] == 16
    assert [p.name for p in (root / "checkpoints").glob("best-*")] == ["best-epoch=0-step=8.ckpt"]


@pytest.mark.parametrize(("threshold_mb", "fixed"), [("1.5", [3 << 19]), ("0", [])])
def test_mmap_threshold_is_a_fit_option(tiny_backbone, korsts_slice, tmp_path, monkeypatch, threshold_mb, fixed):
    calls: list[int] = []
    monkeypatch.setattr("n2m.cli.fix_mmap_threshold", calls.append)
    extra = ["--mmap_threshold_mb", threshold_mb, "--trainer.limit_train_batches", "1", "--test_after_fit", "false"]
    main(["fit", *sts_args(tiny_backbone, korsts_slice, tmp_path / "run", *extra)])
    assert calls == fixed  # 0 leaves glibc's own dynamic threshold alone


def test_bad_data_fails_before_training(tiny_backbone, korsts_slice, tmp_path, capsys):
    bad = tmp_path / "bad.tsv"
    lines = korsts_slice["train"].read_text(encoding="utf-8").splitlines()
    cells = lines[5].split("\t")
    cells[4] = "five"
    lines[5] = "\t".join(cells)
    bad.write_text("\n".join(lines) + "\n", encoding="utf-8")
    files = {**korsts_slice, "train": bad}
    with pytest.raises(SystemExit) as exit_:
        main(["fit", *sts_args(tiny_backbone, files, tmp_path / "run")])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "bad.tsv, line 6, column 'score': label 'five' is not a number" in err
    assert not (tmp_path / "run/checkpoints").exists()


def test_ddp_two_cpu_processes(tiny_backbone, korsts_slice, tmp_path):
    root = tmp_path / "ddp"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "tests"), "OMP_NUM_THREADS": "1"}
    cmd = [
        sys.executable,
        "-m",
        "n2m.cli",
        "fit",
        *sts_args(tiny_backbone, korsts_slice, root),
        "--trainer.strategy",
        "ddp",
        "--trainer.devices",
        "2",
        "--trainer.accelerator",
        "cpu",
    ]
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    ckpt = torch.load(root / "checkpoints/last.ckpt", weights_only=True)
    assert ckpt["global_step"] == 4  # 64 rows / (8 per batch × 2 processes)


def test_kfold_trains_each_fold_and_ensembles(tiny_backbone, korsts_slice, tmp_path):
    root = tmp_path / "kfold"
    args = sts_args(tiny_backbone, korsts_slice, root)
    main(["kfold", "--folds", "2", *args])
    folds = [torch.load(root / f"fold{i}/checkpoints/last.ckpt", weights_only=True) for i in range(2)]
    assert all(f["global_step"] == 4 for f in folds)  # 32 of the 64 rows train each fold, batch 8

    ensemble = Predictor.from_pretrained(root / "ensemble")
    members = [Predictor.from_pretrained(root / f"fold{i}/model") for i in range(2)]
    pairs = [("한 남자가 기타를 친다.", "남자가 기타를 연주한다."), ("고양이가 잔다.", "개가 짖는다.")]
    weights = ensemble.weights
    expected = sum(w * m.predict_outputs(pairs) for w, m in zip(weights, members, strict=True))
    assert torch.allclose(ensemble.predict_outputs(pairs), expected, atol=1e-6)
    assert len(ensemble.predict(pairs)) == 2 and ensemble.info["ensemble"]["members"] == 2

    # weights fitted on a labelled file: never below the best member alone on that file
    folders = [str(root / f"fold{i}/model") for i in range(2)]
    columns = ["--text", "sentence1", "--text-pair", "sentence2", "--label", "score"]
    main(
        ["ensemble", str(tmp_path / "fit"), *folders, "--weighting", "fit", "--val", str(korsts_slice["val"]), *columns]
    )
    fitted = Predictor.from_pretrained(tmp_path / "fit")
    with korsts_slice["val"].open(encoding="utf-8") as f:
        dev = list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    dev_pairs, gold = [(r["sentence1"], r["sentence2"]) for r in dev], torch.tensor([float(r["score"]) for r in dev])
    pearson = [ensemble_score(p.predict_outputs(dev_pairs), gold, "regression") for p in [*members, fitted]]
    assert pearson[-1] >= max(pearson[:-1]) - 1e-6


def test_fold_and_val_file_conflict(tiny_backbone, korsts_slice, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["fit", *sts_args(tiny_backbone, korsts_slice, tmp_path), "--data.folds", "5"])
    assert exit_.value.code == 2
    assert "set either `data.folds` or `data.val`" in capsys.readouterr().err


def test_ema_checkpoint_holds_the_average_and_is_what_gets_tested(tiny_backbone, korsts_slice, tmp_path):
    """With EMA on, the best checkpoint's model is the average, and after-fit testing scores that average."""
    root = tmp_path / "run"
    ema = json.dumps(
        {
            "class_path": "lightning.pytorch.callbacks.EMAWeightAveraging",
            "init_args": {"decay": 0.95, "use_buffers": False},
        }
    )
    main(
        ["fit", *sts_args(tiny_backbone, korsts_slice, root, "--trainer.max_epochs", "2", "--trainer.callbacks+", ema)]
    )
    report = json.loads((root / "results.json").read_text(encoding="utf-8"))
    best = torch.load(report["best_checkpoint"], weights_only=True)
    raw, average = best["current_model_state"], best["state_dict"]
    assert any(not torch.equal(raw[k], average[k]) for k in average if k.startswith("model."))

    main(["export", str(root), str(tmp_path / "export")])  # the run folder: the checkpoint that was tested
    predictor = Predictor.from_pretrained(tmp_path / "export")
    with korsts_slice["test"].open(encoding="utf-8") as f:
        gold = list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    scores = predictor.predict_outputs([(g["sentence1"], g["sentence2"]) for g in gold])
    pearson = ensemble_score(scores, torch.tensor([float(g["score"]) for g in gold]), "regression")
    assert abs(pearson - report["test"]["test/pearson"]) <= 1e-4


def test_a_run_folder_exports_its_best_checkpoint_even_moved(tmp_path):
    from n2m.core.export import chosen_checkpoint

    run = tmp_path / "moved-run"
    (run / "checkpoints").mkdir(parents=True)
    for name in ("best-epoch=0-step=5.ckpt", "best-epoch=2-step=15.ckpt", "last.ckpt"):
        (run / "checkpoints" / name).write_bytes(b"")
    os.utime(run / "checkpoints/best-epoch=0-step=5.ckpt", (1e9, 1e9))
    assert chosen_checkpoint(run) == run / "checkpoints/best-epoch=2-step=15.ckpt"  # the newest best-*
    results = {"best_checkpoint": "/elsewhere/run/checkpoints/best-epoch=0-step=5.ckpt"}  # written before a move
    (run / "results.json").write_text(json.dumps(results), encoding="utf-8")
    assert chosen_checkpoint(run) == run / "checkpoints/best-epoch=0-step=5.ckpt"  # the one that was tested
    assert chosen_checkpoint(run / "checkpoints/last.ckpt") == run / "checkpoints/last.ckpt"  # a file as given
    for path in (run / "checkpoints").glob("best-*"):
        path.unlink()
    with pytest.raises(FileNotFoundError, match="moved-run is a folder with no best-"):
        chosen_checkpoint(run)


def test_weight_averaging_of_buffers_is_refused(tiny_backbone, korsts_slice, tmp_path, capsys):
    ema = json.dumps({"class_path": "lightning.pytorch.callbacks.EMAWeightAveraging"})
    with pytest.raises(SystemExit) as exit_:
        main(["fit", *sts_args(tiny_backbone, korsts_slice, tmp_path / "run", "--trainer.callbacks+", ema)])
    assert exit_.value.code == 2
    assert "EMAWeightAveraging: set `use_buffers: false`" in capsys.readouterr().err


def test_predict_reads_its_input_before_the_backbone_loads(tmp_path, capsys):
    """A bad input file is named at once, before n2m looks for the (here missing) backbone."""
    bad = tmp_path / "in.tsv"
    bad.write_bytes("sentence1\tsentence2\n가\t나\n".encode() + b"\xff\xfe\n")
    for path, message in ((bad, "is not valid UTF-8"), (tmp_path / "missing.tsv", "does not exist")):
        with pytest.raises(SystemExit) as exit_:
            main(["predict", "--config", "recipes/korsts.yaml", "--data.backbone", str(tmp_path / "no-backbone"),
                  "--data.predict", str(path), "--output", str(tmp_path / "out.csv")])  # fmt: skip
        err = capsys.readouterr().err
        assert exit_.value.code == 2 and path.name in err and message in err and "no-backbone" not in err
