"""The README's report screenshots: one brief `n2m fit` of each shape's recipe, then its `report.html` in headless
Chromium, saved as `docs/report-<name>.png`.

These are brief runs for the pictures, not results: each trains 2 epochs on the first few dozen batches (so the
learning curves have two validation points) and tests on the whole test split, so every plot is drawn from a
real test split's predictions, by a model far from trained. A recipe's numbers come from its full run (README,
Results). The four runs take about a quarter of an hour on 2 CPU cores.

    python scripts/report_screenshots.py [--only korsts intent] [--reuse] [--tiny] [--out docs]

`--reuse` keeps a run folder that already holds its report (only the screenshot is taken again); `--tiny` trains,
validates and tests 2 batches of each (to try the script, not to commit: the pictures would show 2 batches).
Needs Debian's Chromium (`apt-get install chromium fonts-nanum`) and Playwright (no browser download).
"""

from __future__ import annotations

import argparse
import io
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from PIL import Image
from playwright.sync_api import Browser, sync_playwright

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
WIDTH = 1200  # the report's column is 1100 px wide at most
MAX_HEIGHT = 2400  # a full report is several screens, its plots one under another at this width
MAX_BYTES = 400_000


@dataclass
class Shot:
    """One brief run: its recipe, the overrides that make it brief, and where its picture starts and ends."""

    recipe: str
    overrides: list[str]
    # the screenshot is cut below this element (at most MAX_HEIGHT below its start), ending on the shape's own view
    until: str
    # where it starts: the page's top (run facts, learning curves) for one of them, the shape's section for the
    # others, whose own view would not fit under the common part
    start: str | None = None


# 2 epochs of N batches each; validation capped where the val split is large (KorSTS dev 1,500 pairs, 3i4k 5,000)
BRIEF = ["--trainer.max_epochs", "2", "--trainer.log_every_n_steps", "4", "--trainer.enable_progress_bar", "false",
         "--progress_every", "10"]  # fmt: skip
LIMITS = ["--trainer.limit_train_batches", "40", "--trainer.limit_val_batches", "16"]
SHOTS = {
    "korsts": Shot(
        "recipes/korsts.yaml",
        LIMITS,
        until="#plot-scatter",
    ),
    "intent": Shot(
        "recipes/intent-3i4k.yaml",
        # the recipe counts steps and validates mid-epoch; the pictures want one validation per epoch
        ["--trainer.max_steps", "-1", "--trainer.val_check_interval", "1.0", *LIMITS],
        until="#table-per_class",
        start="#section-classes",
    ),
    "ner": Shot(
        "recipes/klue-ner.yaml",
        ["--trainer.limit_train_batches", "40"],
        until="#table-sentences",
        start="#section-entities",
    ),
    "translation": Shot(
        "recipes/ko-en-translation.yaml",
        ["--trainer.limit_train_batches", "40", "--trainer.limit_val_batches", "2"],
        until="#table-samples",
        start="#section-generations",
    ),
}
TINY = ["--trainer.limit_train_batches", "2", "--trainer.limit_val_batches", "2", "--trainer.limit_test_batches", "2"]


def fit(name: str, shot: Shot, tiny: bool) -> Path:
    """`n2m fit` in its own process (the runs share no state), into runs/report-<name>; returns the run folder."""
    run = ROOT / "runs" / f"report-{name}"
    cmd = [sys.executable, "-m", "n2m.cli", "fit", "--config", str(ROOT / shot.recipe), *BRIEF, *shot.overrides,
           *(TINY if tiny else []), "--trainer.default_root_dir", str(run)]  # fmt: skip
    shutil.rmtree(run, ignore_errors=True)  # a fresh folder: an old last.ckpt or log version would mix in
    start = time.monotonic()
    subprocess.run(cmd, cwd=ROOT, check=True, stdin=subprocess.DEVNULL)
    print(f"{name}: fit in {time.monotonic() - start:.0f} s", flush=True)
    if not (run / "report.html").is_file():
        raise SystemExit(f"{run}: n2m fit wrote no report.html (see its stderr above)")
    return run


def screenshot(browser: Browser, report: Path, shot: Shot, out: Path) -> None:
    """The report from `shot.start` down to the bottom of `shot.until`, as a palette PNG of at most MAX_BYTES."""
    page = browser.new_page(viewport={"width": WIDTH, "height": 900})
    page.goto(report.resolve().as_uri())
    broken = page.eval_on_selector_all("img", "els => els.filter(i => !i.complete || i.naturalWidth === 0).length")
    if broken:
        raise SystemExit(f"{report}: {broken} image(s) did not decode")
    top = max(0, int(page.locator(shot.start).bounding_box()["y"]) - 16) if shot.start else 0
    box = page.locator(shot.until).first.bounding_box()
    full = page.evaluate("document.documentElement.scrollHeight")
    end = min(full, int(box["y"] + box["height"]) + 24 if box else full)
    height = min(MAX_HEIGHT, end - top)
    png = page.screenshot(full_page=True, clip={"x": 0, "y": top, "width": WIDTH, "height": height})
    page.close()
    image = Image.open(io.BytesIO(png)).convert("RGB")
    for colors in (256, 128, 64):  # plots and text on white need few colours; fewer until it fits
        buffer = io.BytesIO()
        image.quantize(colors=colors, method=Image.Quantize.MEDIANCUT).save(buffer, "PNG", optimize=True)
        if buffer.tell() <= MAX_BYTES:
            break
    out.write_bytes(buffer.getvalue())
    print(f"{out}: {WIDTH}×{height}, {buffer.tell() // 1000} KB", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", choices=list(SHOTS), default=list(SHOTS))
    parser.add_argument("--reuse", action="store_true", help="keep a run that already has its report.html")
    parser.add_argument("--tiny", action="store_true", help="2 batches of everything, to try the script")
    parser.add_argument("--out", type=Path, default=ROOT / "docs")
    args = parser.parse_args()
    if not Path(CHROMIUM).is_file():
        raise SystemExit(f"{CHROMIUM} not found: apt-get install chromium fonts-nanum")
    # without a Korean font Chromium draws the reports' Korean text as empty boxes
    if not subprocess.run(["fc-list", ":lang=ko"], capture_output=True, text=True).stdout.strip():
        raise SystemExit("no Korean font: apt-get install fonts-nanum")
    runs = {}
    for name in args.only:
        run = ROOT / "runs" / f"report-{name}"
        reuse = args.reuse and (run / "report.html").is_file()
        runs[name] = run if reuse else fit(name, SHOTS[name], args.tiny)
    args.out.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--headless", "--no-sandbox"])
        for name, run in runs.items():
            screenshot(browser, run / "report.html", SHOTS[name], args.out / f"report-{name}.png")
        browser.close()


if __name__ == "__main__":
    main()
