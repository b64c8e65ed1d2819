#!/usr/bin/env bash
# Train each named recipe in full (default: every N21 recipe), score its test split once with the checkpoint
# validation chose, and keep the report in results/recipes/<name>.json (README's results table reads these).
#   scripts/run_recipes.sh korsts kornli intent-3i4k stsb-en
set -euo pipefail
cd "$(dirname "$0")/.."
. .venv/bin/activate
export TOKENIZERS_PARALLELISM=false
mkdir -p results/recipes
recipes=("$@")
[ ${#recipes[@]} -gt 0 ] || recipes=(korsts kornli intent-3i4k stsb-en)
for recipe in "${recipes[@]}"; do
    root="runs/$recipe"
    rm -rf "$root"
    # heavy jobs take turns on small machines (the lock is a no-op when nothing else trains)
    flock /tmp/n2m-heavy.lock n2m fit --config "recipes/$recipe.yaml" --trainer.enable_progress_bar false
    python scripts/collect_result.py "$recipe"
done
