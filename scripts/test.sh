#!/usr/bin/env bash
# Runs every check on a fresh machine: makes .venv, installs the package with its dev extras,
# then ruff (lint + format), mypy and pytest; then the suite again against the oldest supported
# openai (in .venv-oldest). Extra arguments go to both pytest runs.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_venv.sh
echo "== ruff"; ruff check src tests examples scripts; ruff format --check src tests examples scripts
echo "== mypy"; mypy
echo "== pytest (newest openai)"; python -m pytest -q "$@"

OLDEST_OPENAI=1.66.0
if [ ! -x .venv-oldest/bin/python ] || [ pyproject.toml -nt .venv-oldest/.installed ]; then
  "$PYTHON" -m venv .venv-oldest
  .venv-oldest/bin/python -m pip install -q --upgrade pip
  .venv-oldest/bin/python -m pip install -q -e ".[dev]" "openai==$OLDEST_OPENAI"
  touch .venv-oldest/.installed
fi
echo "== pytest (oldest supported openai, $OLDEST_OPENAI)"
PATH="$PWD/.venv-oldest/bin:$PATH" .venv-oldest/bin/python -m pytest -q -p no:cacheprovider "$@"
