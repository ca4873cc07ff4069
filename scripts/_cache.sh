# Sourced by the stack scripts: where built binaries are cached (outside the checkout).
CACHE_DIR=${LLM_OTEL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/llm-otel}
BUILDER_VERSION=v0.159.0
mkdir -p "$CACHE_DIR/bin"
export GOFLAGS=${GOFLAGS:--mod=mod}
