"""Groq's SDK speaks the Chat Completions wire format: the OpenAI adapters, provider ``groq``.

Groq streams report usage in the final chunk's ``x_groq.usage`` (and, with
``stream_options.include_usage``, in ``usage`` as OpenAI does); both are read.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from opentelemetry.semconv._incubating.attributes.gen_ai_attributes import GenAiProviderNameValues

from llm_otel.genai import LLMRequest
from llm_otel.instrumentation.openai.compat import (
    ChatAdapter,
    ChatStreamAccumulator,
    EmbeddingsAdapter,
    usage_into,
)

__all__ = ["GroqChatAdapter", "GroqEmbeddingsAdapter", "GroqStreamAccumulator"]

GROQ = GenAiProviderNameValues.GROQ.value


class GroqStreamAccumulator(ChatStreamAccumulator):
    __slots__ = ()

    def add(self, chunk: Any) -> None:
        super().add(chunk)
        extra = getattr(chunk, "x_groq", None)
        usage = getattr(extra, "usage", None) if extra is not None else None
        if usage is not None:
            usage_into(self._response, usage)


class GroqChatAdapter(ChatAdapter):
    """``chat.completions.create``: operation ``chat``, provider ``groq``."""

    def request(
        self, instance: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any], capture: bool
    ) -> LLMRequest:
        request = super().request(instance, args, kwargs, capture)
        request.provider = GROQ
        return request

    def stream_accumulator(self, result: Any, capture: bool) -> GroqStreamAccumulator | None:
        if type(result).__name__ not in ("Stream", "AsyncStream"):
            return None
        return GroqStreamAccumulator(capture)


class GroqEmbeddingsAdapter(EmbeddingsAdapter):
    """``embeddings.create``: operation ``embeddings``, provider ``groq``."""

    def request(
        self, instance: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any], capture: bool
    ) -> LLMRequest:
        request = super().request(instance, args, kwargs, capture)
        request.provider = GROQ
        return request
