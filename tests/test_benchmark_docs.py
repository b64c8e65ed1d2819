"""The benchmark pages (docs/benchmarks/) and the README's generated blocks say what the committed results files
say: a results file changed without its pages rewritten fails here (`python benchmarks/docs_pages.py`)."""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("docs_pages", ROOT / "benchmarks/docs_pages.py")
assert _spec is not None and _spec.loader is not None
docs_pages = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(docs_pages)

REGENERATE = "out of date: run `python benchmarks/docs_pages.py` and commit what it writes"


def copy_of_the_sources(tmp_path: Path) -> Path:
    """The files the pages are written from, in a root of their own."""
    shutil.copytree(ROOT / "benchmarks/results", tmp_path / "benchmarks/results")
    shutil.copytree(ROOT / "results", tmp_path / "results")
    shutil.copy(ROOT / "README.md", tmp_path / "README.md")
    return tmp_path


def test_pages_written_again_from_the_results_files_are_the_committed_ones(tmp_path):
    root = copy_of_the_sources(tmp_path)
    docs_pages.write_pages(root=root)
    written = sorted(p.name for p in (root / "docs/benchmarks").glob("*.md"))
    committed = sorted(p.name for p in (ROOT / "docs/benchmarks").glob("*.md"))
    assert written == committed, f"pages without results or results without pages: {REGENERATE}"
    stale = [
        n for n in written if (root / "docs/benchmarks" / n).read_bytes() != (ROOT / "docs/benchmarks" / n).read_bytes()
    ]
    assert not stale, f"{stale}: {REGENERATE}"
    assert (root / "README.md").read_bytes() == (ROOT / "README.md").read_bytes(), f"README.md: {REGENERATE}"


def leaves(value: Any) -> list[float]:
    """Every number in a results file: values, and keys that are numbers (a concurrency level)."""
    if isinstance(value, bool):
        return []
    if isinstance(value, int | float):
        return [float(value)]
    if isinstance(value, dict):
        keys = [float(k) for k in value if re.fullmatch(r"\d+(\.\d+)?", k)]
        return keys + [x for v in value.values() for x in leaves(v)]
    if isinstance(value, list):
        return [x for v in value for x in leaves(v)]
    return []


def test_every_number_in_the_readme_results_block_is_in_the_file_its_row_links():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"<!-- results:start -->\n(.*?)<!-- results:end -->", readme, re.S)
    assert block is not None
    rows = [line for line in block.group(1).splitlines() if line.startswith("| [")]
    assert rows, "the headline table has no rows"
    for row in rows:
        files = re.findall(r"\]\(((?:benchmarks/)?results/[\w.+-]+\.json)\)", row)
        assert len(files) == 1, row
        results = json.loads((ROOT / files[0]).read_text(encoding="utf-8"))
        numbers = leaves(results)
        assert results["date"] in row
        # the figures: not link targets, code, dates, or digits inside a name (MRR@10, e5-small)
        text = re.sub(r"\]\([^)]*\)|`[^`]*`|\d{4}-\d{2}-\d{2}", " ", row)
        for shown in re.findall(r"(?<![\w.@+-])\d+(?:\.\d+)?(?![\w@])", text):
            places = len(shown.partition(".")[2])
            assert any(abs(round(x, places) - float(shown)) < 1e-9 for x in numbers), (
                f"{shown} in the README's row for {files[0]} is not in that file"
            )


def synthetic_root(tmp_path: Path, files: dict[str, dict[str, Any]]) -> Path:
    (tmp_path / "benchmarks/results").mkdir(parents=True)
    for name, content in files.items():
        (tmp_path / "benchmarks/results" / name).write_text(json.dumps(content), encoding="utf-8")
    blocks = "".join(f"<!-- {name}:start -->\n<!-- {name}:end -->\n" for name in docs_pages.BLOCKS)
    (tmp_path / "README.md").write_text(f"# n2m\n\n{blocks}", encoding="utf-8")
    return tmp_path


DETAILS = {"epochs": 1, "train_pairs": 10, "test_pairs": 5, "n2m": {"wall_s": 1.0}, "hf": {"wall_s": 2.0}}
SEQ2SEQ = {"mode": "full", "machine": "m", "date": "2026-12-03", "recipe": "recipes/ko-en-translation.yaml",
           "details": DETAILS}  # fmt: skip
SIDE = {"bleu": 3.0, "samples_per_s": 1.0, "gen_tokens_per_s": 1.0, "peak_rss_mb": 1.0}


def test_chrf_is_labelled_chrf_plus_plus_unless_the_file_reports_both(tmp_path):
    old = {**SEQ2SEQ, "n2m": {**SIDE, "chrf": 15.41}, "hf": {**SIDE, "chrf": 17.44}}
    page = docs_pages.seq2seq_vs_hf(synthetic_root(tmp_path / "old", {"seq2seq_vs_hf.json": old}))
    assert "| chrF++ |" in page and "| chrF |" not in page and "15.41" in page

    new = {**SEQ2SEQ, "n2m": {**SIDE, "chrf": 12.5, "chrf++": 15.41}, "hf": {**SIDE, "chrf": 14.0, "chrf++": 17.44}}
    root = synthetic_root(tmp_path / "new", {"seq2seq_vs_hf.json": new})
    page = docs_pages.seq2seq_vs_hf(root)
    assert "| chrF | chrF++ |" in page and "| 12.50 | 15.41 |" in page
    block = docs_pages.render_all(root)["README.md"]
    assert "chrF 12.50 vs 14.00; chrF++ 15.41 vs 17.44" in block


def test_a_page_is_written_only_when_its_results_file_is_there(tmp_path):
    side = {"pearson": 0.8, "spearman": 0.79, "samples_per_s": 30.0, "wall_s": 10.0, "peak_rss_mb": 900.0,
            "peak_gpu_mb": None}  # fmt: skip
    same = {"mode": "full", "machine": "m", "date": "2026-12-03", "st": side, "n2m": {**side, "samples_per_s": 45.0}}
    root = synthetic_root(tmp_path, {"sts_same_model.json": same})
    pages = docs_pages.render_all(root)
    assert set(pages) == {"docs/benchmarks/sts_same_model.md", "README.md"}
    assert "like for like" in pages["docs/benchmarks/sts_same_model.md"]
    assert "×1.50" in pages["docs/benchmarks/sts_same_model.md"]
    assert "[sts_same_model](docs/benchmarks/sts_same_model.md)" in pages["README.md"]


def test_a_run_over_several_seeds_shows_the_means_and_each_seed(tmp_path):
    spec = importlib.util.spec_from_file_location("sts_same_model", ROOT / "benchmarks/sts_same_model.py")
    assert spec is not None and spec.loader is not None
    same_model = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(same_model)

    def run(pearson: float, speed: float) -> dict[str, Any]:
        return {"pearson": pearson, "spearman": pearson - 0.01, "samples_per_s": speed, "wall_s": 100.0,
                "peak_rss_mb": 900.0 + speed, "peak_gpu_mb": None, "val_pearson": pearson + 0.04}  # fmt: skip

    n2m = same_model.over_seeds({0: run(0.812, 16.0), 1: run(0.818, 18.0)})
    st = same_model.over_seeds({0: run(0.816, 9.0), 1: run(0.812, 10.0)})
    assert (n2m["pearson"], n2m["samples_per_s"], n2m["peak_rss_mb"]) == (0.815, 17.0, 918.0)
    assert set(n2m["seeds"]) == {"0", "1"} and n2m["pearson_sd"] > 0
    same = {"mode": "full", "machine": "m", "date": "2026-12-03", "seeds": [0, 1], "st": st, "n2m": n2m}
    pages = docs_pages.render_all(synthetic_root(tmp_path, {"sts_same_model.json": same}))
    page = pages["docs/benchmarks/sts_same_model.md"]
    assert "the mean over seeds 0, 1" in page and "| 0 | 0.8120 | 0.8160 | -0.0040 |" in page
    assert "| 1 | 0.8180 | 0.8120 | +0.0060 |" in page and "×1.79" in page
    assert "Pearson 0.8150 vs 0.8140 (mean of 2 seeds)" in pages["README.md"]


def test_the_classification_page_knows_the_benchmarks_tasks():
    spec = importlib.util.spec_from_file_location("classify_vs_hf", ROOT / "benchmarks/classify_vs_hf.py")
    assert spec is not None and spec.loader is not None
    classify = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(classify)
    assert tuple(classify.TASKS) == docs_pages.CLASSIFY_TASKS  # the page lists the tasks not yet run


def test_only_keeps_the_other_sides_and_names_the_run_each_comes_from(tmp_path):
    """`--only SIDE` (sts_same_model, caption_vs_hf): the other sides come from the results file, and a side that
    file had itself kept keeps its own run's date and machine."""
    import sys

    sys.path.insert(0, str(ROOT / "benchmarks"))
    from _measure import keep_other_sides

    earlier = [{"date": "2026-12-03", "machine": "m1", "sides": ["hf"]}]
    kept = {"mode": "full", "machine": "m2", "date": "2026-12-05", "seeds": [0, 1], "n2m": {"x": 1}, "hf": {"x": 2},
            "n2m_ema": {"x": 3}, "kept_from_earlier_run": earlier}  # fmt: skip
    path = tmp_path / "r.json"
    path.write_text(json.dumps(kept), encoding="utf-8")
    results: dict[str, Any] = {"mode": "full", "date": "2026-12-06"}
    keep_other_sides(path, results, "n2m_ema", ("n2m", "hf", "n2m_ema"), [0, 1], own_seed=0)
    assert (results["n2m"], results["hf"]) == ({"x": 1}, {"x": 2}) and "n2m_ema" not in results
    assert results["kept_from_earlier_run"] == [
        {"date": "2026-12-05", "machine": "m2", "sides": ["n2m"]},
        {"date": "2026-12-03", "machine": "m1", "sides": ["hf"]},
    ]
    with pytest.raises(SystemExit, match="full run over seeds"):
        keep_other_sides(path, {"mode": "full"}, "n2m_ema", ("n2m", "hf", "n2m_ema"), [0, 1, 2], own_seed=0)
