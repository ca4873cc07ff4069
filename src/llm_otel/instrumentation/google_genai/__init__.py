"""OpenTelemetry instrumentation for the ``google-genai`` client library.

``client.models.generate_content``, ``generate_content_stream`` and ``embed_content`` (and the
``client.aio`` forms), on the Gemini API (``gcp.gemini``) and Vertex AI (``gcp.vertex_ai``). One
span per model call: automatic function calling and stream continuation make several.

    from llm_otel.instrumentation.google_genai import GoogleGenAIInstrumentor
    GoogleGenAIInstrumentor().instrument()
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
from llm_otel.instrumentation.google_genai.package import _instruments

__all__ = ["GoogleGenAIInstrumentor"]


class GoogleGenAIInstrumentor(GenAIInstrumentor):
    """Records one GenAI span and the GenAI client metrics for every Gemini model call."""

    _patches = Patches()

    def instrumentation_dependencies(self) -> Collection[str]:
        return _instruments

    def _instrument(self, **kwargs: Any) -> None:
        if not supported(self.instrumentation_dependencies(), "google-genai"):
            return
        from llm_otel.genai._wrapper import Adapter, async_wrapper, sync_wrapper
        from llm_otel.instrumentation.google_genai._adapters import EmbedAdapter, GenerateAdapter

        telemetry = telemetry_for("google_genai", kwargs)
        adapters: dict[str, Adapter] = {
            "_generate_content": GenerateAdapter(),
            "_generate_content_stream": GenerateAdapter(streaming=True),
            # One request either way: older SDKs send it from embed_content itself, newer ones
            # from _embed_content (the in-call guard keeps that to one span).
            "embed_content": EmbedAdapter(),
            "_embed_content": EmbedAdapter(),
        }
        module = importlib.import_module("google.genai.models")
        for class_name, make in (("Models", sync_wrapper), ("AsyncModels", async_wrapper)):
            cls = getattr(module, class_name, None)
            for method, adapter in adapters.items():
                if cls is not None and callable(getattr(cls, method, None)):
                    GoogleGenAIInstrumentor._patches.wrap(cls, method, make(telemetry, adapter))

    def _uninstrument(self, **kwargs: Any) -> None:
        retire("google_genai")
        GoogleGenAIInstrumentor._patches.restore()
