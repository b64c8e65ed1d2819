"""`n2m report` on tiny real runs of each shape: report.html and its PNGs are written by `n2m fit`, every plot's
numbers come from the predictions the test metrics were computed on, the page shows every plot and table in a
real browser (Debian's Chromium through Playwright), and a fit without a terminal prints progress lines."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from test_seq2seq_task import copy_files, override  # noqa: F401  (a fixture, used by name)
from test_token_task import klue_backbone, klue_ner_slice  # noqa: F401

from n2m.cli import main

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
TINY = ["--data.batch_size", "8", "--data.cache_tokens", "false", "--data.trim_vocab", "false",
        "--model.optimization.lr", "1e-3", "--trainer.max_epochs", "1", "--trainer.log_every_n_steps", "2"]  # fmt: skip
PROGRESS = re.compile(r"^step \d+/\d+ · epoch \d+ · loss \d+\.\d{4} · \d+\.\d\d steps/s · \d+:\d\d:\d\d left$", re.M)


def numbers(run: Path) -> dict:
    return json.loads((run / "report/numbers.json").read_text(encoding="utf-8"))


def results(run: Path) -> dict:
    return json.loads((run / "results.json").read_text(encoding="utf-8"))["test"]


def assert_report(run: Path, plots: set[str]) -> None:
    page = (run / "report.html").read_text(encoding="utf-8")
    assert {p.stem for p in (run / "report").glob("*.png")} == plots | {"train_loss", "val_metrics"}
    assert page.count('<img alt="') == len(plots) + 2 and "http://" not in page and "https://" not in page


@pytest.fixture(scope="module")
def sts_run(tiny_backbone, korsts_slice, tmp_path_factory) -> tuple[Path, str]:
    """KorSTS regression through the real command in a subprocess, its output a pipe (no terminal)."""
    run = tmp_path_factory.mktemp("report-sts") / "run"
    f = korsts_slice
    cmd = [sys.executable, "-m", "n2m.cli", "fit", "--config", str(ROOT / "recipes/korsts.yaml"), "--data.backbone",
           tiny_backbone, "--data.train", str(f["train"]), "--data.val", str(f["val"]), "--data.test", str(f["test"]),
           "--trainer.default_root_dir", str(run), "--progress_every", "2", *TINY]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr[-3000:]
    return run, done.stdout


@pytest.fixture(scope="module")
def nli_run(tiny_backbone, kornli_slice, tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("report-nli") / "run"
    f = kornli_slice
    main(["fit", "--config", str(ROOT / "recipes/kornli.yaml"), "--data.backbone", tiny_backbone, "--data.train",
          str(f["train"]), "--data.val", str(f["val"]), "--data.test", str(f["val"]), "--trainer.default_root_dir",
          str(run), "--trainer.enable_progress_bar", "false", *TINY])  # fmt: skip
    return run


@pytest.fixture(scope="module")
def ner_run(klue_backbone, klue_ner_slice, tmp_path_factory) -> Path:  # noqa: F811
    run = tmp_path_factory.mktemp("report-ner") / "run"
    f = klue_ner_slice
    main(["fit", "--config", str(ROOT / "recipes/klue-ner.yaml"), "--data.backbone", klue_backbone, "--data.train",
          str(f["train"]), "--data.val", str(f["val"]), "--data.test", str(f["val"]), "--data.split_file", "null",
          "--trainer.default_root_dir", str(run), "--trainer.enable_progress_bar", "false", *TINY])  # fmt: skip
    return run


@pytest.fixture(scope="module")
def seq2seq_run(tiny_backbone, copy_files, tmp_path_factory) -> Path:  # noqa: F811
    folder = tmp_path_factory.mktemp("report-seq2seq")
    config = override(folder, tiny_backbone, copy_files)
    recipe = str(ROOT / "recipes/ko-en-translation.yaml")
    main(["fit", "--config", recipe, "--config", str(config), "--trainer.log_every_n_steps", "2"])
    return folder / "run"


def test_regression_report_matches_the_test_metrics(sts_run):
    run, _ = sts_run
    assert_report(run, {"scatter", "error_by_gold"})
    scores = numbers(run)["Scores"]
    assert scores["count"] == 32  # every row of the test slice
    assert abs(scores["pearson"] - results(run)["test/pearson"]) <= 1e-4
    assert abs(scores["spearman"] - results(run)["test/spearman"]) <= 1e-4
    curves = numbers(run)["Learning curves"]["val_metrics"]
    assert curves["best_epoch"] == 0 and curves["monitor"] == "val/pearson"


def test_progress_lines_without_a_terminal(sts_run):
    _, stdout = sts_run
    lines = PROGRESS.findall(stdout)
    assert [int(line.split()[1].split("/")[0]) for line in lines] == [2, 4, 6, 8]  # 8 steps, one line per 2
    assert re.search(r"^epoch 0 validated at step 8: val/loss \d\.\d{4} · val/pearson", stdout, re.M)
    assert "it/s" not in stdout  # no bar drawn into the log


def test_predict_without_a_terminal(sts_run, tiny_backbone, korsts_slice, tmp_path):
    """`n2m predict` with its output a pipe (the quick start's `| tee`): the writer's line goes through the
    progress lines, as `LightningModule.print` sends it to whatever progress display is attached."""
    run, _ = sts_run
    best = json.loads((run / "results.json").read_text(encoding="utf-8"))["best_checkpoint"]
    out = tmp_path / "predictions.csv"
    cmd = [sys.executable, "-m", "n2m.cli", "predict", "--config", str(ROOT / "recipes/korsts.yaml"),
           "--data.backbone", tiny_backbone, "--data.predict", str(korsts_slice["test"]), "--ckpt_path", best,
           "--trainer.default_root_dir", str(tmp_path / "predict"), "--output", str(out), *TINY]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"wrote 32 predictions to {out}" in done.stdout and len(out.read_text().splitlines()) == 33


def test_classification_report_matches_the_test_metrics(nli_run):
    assert_report(nli_run, {"confusion_matrix", "reliability"})
    classes = numbers(nli_run)["Classes"]
    matrix = classes["confusion_matrix"]
    rows = (nli_run / "test_predictions.jsonl").read_text(encoding="utf-8").splitlines()
    assert sum(map(sum, matrix)) == len(rows) == 30
    accuracy = sum(matrix[i][i] for i in range(len(matrix))) / len(rows)
    assert abs(accuracy - results(nli_run)["test/accuracy"]) <= 1e-6
    assert sorted(classes["labels"]) == ["contradiction", "entailment", "neutral"]
    assert [row[4] for row in classes["per_class"][:3]] == [sum(r) for r in matrix]  # support = gold count
    assert sum(classes["reliability"]["count"]) == len(rows)


def test_entity_report_matches_the_test_metrics(ner_run):
    assert_report(ner_run, {"f1_by_type"})
    entities = numbers(ner_run)["Entities"]
    assert abs(entities["micro"]["f1"] - results(ner_run)["test/f1"]) <= 1e-4
    assert abs(entities["micro"]["precision"] - results(ner_run)["test/precision"]) <= 1e-4
    page = (ner_run / "report.html").read_text(encoding="utf-8")
    assert 'id="table-sentences"' in page and 'id="table-type_confusion"' in page


def test_seq2seq_report_scores_what_the_test_scored(seq2seq_run):
    assert_report(seq2seq_run, {"metric_by_length", "output_length"})
    generations = numbers(seq2seq_run)["Generations"]
    assert sum(generations["counts"]) == 12
    for metric in ("bleu", "chrf", "chrf++"):  # the recipe's three
        assert abs(generations["overall"][metric] - results(seq2seq_run)[f"test/{metric}"]) <= 1e-3


def test_report_command_rewrites_and_refuses_what_is_not_a_run(nli_run, tmp_path, capsys):
    (nli_run / "report.html").unlink()
    main(["report", str(nli_run)])
    assert (nli_run / "report.html").is_file()
    with pytest.raises(SystemExit) as exit_:
        main(["report", str(tmp_path)])
    assert exit_.value.code == 2 and "holds no n2m run" in capsys.readouterr().err


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium; under CI a missing browser or Playwright fails instead of skipping."""
    ci = os.environ.get("CI") == "true"
    try:
        from playwright import sync_api
    except ImportError:
        if ci:
            pytest.fail("playwright is not installed (pip install -e '.[dev]')")
        pytest.skip("playwright is not installed")
    if not Path(CHROMIUM).is_file():
        if ci:
            pytest.fail(f"{CHROMIUM} not installed (apt-get install chromium)")
        pytest.skip(f"{CHROMIUM} not installed (apt-get install chromium)")
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"]
        )
        yield chromium
        chromium.close()


@pytest.mark.parametrize("shape", ["sts_run", "nli_run", "ner_run", "seq2seq_run"])
def test_report_shows_every_plot_and_table_in_a_browser(shape, browser, request):
    run = request.getfixturevalue(shape)
    run = run[0] if isinstance(run, tuple) else run
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    outside: list[str] = []
    page.on("request", lambda r: outside.append(r.url) if not r.url.startswith(("file:", "data:")) else None)
    page.goto((run / "report.html").as_uri())
    pngs = sorted(p.stem for p in (run / "report").glob("*.png"))
    shown = page.eval_on_selector_all(
        "figure.plot",
        "els => els.map(f => [f.id, f.querySelector('img').complete, f.querySelector('img').naturalWidth])",
    )
    assert sorted(i.removeprefix("plot-") for i, _, _ in shown) == pngs
    assert all(complete and width > 100 for _, complete, width in shown)  # every image decoded
    assert page.locator("img").count() == len(shown)  # no image outside a plot's figure goes unchecked
    tables = page.eval_on_selector_all("table.table", "els => els.map(t => [t.id, t.tBodies[0].rows.length])")
    expected = {"run", "test_metrics"} | {
        "sts_run": {"largest_errors"},
        "nli_run": {"per_class", "mistakes"},
        "ner_run": {"per_type", "type_confusion", "sentences"},
        "seq2seq_run": {"samples"},
    }[shape]
    assert {i.removeprefix("table-") for i, _ in tables} == expected
    assert all(n > 0 for i, n in tables if i != "table-mistakes")  # a model may make no confident mistake
    if shape == "ner_run":  # the sentences show their spans highlighted (gold at least: a tiny model may find none)
        assert page.locator("#table-sentences mark.ent").count() > 0
    assert "seed_everything:" in page.locator("#recipe").inner_text()
    assert outside == []
    page.close()
