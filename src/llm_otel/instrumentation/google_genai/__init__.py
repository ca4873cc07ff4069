"""OpenTelemetry instrumentation for the ``google-genai`` client library.

``client.models.generate_content``, ``generate_content_stream`` and ``embed_content`` (and the
``client.aio`` forms), on the Gemini API (``gcp.gemini``) and Vertex AI (``gcp.vertex_ai``). One
span per model call: automatic function calling and stream continuation make several.

    from llm_otel.instrumentation.google_genai import GoogleGenAIInstrumentor
    GoogleGenAIInstrumentor().instrument()
"""

from __future__ import annotations

from llm_otel.instrumentation._base import LLMInstrumentor, Target
from llm_otel.instrumentation.google_genai.package import _instruments

__all__ = ["GoogleGenAIInstrumentor"]

_MODELS = ("google.genai.models", "Models", "AsyncModels")


class GoogleGenAIInstrumentor(LLMInstrumentor):
    """Records one GenAI span and the GenAI client metrics for every Gemini model call."""

    library = "google-genai"
    requirements = _instruments
    transports = ("httpx", "aiohttp")  # its async calls go through aiohttp when installed
    targets = (
        *Target.pair(*_MODELS, ("_generate_content",), "._adapters:GenerateAdapter"),
        *Target.pair(*_MODELS, ("_generate_content_stream",), "._adapters:GenerateAdapter",
                     streaming=True),
        # One request either way: older SDKs send it from embed_content itself, newer ones
        # from _embed_content (the in-call guard keeps that to one span).
        *Target.pair(*_MODELS, ("embed_content", "_embed_content"), "._adapters:EmbedAdapter"),
    )  # fmt: skip
