#!/usr/bin/env bash
# Runs every check on a fresh machine: makes .venv, installs the package with its dev extras,
# then ruff (lint + format), mypy and pytest. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_venv.sh
echo "== ruff"; ruff check src tests examples scripts; ruff format --check src tests examples scripts
echo "== mypy"; mypy
echo "== pytest"; python -m pytest -q "$@"
