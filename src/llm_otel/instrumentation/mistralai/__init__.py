"""OpenTelemetry instrumentation for the ``mistralai`` client library.

``chat.complete`` / ``chat.stream`` (and their ``_async`` forms) and ``embeddings.create``
(``create_async``), with ``gen_ai.provider.name = mistral_ai``. The SDK's own tracing hook
(off unless ``MISTRAL_SDK_TELEMETRY`` or ``configure_telemetry`` turns it on) starts no span
for the calls llm_otel records, so each call has one span.

    from llm_otel.instrumentation.mistralai import MistralInstrumentor
    MistralInstrumentor().instrument()
"""

from __future__ import annotations

import importlib
from typing import Any

from llm_otel.genai import GenAITelemetry, in_instrumented_call
from llm_otel.instrumentation._base import LLMInstrumentor, Target
from llm_otel.instrumentation._support import Patches
from llm_otel.instrumentation.mistralai.package import _instruments

__all__ = ["MistralInstrumentor"]

# mistralai 2.x+ keeps the client under mistralai.client; 1.x at the top level.
_PREFIXES = ("mistralai.client.", "mistralai.")
_HOOK = "_hooks.tracing"


def _targets(prefix: str) -> tuple[Target, ...]:
    """One class per resource; the async form of each method is ``<method>_async``."""
    chat, embeddings = prefix + "chat", prefix + "embeddings"
    adapter, embed = "._adapters:MistralChatAdapter", "._adapters:MistralEmbeddingsAdapter"
    streaming = {"streaming": True}
    return (
        Target(chat, "Chat", ("complete",), adapter),
        Target(chat, "Chat", ("complete_async",), adapter, kind="async"),
        Target(chat, "Chat", ("stream",), adapter, streaming),
        Target(chat, "Chat", ("stream_async",), adapter, streaming, kind="async"),
        Target(embeddings, "Embeddings", ("create",), embed),
        Target(embeddings, "Embeddings", ("create_async",), embed, kind="async"),
    )


class MistralInstrumentor(LLMInstrumentor):
    """Records one GenAI span and the GenAI client metrics for every Mistral call."""

    library = "mistralai"
    requirements = _instruments

    def patch(self, telemetry: GenAITelemetry, patches: Patches) -> None:
        # The first layout this version has; its tracing hook is quieted for our calls.
        for prefix in _PREFIXES:
            if self.wrap(telemetry, _targets(prefix)):
                _quiet_sdk_spans(prefix, patches)
                break


def _quiet_sdk_spans(prefix: str, patches: Patches) -> None:
    try:
        hook = importlib.import_module(prefix + _HOOK)
    except ImportError:
        return
    original = getattr(hook, "get_traced_request_and_span", None)
    if original is None:
        return

    def traced_request(tracing_enabled: bool, tracer: Any, span: Any, *a: Any, **k: Any) -> Any:
        # While llm_otel records this call, the SDK's hook starts no span of its own.
        return original(tracing_enabled and not in_instrumented_call(), tracer, span, *a, **k)

    patches.replace(hook, "get_traced_request_and_span", traced_request)
