#!/usr/bin/env bash
# The main job on a fresh machine: sets up .venv, then runs the instrumented demo app and prints
# the spans and metrics it exported.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_venv.sh
python scripts/demo.py
