"""OpenTelemetry instrumentation for the ``anthropic`` client library.

Messages ``create`` / ``parse`` (sync, async, ``stream=True``) and the ``stream()`` helpers, on
the GA and beta APIs; Anthropic, and Anthropic models on Bedrock and Vertex AI through the
anthropic SDK's clients for them.

    from llm_otel.instrumentation.anthropic import AnthropicInstrumentor
    AnthropicInstrumentor().instrument()
"""

from __future__ import annotations

from llm_otel.genai import GenAITelemetry
from llm_otel.instrumentation._base import LLMInstrumentor
from llm_otel.instrumentation._raw import patch_raw_responses
from llm_otel.instrumentation._support import Patches
from llm_otel.instrumentation.anthropic.package import _instruments

__all__ = ["AnthropicInstrumentor"]


class AnthropicInstrumentor(LLMInstrumentor):
    """Records one GenAI span and the GenAI client metrics for every Anthropic Messages call."""

    library = "anthropic"
    requirements = _instruments

    def patch(self, telemetry: GenAITelemetry, patches: Patches) -> None:
        # create/parse and the stream() helpers share one wrapper per class, and the SDK's own
        # tracer is muted during our calls: see _wrappers.
        from llm_otel.instrumentation.anthropic._wrappers import (
            present_targets,
            sdk_tracer_property,
        )

        for cls, method, wrapper in present_targets(telemetry):
            patches.wrap(cls, method, wrapper)
        # Message Batches: their own spans and metrics, not GenAI operations (docs/batch.md).
        from llm_otel.instrumentation.anthropic._batches import present_targets as batch_targets

        for cls, method, wrapper in batch_targets(telemetry):
            patches.wrap(cls, method, wrapper)
        # with_streaming_response / a raw stream: the call ends when the app reads the body.
        patch_raw_responses(patches, "anthropic")
        replacement = sdk_tracer_property()
        if replacement is not None:
            base, prop = replacement
            patches.replace(base, "_tracer", prop)
