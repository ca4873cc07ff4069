"""Embeddings (``client.embeddings.create``) onto the GenAI core."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as ga

from llm_otel.genai import LLMRequest, LLMResponse
from llm_otel.instrumentation._fields import as_text
from llm_otel.instrumentation._raw import StainlessAdapter, unwrap_response
from llm_otel.instrumentation.openai._common import as_int, client_identity, field

__all__ = ["EmbeddingsAdapter"]


class EmbeddingsAdapter(StainlessAdapter):
    """``embeddings.create``: operation ``embeddings``; usage is input tokens only."""

    def request(
        self, instance: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any], capture: bool
    ) -> LLMRequest:
        provider, host, port = client_identity(instance)
        model = kwargs.get("model")
        request = LLMRequest(
            operation="embeddings",
            provider=provider,
            model=as_text(model),
            server_address=host,
            server_port=port,
        )
        encoding = kwargs.get("encoding_format")
        if isinstance(encoding, str):
            request.attributes[ga.GEN_AI_REQUEST_ENCODING_FORMATS] = [encoding]
        dimensions = as_int(kwargs.get("dimensions"))
        if dimensions is not None:
            request.attributes[ga.GEN_AI_EMBEDDINGS_DIMENSION_COUNT] = dimensions
        return request

    def response(self, result: Any, capture: bool) -> LLMResponse | None:
        source = unwrap_response(result)
        if source is None:
            return None
        usage = field(source, "usage")
        return LLMResponse(
            response_model=field(source, "model"),
            input_tokens=as_int(field(usage, "prompt_tokens")),
        )
