#!/usr/bin/env bash
# Install n2m (and what its tests need) and run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
. .venv/bin/activate
export TOKENIZERS_PARALLELISM=false
python -m pytest -q "$@"
