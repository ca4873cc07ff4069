#!/usr/bin/env bash
# Runs every check on a fresh machine: makes .venv, installs the package with its dev extras,
# then ruff (lint + format), mypy and pytest; then the suite again with the oldest versions we
# declare support for (openai and OpenTelemetry, in .venv-oldest). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_venv.sh

# make_venv DIR PIP-ARGS...: a venv of its own for a suite whose packages cannot share .venv, made
# once and remade when pyproject.toml or this script changes.
make_venv() {
  local dir=$1; shift
  if [ ! -x "$dir/bin/python" ] || [ pyproject.toml -nt "$dir/.installed" ] ||
     [ scripts/test.sh -nt "$dir/.installed" ]; then
    rm -rf "$dir"
    "$PYTHON" -m venv "$dir"
    "$dir/bin/python" -m pip install -q --upgrade pip
    "$dir/bin/python" -m pip install -q "$@"
    touch "$dir/.installed"
  fi
}
echo "== ruff"; ruff check src tests examples scripts semconv bench
ruff format --check src tests examples scripts semconv bench
echo "== mypy"; mypy
echo "== stack (Collector, Jaeger, Alertmanager, VictoriaLogs, Prometheus: built once, cached in ~/.cache/llm-otel)"
scripts/stack.sh build
if ! command -v tmux >/dev/null; then  # `llm-otel traces` is tested as a person sees it, in tmux
  sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends tmux >/dev/null
fi
echo "== pytest (newest versions; includes the end-to-end stack tests)"
python -m pytest -q "$@"

# Other vendors' OpenAI and LangChain instrumentations next to ours (one span per call): their own venv, since
# they are not our dependencies and would be picked up by opentelemetry-instrument in .venv.
PEERS=(opentelemetry-instrumentation-openai==0.62.4 openinference-instrumentation-openai==0.1.66
       opentelemetry-instrumentation-openai-v2==2.4b0 opentelemetry-util-genai==1.1b0 httpx
       opentelemetry-instrumentation-langchain==0.62.4 openinference-instrumentation-langchain==0.1.80
       opentelemetry-instrumentation-openai-agents==0.62.4 openinference-instrumentation-openai-agents==2.6.0
       "opentelemetry-distro==$(.venv/bin/python -c "import importlib.metadata as m; print(m.version('opentelemetry-instrumentation'))")")
make_venv .venv-peers -e ".[dev]" "${PEERS[@]}"
echo "== pytest (next to other vendors' instrumentations: ${PEERS[*]})"
LLM_OTEL_PEER_TESTS=1 .venv-peers/bin/python -m pytest -q -p no:cacheprovider tests/peers

# LiteLLM in its own venv: every litellm that accepts openai 3 (1.108+) needs a certifi newer
# than this machine's PyPI mirror has, so it runs with the newest one that installs, on openai 2.
LITELLM=(litellm==1.103.0)
make_venv .venv-litellm -e ".[openai,anthropic]" pytest pytest-asyncio pyyaml "${LITELLM[@]}"
echo "== pytest (litellm: ${LITELLM[*]})"
LLM_OTEL_LITELLM_TESTS=1 .venv-litellm/bin/python -m pytest -q -p no:cacheprovider tests/litellm

# LlamaIndex in its own venv: its OpenAI LLM and embedding classes (llama-index-llms-openai) need
# openai < 3, which the main venv has. Its coexistence tests (OpenLLMetry's and OpenInference's
# LlamaIndex instrumentations next to ours) run here too.
LLAMA_INDEX=(llama-index-core==0.14.25 llama-index-llms-openai==0.8.3
             llama-index-llms-openai-like==0.8.1 llama-index-embeddings-openai==0.7.0
             openinference-instrumentation-llama-index==4.6.1
             opentelemetry-instrumentation-llamaindex==0.62.4)
make_venv .venv-llamaindex -e ".[openai]" pytest pytest-asyncio pyyaml "${LLAMA_INDEX[@]}"
echo "== pytest (llama-index: ${LLAMA_INDEX[*]})"
LLM_OTEL_LLAMA_INDEX_TESTS=1 .venv-llamaindex/bin/python -m pytest -q -p no:cacheprovider tests/llama_index

# The training callbacks with the real frameworks (tests/training): torch from PyPI brings its
# CUDA wheels (about 5.6 GB; 2-3 min to install here), so they get their own venv, made once.
TRAINING=(torch==2.15.0 transformers==5.24.0 accelerate==1.16.0 lightning==2.6.6)
make_venv .venv-training -e ".[openai]" pytest pytest-asyncio pyyaml "${TRAINING[@]}"
echo "== pytest (training callbacks: ${TRAINING[*]})"
LLM_OTEL_TRAINING_TESTS=1 .venv-training/bin/python -m pytest -q -p no:cacheprovider tests/training

# Keep these equal to the floors in pyproject.toml and instrumentation/*/package.py.
OLDEST=(openai==1.66.0 opentelemetry-api==1.42.0 opentelemetry-sdk==1.42.0
        opentelemetry-exporter-otlp==1.42.0 opentelemetry-instrumentation==0.63b0
        opentelemetry-semantic-conventions==0.63b0 wrapt==1.14.0 anthropic==0.49.0
        groq==0.30.0 ollama==0.4.7 mistralai==1.5.0 cohere==5.18.0
        google-genai==1.30.0 boto3==1.35.0 botocore==1.35.0 rich==13.0.0)
make_venv .venv-oldest -e . pytest pytest-asyncio pyyaml "${OLDEST[@]}"
echo "== pytest (oldest supported: ${OLDEST[*]})"
PATH="$PWD/.venv-oldest/bin:$PATH" .venv-oldest/bin/python -m pytest -q -p no:cacheprovider \
  -m "not e2e" "$@"
