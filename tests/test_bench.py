"""`n2m bench` over a suite of tiny recipes (the tiny backbone, slices of KorSTS and KorNLI): the leaderboard's
values are the runs' own results.json values, a failed recipe is recorded while the others run, `--resume` keeps
a finished run and reruns one whose arguments changed. The Korean suite's new recipes parse and read their data,
and their committed splits are what scripts/make_korean_n21_splits.py writes, with no text in two splits."""

from __future__ import annotations

import csv
import importlib.util
import json
import re
import shutil
import unicodedata
from pathlib import Path

import pytest
import yaml

from n2m.bench import load_suite
from n2m.cli import main

ROOT = Path(__file__).resolve().parents[1]
NEW_RECIPES = ["ko-hate-speech", "ko-question-pair-cls", "klue-nli", "ko-chatbot-topic"]
NOT_WORD = re.compile(r"[\W_]+")


def write_suite(folder: Path, korsts: dict[str, Path], kornli: dict[str, Path], nli_extra: list[str]) -> Path:
    sts_data = [f"data.{split}={korsts[split]}" for split in ("train", "val", "test")]
    missing = f"data.train={folder / 'missing.tsv'}"
    nli_data = [f"data.train={kornli['train']}", f"data.val={kornli['val']}", f"data.test={kornli['val']}"]
    suite = {
        "name": "tiny",
        "tasks": [
            {"recipe": str(ROOT / "recipes/korsts.yaml"), "metric": "test/pearson", "overrides": sts_data},
            {"recipe": str(ROOT / "recipes/kornli.yaml"), "name": "nli", "overrides": nli_data + nli_extra},
            {"recipe": str(ROOT / "recipes/korsts.yaml"), "name": "broken", "overrides": [*sts_data, missing]},
        ],
    }
    path = folder / "tiny.yaml"
    path.write_text(yaml.safe_dump(suite), encoding="utf-8")
    return path


def bench(suite: Path, out: Path, backbone: str, *extra: str) -> None:
    """`n2m bench --quick` on the tiny backbone; one task of the suite always fails, so the bench exits 1."""
    tiny = ["--override", f"data.backbone={backbone}", "--override", "data.trim_vocab=false",
            "--override", "data.cache_tokens=false", "--override", "model.optimization.lr=1e-3"]  # fmt: skip
    with pytest.raises(SystemExit) as exit_:
        main(["bench", str(suite), "--quick", "--out", str(out), *tiny, *extra])
    assert "1 of 3 tasks failed: broken" in str(exit_.value.code)


def mtime(path: Path) -> int:
    return path.stat().st_mtime_ns


@pytest.fixture(scope="module")
def suite_run(tiny_backbone, korsts_slice, kornli_slice, tmp_path_factory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("bench")
    mp = pytest.MonkeyPatch()
    mp.setenv("OMP_NUM_THREADS", "1")  # the runs are subprocesses: one thread each on a shared machine
    suite = write_suite(folder, korsts_slice, kornli_slice, [])
    bench(suite, folder / "out", tiny_backbone)
    mp.undo()
    return suite, folder / "out"


def test_leaderboard_holds_each_runs_own_metric_and_the_failure(suite_run):
    _, out = suite_run
    board = json.loads((out / "suite.json").read_text(encoding="utf-8"))
    assert board["suite"] == "tiny" and board["quick"] and board["machine"] and board["date"]
    assert list(board["tasks"]) == ["korsts", "nli", "broken"]
    for name, metric in (("korsts", "test/pearson"), ("nli", "test/accuracy")):  # nli: the monitored metric's twin
        entry = board["tasks"][name]
        results = json.loads((out / name / "results.json").read_text(encoding="utf-8"))
        assert entry["status"] == "trained" and entry["metric"] == metric
        assert entry["value"] == results["test"][metric]
        assert entry["fit_s"] == results["fit_wall_s"] and entry["machine"] == results["machine"]
        assert "data.trim_vocab=false" in entry["overrides"] and (out / name / "report.html").is_file()
    broken = board["tasks"]["broken"]
    assert broken["status"] == "failed" and broken["value"] is None
    assert "n2m: error:" in broken["error"] and "missing.tsv" in broken["error"]

    table = (out / "suite.md").read_text(encoding="utf-8")
    rows = [line for line in table.splitlines() if line.startswith("| ") and "---" not in line]
    assert len(rows) == 4  # the header and one row per task
    assert f"| {board['tasks']['korsts']['value']:.4f} |" in rows[1] and "failed: exit 2" in rows[3]
    page = (out / "suite.html").read_text(encoding="utf-8")
    assert page.count('<img alt="') == 2 and 'id="plot-korsts"' in page and 'id="plot-nli"' in page
    assert "http://" not in page and "https://" not in page


def test_resume_keeps_finished_runs_and_reruns_changed_ones(suite_run, tiny_backbone, korsts_slice, kornli_slice):
    suite, out = suite_run
    before = {name: mtime(out / name / "results.json") for name in ("korsts", "nli")}
    write_suite(suite.parent, korsts_slice, kornli_slice, ["model.monitor=f1_macro"])  # nli's arguments change
    bench(suite, out, tiny_backbone, "--resume", "--compare", str(out))
    board = json.loads((out / "suite.json").read_text(encoding="utf-8"))
    assert board["tasks"]["korsts"]["status"] == "kept" and mtime(out / "korsts/results.json") == before["korsts"]
    assert board["tasks"]["nli"]["status"] == "trained" and mtime(out / "nli/results.json") != before["nli"]
    results = json.loads((out / "nli/results.json").read_text(encoding="utf-8"))
    assert list(results["best_val"]) == ["val/f1_macro"]  # model.monitor chose the checkpoint
    assert board["tasks"]["nli"]["metric"] == "test/f1_macro"
    # compared with itself as it was: korsts' Δ is 0
    row = next(line for line in (out / "suite.md").read_text(encoding="utf-8").splitlines() if "| korsts |" in line)
    assert "| +0.0000 |" in row


def test_a_stopped_suite_keeps_the_finished_rows_and_reports_seed_the_rest(tmp_path, monkeypatch):
    """The leaderboard is written after every task (a suite stopped after hours keeps what finished); rows seeded
    from committed reports (scripts/suite_from_reports.py) and `--only` rows make one leaderboard in suite order."""
    import n2m.bench.command as command

    monkeypatch.chdir(ROOT)
    out = tmp_path / "korean"
    spec = importlib.util.spec_from_file_location("suite_from_reports", ROOT / "scripts/suite_from_reports.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    reports = {p.stem: json.loads(p.read_text(encoding="utf-8")) for p in (ROOT / "results/recipes").glob("*.json")}
    for name, report in reports.items():  # as if this suite had run them: their run folders are under `out`
        report["run_dir"] = str(out / name)
    monkeypatch.setattr(script, "ROOT", tmp_path)
    (tmp_path / "results/recipes").mkdir(parents=True)
    for name in ("korsts", "klue-ner"):
        (tmp_path / f"results/recipes/{name}.json").write_text(json.dumps(reports[name]), encoding="utf-8")
    script.main(str(out))

    ran = []

    def run_task(task, run_dir, *args, **kwargs):
        if ran:
            raise KeyboardInterrupt  # the suite is stopped during its second task
        ran.append(task.name)
        return {"recipe": str(task.recipe), "metric": task.metric, "value": 0.5, "fit_s": 1.0, "status": "trained"}

    monkeypatch.setattr(command, "run_task", run_task)
    with pytest.raises(KeyboardInterrupt):
        main(["bench", "--only", "ko-pos", "kornli", "--out", str(out)])
    board = json.loads((out / "suite.json").read_text(encoding="utf-8"))
    assert list(board["tasks"]) == ["korsts", "kornli", "klue-ner"]  # the suite's order; ko-pos never finished
    assert board["tasks"]["kornli"]["status"] == "trained" and board["tasks"]["kornli"]["value"] == 0.5
    for name, metric in (("korsts", "test/pearson"), ("klue-ner", "test/f1")):
        row = board["tasks"][name]
        assert row["status"] == "report" and row["source"] == f"results/recipes/{name}.json"
        assert row["value"] == reports[name]["test"][metric] and row["fit_s"] == reports[name]["fit_wall_s"]


def test_korean_suite_names_existing_recipes():
    suite = load_suite(str(ROOT / "recipes/suites/korean.yaml"))
    assert all(task.recipe.is_file() and task.metric for task in suite.tasks)
    assert set(NEW_RECIPES) <= {task.name for task in suite.tasks}


@pytest.mark.parametrize("recipe", NEW_RECIPES)
def test_new_recipes_parse_and_read_their_data(recipe, capsys, monkeypatch):
    from n2m.shapes.n21.data import TextDataModule

    monkeypatch.chdir(ROOT)
    with pytest.raises(SystemExit) as exit_:
        main(["fit", "--config", f"recipes/{recipe}.yaml", "--print_config"])
    assert exit_.value.code == 0 and "trim_vocab: true" in capsys.readouterr().out
    config = yaml.safe_load((ROOT / f"recipes/{recipe}.yaml").read_text(encoding="utf-8"))
    data = TextDataModule(**config["data"])  # reads and checks the files (labels included), loads no backbone
    splits = {**data.read_splits("fit"), **data.read_splits("test")}
    assert sorted(splits) == ["test", "train", "val"] and all(len(s) >= 100 for s in splits.values())
    labels = {ex.label for examples in splits.values() for ex in examples}
    assert labels == set(config["data"]["label_names"])


def key(text: str) -> str:
    return NOT_WORD.sub("", unicodedata.normalize("NFC", text).lower())


def column(path: Path, *names: str) -> list[tuple[str, ...]]:
    with path.open(encoding="utf-8", newline="") as f:
        return [tuple(row[n] for n in names) for row in csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE)]


def test_committed_splits_share_no_text_and_are_the_scripts_output(tmp_path):
    data = ROOT / "data"
    groups = {  # per recipe: each split's texts that must not cross (KLUE-NLI: premises, so no pair either)
        "hate": {s: column(data / f"korean_hate_speech/splits/{s}.tsv", "comments") for s in ("train", "val", "test")},
        "nli": {s: column(data / f"klue_nli/splits/{s}.tsv", "premise") for s in ("train", "val", "test")},
        "topic": {s: column(data / f"korean_chatbot/topic/{s}.tsv", "question") for s in ("train", "val", "test")},
        "pairs": {s: column(data / f"korean_question_pair/pairs/{s}.tsv", "question1", "question2")
                  for s in ("train", "val", "test")},
    }  # fmt: skip
    for name, splits in groups.items():
        keys = {s: {frozenset(key(t) for t in row) for row in rows} for s, rows in splits.items()}
        for a, b in (("train", "val"), ("train", "test"), ("val", "test")):
            assert not keys[a] & keys[b], f"{name}: {a} and {b} share {next(iter(keys[a] & keys[b]))}"

    # the script, run again on copies of its sources, writes the committed files byte for byte
    sources = ["korean_hate_speech/train.tsv", "korean_hate_speech/dev.tsv", "korean_question_pair/train.txt",
               "korean_question_pair/validation.txt", "korean_question_pair/test.txt",
               "klue_nli/klue-nli-v1.1_dev.json", "korean_chatbot/ChatbotData.csv"]  # fmt: skip
    for source in sources:
        (tmp_path / "data" / source).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(data / source, tmp_path / "data" / source)
    spec = importlib.util.spec_from_file_location("make_splits", ROOT / "scripts/make_korean_n21_splits.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    script.ROOT = tmp_path
    for write in (script.hate_speech, script.question_pairs, script.klue_nli, script.chatbot_topics):
        write()
    written = [Path(f"data/{folder}/{split}.tsv") for folder in ("korean_hate_speech/splits", "klue_nli/splits",
               "korean_chatbot/topic", "korean_question_pair/pairs") for split in ("train", "val", "test")]  # fmt: skip
    for path in written:
        assert (tmp_path / path).read_bytes() == (ROOT / path).read_bytes(), path
