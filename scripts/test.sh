#!/usr/bin/env bash
# Install n2m (and what its tests need) and run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
# the web page is tested in a real headless Chromium: Debian's package, not a browser download
if ! command -v chromium >/dev/null 2>&1; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq && $SUDO apt-get install -y -qq chromium >/dev/null \
    || { echo "could not install chromium: the browser tests need it (under CI=true they fail without it)" >&2
         [ "${CI:-}" != true ] || exit 1; }
fi
. .venv/bin/activate
export TOKENIZERS_PARALLELISM=false
python -m pytest -q "$@"
