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
from collections.abc import Collection
from typing import Any

from llm_otel.instrumentation._support import (
    GenAIInstrumentor,
    Patches,
    retire,
    supported,
    telemetry_for,
)
from llm_otel.instrumentation.mistralai.package import _instruments

__all__ = ["MistralInstrumentor"]

# mistralai 2.x+ keeps the client under mistralai.client; 1.x at the top level.
_PREFIXES = ("mistralai.client.", "mistralai.")
_HOOK = "_hooks.tracing"


class MistralInstrumentor(GenAIInstrumentor):
    """Records one GenAI span and the GenAI client metrics for every Mistral call."""

    _patches = Patches()

    def instrumentation_dependencies(self) -> Collection[str]:
        return _instruments

    def _instrument(self, **kwargs: Any) -> None:
        if not supported(self.instrumentation_dependencies(), "mistralai"):
            return
        from llm_otel.genai._wrapper import async_wrapper, in_instrumented_call, sync_wrapper
        from llm_otel.instrumentation.mistralai._adapters import (
            MistralChatAdapter,
            MistralEmbeddingsAdapter,
        )

        telemetry = telemetry_for("mistralai", kwargs)
        targets = (
            ("chat", "Chat", "complete", MistralChatAdapter()),
            ("chat", "Chat", "stream", MistralChatAdapter(streaming=True)),
            ("embeddings", "Embeddings", "create", MistralEmbeddingsAdapter()),
        )
        for prefix in _PREFIXES:
            found = False
            for module_name, class_name, method, adapter in targets:
                try:
                    cls = getattr(importlib.import_module(prefix + module_name), class_name)
                except (ImportError, AttributeError):
                    continue
                for name, make in ((method, sync_wrapper), (method + "_async", async_wrapper)):
                    if callable(getattr(cls, name, None)):
                        MistralInstrumentor._patches.wrap(cls, name, make(telemetry, adapter))
                        found = True
            if found:
                self._quiet_sdk_spans(prefix, in_instrumented_call)
                break

    @staticmethod
    def _quiet_sdk_spans(prefix: str, in_call: Any) -> None:
        try:
            hook = importlib.import_module(prefix + _HOOK)
        except ImportError:
            return
        original = getattr(hook, "get_traced_request_and_span", None)
        if original is None:
            return

        def traced_request(tracing_enabled: bool, tracer: Any, span: Any, *a: Any, **k: Any) -> Any:
            # While llm_otel records this call, the SDK's hook starts no span of its own.
            return original(tracing_enabled and not in_call(), tracer, span, *a, **k)

        MistralInstrumentor._patches.replace(hook, "get_traced_request_and_span", traced_request)

    def _uninstrument(self, **kwargs: Any) -> None:
        retire("mistralai")
        MistralInstrumentor._patches.restore()
