"""OpenTelemetry instrumentation for LiteLLM's Python SDK.

``litellm.completion`` / ``acompletion`` (streamed or not) and ``embedding`` / ``aembedding``:
one span per call, with the provider LiteLLM routes to as ``gen_ai.provider.name``. A client
library LiteLLM calls underneath (the openai SDK) is not recorded a second time.

    from llm_otel.instrumentation.litellm import LiteLLMInstrumentor
    LiteLLMInstrumentor().instrument()
"""

from __future__ import annotations

import importlib
from collections.abc import Collection
from typing import Any

import wrapt

from llm_otel.instrumentation._support import (
    GenAIInstrumentor,
    Patches,
    retire,
    supported,
    telemetry_for,
)
from llm_otel.instrumentation.litellm.package import _instruments

__all__ = ["LiteLLMInstrumentor"]


class LiteLLMInstrumentor(GenAIInstrumentor):
    """Records one GenAI span and the GenAI client metrics for every LiteLLM call."""

    _patches = Patches()

    def instrumentation_dependencies(self) -> Collection[str]:
        return _instruments

    def _instrument(self, **kwargs: Any) -> None:
        if not supported(self.instrumentation_dependencies(), "litellm"):
            return
        from llm_otel.genai._wrapper import async_wrapper, sync_wrapper
        from llm_otel.instrumentation.litellm._adapters import CompletionAdapter, EmbeddingAdapter

        telemetry = telemetry_for("litellm", kwargs)
        completion, embedding = CompletionAdapter(), EmbeddingAdapter()
        wrappers = {
            "completion": sync_wrapper(telemetry, completion),
            "acompletion": async_wrapper(telemetry, completion),
            "embedding": sync_wrapper(telemetry, embedding),
            "aembedding": async_wrapper(telemetry, embedding),
        }
        # The package re-exports litellm.main's functions (the Router calls them through the
        # package; acompletion calls main's completion): both names are wrapped. A call that
        # passes through both is recorded once (the inner one runs inside the outer's span).
        for module_name in ("litellm.main", "litellm"):
            module = importlib.import_module(module_name)
            for name, wrapper in wrappers.items():
                original = getattr(module, name, None)
                if callable(original) and not isinstance(original, wrapt.FunctionWrapper):
                    LiteLLMInstrumentor._patches.wrap(module, name, wrapper)

    def _uninstrument(self, **kwargs: Any) -> None:
        retire("litellm")
        LiteLLMInstrumentor._patches.restore()
