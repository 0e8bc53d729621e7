#!/usr/bin/env bash
# Install everything the test suite needs on a fresh machine, then lint (ruff), type-check
# (mypy) and run it.
# Usage: bash scripts/test.sh [pytest arguments]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh "test,dask"
python3 -m ruff check tinyformula tests experiments scripts
python3 -m mypy
python3 -m pytest "$@"
