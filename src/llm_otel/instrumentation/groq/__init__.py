"""OpenTelemetry instrumentation for the ``groq`` client library.

Chat completions (sync, async, streamed) and embeddings, recorded like OpenAI's with
``gen_ai.provider.name = groq``.

    from llm_otel.instrumentation.groq import GroqInstrumentor
    GroqInstrumentor().instrument()
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from llm_otel.instrumentation._support import (
    GenAIInstrumentor,
    Patches,
    retire,
    supported,
    telemetry_for,
)
from llm_otel.instrumentation.groq.package import _instruments

__all__ = ["GroqInstrumentor"]


class GroqInstrumentor(GenAIInstrumentor):
    """Records one GenAI span and the GenAI client metrics for every Groq call."""

    _patches = Patches()

    def instrumentation_dependencies(self) -> Collection[str]:
        return _instruments

    def _instrument(self, **kwargs: Any) -> None:
        if not supported(self.instrumentation_dependencies(), "groq"):
            return
        from llm_otel.instrumentation.groq._adapters import (
            GroqChatAdapter,
            GroqEmbeddingsAdapter,
        )
        from llm_otel.instrumentation.openai._wrappers import present_targets

        telemetry = telemetry_for("groq", kwargs)
        targets = (
            (
                "groq.resources.chat.completions",
                "Completions",
                "AsyncCompletions",
                ("create",),
                GroqChatAdapter,
            ),
            (
                "groq.resources.embeddings",
                "Embeddings",
                "AsyncEmbeddings",
                ("create",),
                GroqEmbeddingsAdapter,
            ),
        )
        for cls, method, wrapper in present_targets(telemetry, targets):
            GroqInstrumentor._patches.wrap(cls, method, wrapper)

    def _uninstrument(self, **kwargs: Any) -> None:
        retire("groq")
        GroqInstrumentor._patches.restore()
