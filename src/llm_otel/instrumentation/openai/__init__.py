"""OpenTelemetry instrumentation for the ``openai`` client library.

Chat Completions (``create``, ``parse`` and the ``stream()`` helper), the Responses API and
embeddings, sync and async, streamed or not; OpenAI, Azure OpenAI and OpenAI-compatible servers;
the Batch API (``batches.create/retrieve/cancel`` and the results' ``files.content``).

    from llm_otel.instrumentation.openai import OpenAIInstrumentor
    OpenAIInstrumentor().instrument()
"""

from __future__ import annotations

from llm_otel.genai import GenAITelemetry
from llm_otel.instrumentation._base import LLMInstrumentor, Target
from llm_otel.instrumentation._raw import patch_raw_responses
from llm_otel.instrumentation._support import Patches
from llm_otel.instrumentation.openai.package import _instruments

__all__ = ["OpenAIInstrumentor"]


class OpenAIInstrumentor(LLMInstrumentor):
    """Records one GenAI span and the GenAI client metrics for every OpenAI call."""

    library = "openai"
    requirements = _instruments
    targets = (
        *Target.pair("openai.resources.chat.completions", "Completions", "AsyncCompletions",
                     ("create", "parse"), "._chat:ChatAdapter"),
        # Older SDKs have parse() only under beta; where it delegates to chat.completions, the
        # in-call guard keeps it to one span.
        *Target.pair("openai.resources.beta.chat.completions", "Completions", "AsyncCompletions",
                     ("parse",), "._chat:ChatAdapter"),
        *Target.pair("openai.resources.responses", "Responses", "AsyncResponses",
                     ("create", "parse"), "._responses:ResponsesAdapter"),
        *Target.pair("openai.resources.embeddings", "Embeddings", "AsyncEmbeddings",
                     ("create",), "._embeddings:EmbeddingsAdapter"),
    )  # fmt: skip

    def patch(self, telemetry: GenAITelemetry, patches: Patches) -> None:
        # The Batch API's lifecycle calls and its result files (not GenAI operations: their own
        # spans and metrics, docs/batch.md).
        from llm_otel.instrumentation.openai._batches import present_targets

        for cls, method, wrapper in present_targets(telemetry):
            patches.wrap(cls, method, wrapper)
        # with_streaming_response / a raw stream: the call ends when the app reads the body.
        patch_raw_responses(patches, "openai")
