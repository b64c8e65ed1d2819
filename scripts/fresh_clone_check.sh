#!/usr/bin/env bash
# The README's two commands from a fresh clone of this checkout's HEAD, timed: `scripts/quickstart.sh`, then
# `scripts/test.sh` (with CI=true, as CI runs it). Writes results/fresh_clone.json, which the README quotes.
# n2m's model and token caches start empty ($N2M_HOME in the temporary folder), as on a fresh machine.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)
WORK=$(mktemp -d /tmp/n2m-fresh-XXXXXX)
git clone -q "$REPO" "$WORK/n2m"
export N2M_HOME="$WORK/n2m-home"
cd "$WORK/n2m"
start=$(date +%s)
scripts/quickstart.sh 2>&1 | tee "$WORK/quickstart.log"
quickstart_s=$(( $(date +%s) - start ))
start=$(date +%s)
CI=true scripts/test.sh 2>&1 | tee "$WORK/test.log"
test_s=$(( $(date +%s) - start ))
. .venv/bin/activate
python - "$REPO/results/fresh_clone.json" "$WORK" "$quickstart_s" "$test_s" <<'PY'
import json, re, subprocess, sys
from pathlib import Path

sys.path.insert(0, "benchmarks")
from _measure import machine, today

out, work, quickstart_s, test_s = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
report = json.loads(Path("runs/quickstart/results.json").read_text())
summary = (work / "test.log").read_text().strip().splitlines()[-1]
counts = {kind: int(n) for n, kind in re.findall(r"(\d+) (passed|failed|skipped|errors?)", summary)}
record = {
    "commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip(),
    "machine": machine(),
    "date": today(),
    "quickstart_s": quickstart_s,
    "quickstart_test_pearson": round(report["test"]["test/pearson"], 4),
    "test_s": test_s,
    "tests": counts,
    "pytest_summary": summary,
}
out.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
print(json.dumps(record, indent=2))
PY
