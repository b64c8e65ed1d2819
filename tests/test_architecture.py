"""The layout of docs/architecture.md, held against the code: import rules (import-linter contracts in
pyproject.toml) and lint (ruff, private names included: SLF001)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def tool(name: str) -> str:
    """The tool installed beside this interpreter (CI installs both with the dev extras)."""
    found = shutil.which(name, path=str(Path(sys.executable).parent))
    assert found, f"{name} is not installed: `pip install -e .[dev]`"
    return found


def test_import_contracts_hold():
    """Layers (cli > serve > shapes > core > registry), shapes independent of each other, no Lightning on the
    inference path, no import cycles."""
    done = subprocess.run([tool("lint-imports")], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "4 kept, 0 broken" in done.stdout


def test_ruff_is_clean():
    paths = ["src", "tests", "benchmarks", "scripts"]
    done = subprocess.run([tool("ruff"), "check", *paths], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-4000:]
