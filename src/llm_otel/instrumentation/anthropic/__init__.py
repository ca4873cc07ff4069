"""OpenTelemetry instrumentation for the ``anthropic`` client library.

Messages ``create`` / ``parse`` (sync, async, ``stream=True``) and the ``stream()`` helpers, on
the GA and beta APIs; Anthropic, and Anthropic models on Bedrock and Vertex AI through the
anthropic SDK's clients for them.

    from llm_otel.instrumentation.anthropic import AnthropicInstrumentor
    AnthropicInstrumentor().instrument()
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
from llm_otel.instrumentation.anthropic.package import _instruments

__all__ = ["AnthropicInstrumentor"]


class AnthropicInstrumentor(GenAIInstrumentor):
    """Records one GenAI span and the GenAI client metrics for every Anthropic Messages call."""

    _patches = Patches()

    def instrumentation_dependencies(self) -> Collection[str]:
        return _instruments

    def _instrument(self, **kwargs: Any) -> None:
        if not supported(self.instrumentation_dependencies(), "anthropic"):
            return
        from llm_otel.instrumentation.anthropic._wrappers import (
            present_targets,
            sdk_tracer_property,
        )

        telemetry = telemetry_for("anthropic", kwargs)
        for cls, method, wrapper in present_targets(telemetry):
            AnthropicInstrumentor._patches.wrap(cls, method, wrapper)
        replacement = sdk_tracer_property()
        if replacement is not None:
            base, prop = replacement
            AnthropicInstrumentor._patches.replace(base, "_tracer", prop)

    def _uninstrument(self, **kwargs: Any) -> None:
        retire("anthropic")
        AnthropicInstrumentor._patches.restore()
