"""OpenTelemetry instrumentation for the ``groq`` client library.

Chat completions (sync, async, streamed) and embeddings, recorded like OpenAI's with
``gen_ai.provider.name = groq``.

    from llm_otel.instrumentation.groq import GroqInstrumentor
    GroqInstrumentor().instrument()
"""

from __future__ import annotations

from llm_otel.genai import GenAITelemetry
from llm_otel.instrumentation._base import LLMInstrumentor, Target
from llm_otel.instrumentation._raw import patch_raw_responses
from llm_otel.instrumentation._support import Patches
from llm_otel.instrumentation.groq.package import _instruments

__all__ = ["GroqInstrumentor"]


class GroqInstrumentor(LLMInstrumentor):
    """Records one GenAI span and the GenAI client metrics for every Groq call."""

    library = "groq"
    requirements = _instruments
    targets = (
        *Target.pair("groq.resources.chat.completions", "Completions", "AsyncCompletions",
                     ("create",), "._adapters:GroqChatAdapter"),
        *Target.pair("groq.resources.embeddings", "Embeddings", "AsyncEmbeddings",
                     ("create",), "._adapters:GroqEmbeddingsAdapter"),
    )  # fmt: skip

    def patch(self, telemetry: GenAITelemetry, patches: Patches) -> None:
        # with_streaming_response / a raw stream: the call ends when the app reads the body.
        patch_raw_responses(patches, "groq")
