"""OpenTelemetry instrumentation for the ``openai`` client library.

Chat Completions (``create``, ``parse`` and the ``stream()`` helper), the Responses API and
embeddings, sync and async, streamed or not; OpenAI, Azure OpenAI and OpenAI-compatible servers.

    from llm_otel.instrumentation.openai import OpenAIInstrumentor
    OpenAIInstrumentor().instrument()
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
from llm_otel.instrumentation.openai.package import _instruments

__all__ = ["OpenAIInstrumentor"]


class OpenAIInstrumentor(GenAIInstrumentor):
    """Records one GenAI span and the GenAI client metrics for every OpenAI call."""

    _patches = Patches()

    def instrumentation_dependencies(self) -> Collection[str]:
        return _instruments

    def _instrument(self, **kwargs: Any) -> None:
        if not supported(self.instrumentation_dependencies(), "openai"):
            return
        from llm_otel.instrumentation.openai._wrappers import present_targets

        telemetry = telemetry_for("openai", kwargs)
        for cls, method, wrapper in present_targets(telemetry):
            OpenAIInstrumentor._patches.wrap(cls, method, wrapper)

    def _uninstrument(self, **kwargs: Any) -> None:
        retire("openai")
        OpenAIInstrumentor._patches.restore()
