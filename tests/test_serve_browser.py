"""The web page in a real browser: Debian's Chromium driven by Playwright (no browser download), against a
real uvicorn server on loopback.

Screenshots go to $N2M_SCREENSHOT_DIR (the README's come from `N2M_SCREENSHOT_DIR=docs pytest
tests/test_serve_browser.py`), else to a temporary folder. The STS page uses the real exported KorSTS
model when `runs/korsts-export` (or $N2M_KORSTS_EXPORT) exists, else the tiny one.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import httpx
import pytest
from serve_models import LiveServer, entity_model, sentiment_model, sts_model
from test_serve_api import WordStreamer

from n2m import Predictor
from n2m.serve import create_app

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ROOT = Path(__file__).resolve().parents[1]
STS_PAIR = ("한 남자가 기타를 치고 있다.", "남자가 기타를 연주하고 있다.")


@pytest.fixture(scope="module")
def browser():
    # a laptop without the browser skips these tests; CI (CI=true) must have it and fails without
    missing = None
    try:
        from playwright import sync_api
    except ImportError:
        missing = "playwright is not installed (pip install -e '.[dev]')"
    if not Path(CHROMIUM).is_file():
        missing = f"{CHROMIUM} not installed (apt-get install chromium)"
    if missing:
        if os.environ.get("CI") == "true":
            pytest.fail(missing)
        pytest.skip(missing)
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    folder = Path(os.environ.get("N2M_SCREENSHOT_DIR") or tmp_path_factory.mktemp("screenshots"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def sts_server(tiny_backbone, korsts_slice, tmp_path_factory):
    real = Path(os.environ.get("N2M_KORSTS_EXPORT", ROOT / "runs/korsts-export"))
    if (real / "model.safetensors").is_file():
        folder, name = real, "korsts (e5-small bi-encoder)"
    else:
        folder, name = sts_model(tiny_backbone, korsts_slice, tmp_path_factory.mktemp("serve-models")), "tiny-sts"
    with LiveServer(create_app(Predictor.from_pretrained(folder), name=name, title=name)) as url:
        yield url, name


def api_prediction(url: str, inputs: dict[str, str]) -> dict:
    response = httpx.post(f"{url}/v1/predict", json={"inputs": inputs}, timeout=60)
    assert response.status_code == 200
    return response.json()["predictions"][0]


def open_page(browser, url: str, width: int = 960, height: int = 720, locale: str = "en-US"):
    page = browser.new_page(viewport={"width": width, "height": height}, locale=locale)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("requestfailed", lambda request: errors.append(f"request failed: {request.url}"))
    page.goto(url)
    page.wait_for_selector("#submit:not([disabled])")
    return page, errors


def test_sts_page_score_matches_the_api(browser, sts_server, shots):
    url, name = sts_server
    page, errors = open_page(browser, url)
    assert page.inner_text("#model-name") == name
    assert "Semantic similarity" in page.inner_text("#model-task")
    assert page.inner_text("label[for=input-text]") == "Sentence A"
    page.fill("#input-text", STS_PAIR[0])
    page.fill("#input-text_pair", STS_PAIR[1])
    page.click("#submit")
    reading = page.wait_for_selector("#score")
    shown = float(reading.get_attribute("data-value"))
    expected = api_prediction(url, {"text": STS_PAIR[0], "text_pair": STS_PAIR[1]})["score"]
    assert shown == pytest.approx(expected, abs=1e-6)
    assert reading.inner_text() == f"{expected:.2f}"
    assert page.locator(".gauge svg path.value").count() == 1
    page.screenshot(path=str(shots / "serve-sts.png"), full_page=True)
    assert errors == []


def test_the_page_speaks_korean_to_a_korean_browser(browser, sts_server):
    """The browser's language chooses the page's (`?lang=en` overrides it); the similarity scale is explained."""
    url, _ = sts_server
    page, errors = open_page(browser, url, locale="ko-KR")
    assert page.get_attribute("html", "lang") == "ko"
    assert page.inner_text("label[for=input-text]") == "문장 A" and page.inner_text("#submit") == "예측"
    assert "두 문장의 의미가 얼마나 비슷한지" in page.inner_text("#model-task")
    page.click("#submit")
    assert "“문장 A”을(를) 입력해 주세요" in page.inner_text("#error")
    page.fill("#input-text", STS_PAIR[0])
    page.fill("#input-text_pair", STS_PAIR[1])
    page.click("#submit")
    page.wait_for_selector("#score")
    assert page.inner_text("#result h2") == "유사도" and "같은 뜻" in page.inner_text(".meaning")
    assert page.locator("#truncated").count() == 0
    page.fill("#input-text", "가나다라마바사 " * 400)  # longer than any model here reads
    page.click("#submit")
    page.wait_for_selector("#truncated")
    assert "앞부분만 반영" in page.inner_text("#truncated")
    assert errors == []
    english, _ = open_page(browser, f"{url}/?lang=en", locale="ko-KR")
    assert english.get_attribute("html", "lang") == "en" and english.inner_text("#submit") == "Predict"


def test_page_fits_a_phone_and_shows_errors(browser, sts_server, shots):
    url, _ = sts_server
    page, errors = open_page(browser, url, width=375, height=740)
    page.fill("#input-text", STS_PAIR[0])
    page.click("#submit")
    assert "Please fill in “Sentence B”" in page.inner_text("#error")  # checked before sending
    page.fill("#input-text_pair", "bell \u0007 inside")
    page.click("#submit")
    page.wait_for_function("document.querySelector('#error').textContent.startsWith('422')")
    assert "inputs.text_pair: control character U+0007 at character 5" in page.inner_text("#error")
    page.fill("#input-text_pair", STS_PAIR[1])
    page.keyboard.press("Control+Enter")
    page.wait_for_selector("#score")
    assert page.is_hidden("#error")
    assert page.evaluate("document.documentElement.scrollWidth") <= 375  # no sideways scrolling
    for selector in ("#input-text", "#submit", ".gauge svg"):
        box = page.locator(selector).bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= 375
    page.screenshot(path=str(shots / "serve-sts-phone.png"), full_page=True)
    assert errors == []


def test_classification_page_shows_probability_bars(browser, tiny_backbone, tmp_path_factory, shots):
    folder = sentiment_model(tiny_backbone, tmp_path_factory.mktemp("serve-models"))
    with LiveServer(create_app(Predictor.from_pretrained(folder), name="toy sentiment classifier")) as url:
        page, errors = open_page(browser, url)
        assert page.inner_text("label[for=input-text]") == "Text"
        assert page.locator("#input-text_pair").count() == 0  # one text box for a one-text model
        text = "this is good number 12"
        page.fill("#input-text", text)
        page.click("#submit")
        page.wait_for_selector("ul.bars")
        expected = api_prediction(url, {"text": text})
        assert page.inner_text("#top-label") == expected["label"] == "positive"
        rows = page.locator("ul.bars li")
        assert rows.count() == 3
        assert rows.first.get_attribute("data-label") == "positive"  # sorted, most likely first
        chosen = page.locator("ul.bars li.chosen")
        assert chosen.count() == 1
        assert float(chosen.get_attribute("data-p")) == pytest.approx(expected["probabilities"]["positive"], 1e-6)
        page.screenshot(path=str(shots / "serve-classification.png"), full_page=True)
        assert errors == []


def test_entities_are_highlighted_inline(browser, tiny_backbone, tmp_path_factory, shots):
    folder = entity_model(tiny_backbone, tmp_path_factory.mktemp("serve-models"))
    with LiveServer(create_app(Predictor.from_pretrained(folder), name="toy city tagger (N2N)")) as url:
        page, errors = open_page(browser, url)
        text = "we flew to Seoul on day3"
        page.fill("#input-text", text)
        page.click("#submit")
        page.wait_for_selector("p.highlighted")
        entities = api_prediction(url, {"text": text})["entities"]
        assert any(e["text"] == "Seoul" and e["type"] == "location" for e in entities)  # it learned the rule
        marks = page.locator("p.highlighted mark")
        assert marks.count() == len(entities)
        for i, entity in enumerate(entities):
            assert marks.nth(i).get_attribute("data-type") == entity["type"]
            assert marks.nth(i).evaluate("m => m.firstChild.textContent") == entity["text"]
        # no character lost or moved: the paragraph without the type labels is the input
        plain = page.evaluate(
            "() => { const p = document.querySelector('p.highlighted').cloneNode(true);"
            " p.querySelectorAll('small').forEach(s => s.remove()); return p.textContent; }"
        )
        assert plain == text
        page.screenshot(path=str(shots / "serve-entities.png"), full_page=True)
        assert errors == []


def test_generation_streams_into_the_page(browser, shots):
    with LiveServer(create_app(WordStreamer(delay=0.2), name="word echo (stand-in)")) as url:
        page, errors = open_page(browser, url)
        page.fill("#input-text", "one two three four")
        page.click("#submit")
        # part of the text shows while the rest is still being generated
        page.wait_for_function(
            "() => { const g = document.querySelector('#generated');"
            " return g && g.classList.contains('streaming') && g.textContent.startsWith('ONE')"
            " && !g.textContent.includes('FOUR'); }"
        )
        page.wait_for_selector("#generated:not(.streaming)")
        assert page.inner_text("#generated").strip() == "ONE TWO THREE FOUR"
        page.screenshot(path=str(shots / "serve-generation.png"), full_page=True)
        assert errors == []


def test_the_page_shows_the_models_own_title(browser, tiny_backbone, korsts_slice, tmp_path_factory, tmp_path):
    """The title `n2m export` writes in the card (`provenance.title`), not the folder's name ("model" after the
    quick start); without one, the folder's name."""
    source = sts_model(tiny_backbone, korsts_slice, tmp_path_factory.mktemp("serve-models"))
    folder = tmp_path / "model"
    shutil.copytree(source, folder, ignore=shutil.ignore_patterns("*.onnx"))
    card = json.loads((folder / "n2m.json").read_text(encoding="utf-8"))
    card["provenance"]["title"] = "KorSTS 문장 유사도"
    (folder / "n2m.json").write_text(json.dumps(card, ensure_ascii=False), encoding="utf-8")
    with LiveServer(create_app(Predictor.from_pretrained(folder), name=folder.name)) as url:
        page, errors = open_page(browser, url)
        assert page.inner_text("#model-name") == "KorSTS 문장 유사도" and page.title() == "KorSTS 문장 유사도 · n2m"
        assert errors == []
    card["provenance"].pop("title")
    (folder / "n2m.json").write_text(json.dumps(card, ensure_ascii=False), encoding="utf-8")
    with LiveServer(create_app(Predictor.from_pretrained(folder), name=folder.name)) as url:
        page, _ = open_page(browser, url)
        assert page.inner_text("#model-name") == "model"


class StarRating:
    """Stands in for a one-text N21 regression model (a review → 1 to 10 stars): the page's `score` layout."""

    def __init__(self) -> None:
        self.info: dict[str, Any] = {
            "shape": "N21",
            "task": "regression",
            "inputs": ["text"],
            "settings": {"score_range": [1.0, 10.0]},
            "provenance": {"n2m_version": "test", "title": "review stars"},
        }

    def predict(self, inputs: list[str], batch_size: int = 16) -> list[dict[str, float]]:
        return [{"score": 7.25} for _ in inputs]


SCALE_EXPLAINED = {
    "en-US": "1: the lowest · 10: the highest score it was trained on",
    "ko-KR": "1: 가장 낮음 · 10: 가장 높음 (학습한 점수의 범위)",
}


@pytest.mark.parametrize(("locale", "explained"), list(SCALE_EXPLAINED.items()))
def test_a_regression_score_says_what_its_ends_mean(browser, locale, explained):
    with LiveServer(create_app(StarRating(), name="stars")) as url:
        page, errors = open_page(browser, url, locale=locale)
        assert page.inner_text("#model-name") == "review stars"
        page.fill("#input-text", "a fine film")
        page.click("#submit")
        reading = page.wait_for_selector("#score")
        assert reading.inner_text() == "7.25"
        assert page.inner_text(".meaning") == explained
        assert errors == []


FAQ = ROOT / "data/korean_chatbot/faq/test.tsv"
QUESTION, ANSWER = "난방이 안돼", "보일러가 난방으로 작동이 되는지 보세요."


@pytest.fixture(scope="module")
def search_server(tmp_path_factory):
    """e5-small as it comes (never fine-tuned; its own `query: ` / `passage: ` prefixes) over a real Korean corpus:
    the answers to the first 300 questions of the chatbot FAQ's test split (296 distinct), encoded at start-up."""
    from n2m.serve.corpus import encode_corpus
    from n2m.shapes.n21.examples import load_texts
    from n2m.shapes.n21.predictor import SequencePredictor

    answers: list[str] = []
    for line in FAQ.read_text(encoding="utf-8").splitlines()[1:301]:
        answer = line.split("\t")[1]
        if answer not in answers:
            answers.append(answer)
    path = tmp_path_factory.mktemp("faq") / "answers.tsv"
    path.write_text("id\tanswer\n" + "".join(f"a{i}\t{a}\n" for i, a in enumerate(answers)), encoding="utf-8")
    predictor = SequencePredictor.from_backbone("e5-small")
    corpus = encode_corpus(predictor, load_texts(path, "answer", id_column="id"), path)
    with LiveServer(create_app(predictor, name="e5-small", title="e5-small · 챗봇 답변 검색", corpus=corpus)) as url:
        yield url, len(answers)


def test_the_search_page_finds_answers_in_korean(browser, search_server, shots):
    url, documents = search_server
    page, errors = open_page(browser, url, locale="ko-KR")
    assert page.get_attribute("html", "lang") == "ko" and page.inner_text("#submit") == "검색"
    assert f"문서 {documents}개에서 의미 검색 (answers.tsv)" in page.inner_text("#model-task")
    assert page.get_attribute("#modes a[aria-current=page]", "data-mode") == "search"
    page.click("#submit")
    assert "“질문”을(를) 입력해 주세요" in page.inner_text("#error")
    page.fill("#query", QUESTION)
    page.select_option("#top-k", "5")
    page.click("#submit")
    page.wait_for_selector("#hits li")
    expected = httpx.post(f"{url}/v1/search", json={"query": QUESTION, "top_k": 5}, timeout=60).json()["hits"]
    rows = page.locator("#hits li")
    assert rows.count() == 5
    for i, hit in enumerate(expected):
        assert rows.nth(i).get_attribute("data-id") == hit["id"]
        assert float(rows.nth(i).get_attribute("data-score")) == pytest.approx(hit["score"], abs=1e-6)
        assert rows.nth(i).locator(".hit-text").inner_text() == hit["text"]
        assert rows.nth(i).locator(".score").inner_text() == f"{hit['score']:.3f}"
    assert ANSWER in [hit["text"] for hit in expected]  # the question's own answer is among the five nearest
    assert page.inner_text("#result h2") == f"문서 {documents}개 중 가장 가까운 5개"
    page.screenshot(path=str(shots / "search-page.png"), full_page=True)
    assert errors == []


def test_the_search_page_in_english_and_the_way_back_to_predict(browser, search_server):
    url, documents = search_server
    page, errors = open_page(browser, f"{url}/search?lang=en")
    assert page.inner_text("#submit") == "Search" and page.inner_text("label[for=query]") == "Question"
    assert f"Semantic search over {documents} documents (answers.tsv)" in page.inner_text("#model-task")
    page.fill("#query", "가나다라마바사 " * 300)  # longer than the 512 tokens e5-small reads
    page.click("#submit")
    page.wait_for_selector("#truncated")
    assert "only its start counted" in page.inner_text("#truncated")
    page.click("#modes a[data-mode=predict]")
    page.wait_for_selector("#input-text_pair")  # the model's own form: a pair of texts
    assert page.inner_text("#submit") == "Predict" and page.locator("#query").count() == 0
    assert errors == []
