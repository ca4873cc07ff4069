"""Mistral's SDK (``chat.complete/stream``, ``embeddings.create``) onto the GenAI core.

Mistral's API is shaped like Chat Completions, so the OpenAI adapters do the mapping; this module
supplies the provider (``mistral_ai``), the server (the SDK configuration's ``server_url``),
Mistral's parameter names (``random_seed``, ``output_dimension``), streamed events (each item is
an event whose ``data`` is the chunk) and content given as a list of typed chunks.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as ga

from llm_otel.genai import LLMRequest
from llm_otel.instrumentation._fields import as_int, endpoint, field
from llm_otel.instrumentation.openai.compat import (
    ChatAdapter,
    ChatStreamAccumulator,
    EmbeddingsAdapter,
)

__all__ = ["MistralChatAdapter", "MistralEmbeddingsAdapter", "MistralStreamAccumulator"]

PROVIDER = ga.GenAiProviderNameValues.MISTRAL_AI.value


def _server(instance: Any) -> tuple[str | None, int | None]:
    config = getattr(instance, "sdk_configuration", None)
    try:
        url, _ = config.get_server_details()  # type: ignore[union-attr]
    except Exception:
        return None, None
    return endpoint(url)


def _identify(request: LLMRequest, instance: Any) -> LLMRequest:
    request.provider = PROVIDER
    request.server_address, request.server_port = _server(instance)
    return request


class MistralStreamAccumulator(ChatStreamAccumulator):
    __slots__ = ()

    def add(self, chunk: Any) -> None:
        super().add(getattr(chunk, "data", chunk))  # CompletionEvent(data=CompletionChunk)

    @staticmethod
    def _add_delta(state: Any, delta: Any) -> None:
        content = field(delta, "content")
        if isinstance(content, list):  # typed chunks: keep the text ones
            text = "".join(str(field(c, "text", "")) for c in content if field(c, "type") == "text")
            if text:
                state.text.append(text)
            delta = {"role": field(delta, "role"), "tool_calls": field(delta, "tool_calls")}
        ChatStreamAccumulator._add_delta(state, delta)


class MistralChatAdapter(ChatAdapter):
    """``chat.complete`` / ``chat.stream``: operation ``chat``, provider ``mistral_ai``."""

    def __init__(self, streaming: bool = False) -> None:
        self._streaming = streaming

    def request(
        self, instance: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any], capture: bool
    ) -> LLMRequest:
        if self._streaming:
            kwargs = {**kwargs, "stream": True}
        request = _identify(super().request(instance, args, kwargs, capture), instance)
        seed = as_int(kwargs.get("random_seed"))
        if seed is not None:
            request.attributes[ga.GEN_AI_REQUEST_SEED] = seed
        return request

    def stream_accumulator(self, result: Any, capture: bool) -> MistralStreamAccumulator | None:
        # mistralai >= 1.3: EventStream(Async); older: a plain (async) generator of events.
        if type(result).__name__ not in ("EventStream", "EventStreamAsync") and not (
            inspect.isgenerator(result) or inspect.isasyncgen(result)
        ):
            return None
        return MistralStreamAccumulator(capture)


class MistralEmbeddingsAdapter(EmbeddingsAdapter):
    """``embeddings.create``: operation ``embeddings``, provider ``mistral_ai``."""

    def request(
        self, instance: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any], capture: bool
    ) -> LLMRequest:
        request = _identify(super().request(instance, args, kwargs, capture), instance)
        dimensions = as_int(kwargs.get("output_dimension"))
        if dimensions is not None:
            request.attributes[ga.GEN_AI_EMBEDDINGS_DIMENSION_COUNT] = dimensions
        return request
