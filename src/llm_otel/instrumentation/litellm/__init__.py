"""OpenTelemetry instrumentation for LiteLLM's Python SDK.

``litellm.completion`` / ``acompletion`` (streamed or not) and ``embedding`` / ``aembedding``:
one span per call, with the provider LiteLLM routes to as ``gen_ai.provider.name``. A client
library LiteLLM calls underneath (the openai SDK) is not recorded a second time.

    from llm_otel.instrumentation.litellm import LiteLLMInstrumentor
    LiteLLMInstrumentor().instrument()
"""

from __future__ import annotations

from llm_otel.instrumentation._base import LLMInstrumentor, Target
from llm_otel.instrumentation.litellm.package import _instruments

__all__ = ["LiteLLMInstrumentor"]


def _functions(module: str) -> tuple[Target, ...]:
    completion, embedding = "._adapters:CompletionAdapter", "._adapters:EmbeddingAdapter"
    return (
        Target(module, None, ("completion",), completion, skip_wrapped=True),
        Target(module, None, ("acompletion",), completion, kind="async", skip_wrapped=True),
        Target(module, None, ("embedding",), embedding, skip_wrapped=True),
        Target(module, None, ("aembedding",), embedding, kind="async", skip_wrapped=True),
    )


class LiteLLMInstrumentor(LLMInstrumentor):
    """Records one GenAI span and the GenAI client metrics for every LiteLLM call."""

    library = "litellm"
    requirements = _instruments
    # The package re-exports litellm.main's functions (the Router calls them through the
    # package; acompletion calls main's completion): both names are wrapped. A call that passes
    # through both is recorded once (the inner one runs inside the outer's span).
    targets = (
        *_functions("litellm.main"),
        *_functions("litellm"),
        # The Router: one span per routed call, whatever deployments and fallbacks it tries.
        Target("litellm.router", "Router", ("completion",), "._adapters:RouterCompletionAdapter"),
        Target("litellm.router", "Router", ("acompletion",), "._adapters:RouterCompletionAdapter",
               kind="async"),
    )  # fmt: skip
