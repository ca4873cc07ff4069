"""LiteLLM's ``completion`` / ``acompletion`` / ``embedding`` / ``aembedding`` onto the core.

LiteLLM answers in OpenAI's shapes (``ModelResponse``, ``ModelResponseStream`` chunks,
``EmbeddingResponse``), so the openai adapter's readers do the reading. What LiteLLM adds is the
routing: ``model="anthropic/claude-..."`` is resolved by LiteLLM's own ``get_llm_provider`` into
the model the provider sees and LiteLLM's provider id, mapped here to the conventions' values.
When LiteLLM calls a client library llm_otel also instruments (the openai SDK for ``openai/``,
``azure/``, and OpenAI-compatible servers), that inner call runs inside this span and is not
recorded a second time.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as ga
from opentelemetry.util.types import AttributeValue

from llm_otel.genai import BaseAdapter, LLMRequest, LLMResponse
from llm_otel.instrumentation._fields import as_int, as_text, endpoint, field, given
from llm_otel.instrumentation.openai import compat as openai
from llm_otel.instrumentation.openai.compat import EmbeddingsAdapter as _OpenAIEmbeddings
from llm_otel.semconv.litellm import (
    LLM_OTEL_LITELLM_DEPLOYMENT,
    LLM_OTEL_LITELLM_FALLBACKS,
    LLM_OTEL_LITELLM_MODEL_GROUP,
)

__all__ = ["CompletionAdapter", "EmbeddingAdapter", "provider_name"]

_P = ga.GenAiProviderNameValues

#: LiteLLM provider ids -> the conventions' ``gen_ai.provider.name`` (others are kept as sent).
PROVIDERS = {
    "openai": _P.OPENAI.value,
    "text-completion-openai": _P.OPENAI.value,
    "azure": _P.AZURE_AI_OPENAI.value,
    "azure_text": _P.AZURE_AI_OPENAI.value,
    "azure_ai": _P.AZURE_AI_INFERENCE.value,
    "anthropic": _P.ANTHROPIC.value,
    "bedrock": _P.AWS_BEDROCK.value,
    "sagemaker": "aws.sagemaker",
    "vertex_ai": _P.GCP_VERTEX_AI.value,
    "vertex_ai_beta": _P.GCP_VERTEX_AI.value,
    "gemini": _P.GCP_GEMINI.value,
    "cohere": _P.COHERE.value,
    "cohere_chat": _P.COHERE.value,
    "mistral": _P.MISTRAL_AI.value,
    "groq": _P.GROQ.value,
    "deepseek": _P.DEEPSEEK.value,
    "perplexity": _P.PERPLEXITY.value,
    "xai": _P.X_AI.value,
    "watsonx": _P.IBM_WATSONX_AI.value,
    "ollama": "ollama",
    "ollama_chat": "ollama",
}


def provider_name(litellm_provider: Any) -> str:
    if not isinstance(litellm_provider, str) or not litellm_provider:
        return "litellm"
    return PROVIDERS.get(litellm_provider, litellm_provider)


def _call_arguments(
    args: tuple[Any, ...], kwargs: Mapping[str, Any], second: str
) -> dict[str, Any]:
    """``completion(model, messages, ...)`` / ``embedding(model, input, ...)`` as one mapping."""
    params = dict(kwargs)
    if args:
        params.setdefault("model", args[0])
    if len(args) > 1:
        params.setdefault(second, args[1])
    return params


def _route(params: Mapping[str, Any]) -> LLMRequest:
    """The request's identity as LiteLLM resolves it (model, provider, endpoint)."""
    model = params.get("model")
    api_base = params.get("api_base") or params.get("base_url")
    provider: Any = params.get("custom_llm_provider")
    name = as_text(model)
    if isinstance(model, str):
        try:
            from litellm import get_llm_provider

            name, provider, _key, resolved = get_llm_provider(
                model=model,
                custom_llm_provider=as_text(provider),
                api_base=as_text(api_base),
            )
            api_base = api_base or resolved
        except Exception:
            pass  # LiteLLM itself will reject the call; the span records its error
    host, port = endpoint(api_base)
    return LLMRequest(
        operation="chat",
        provider=provider_name(provider),
        model=name,
        server_address=host,
        server_port=port,
    )


class CompletionAdapter(BaseAdapter):
    """``completion`` / ``acompletion``: operation ``chat``."""

    def request(
        self, instance: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any], capture: bool
    ) -> LLMRequest:
        params = _call_arguments(args, kwargs, "messages")
        request = _route(params)
        request.stream = params.get("stream") is True
        request.attributes = openai.request_attributes(params)
        if capture:
            request.input_messages = openai.input_messages(params.get("messages"))
            tools = params.get("tools")
            if given(tools) and tools:
                request.tool_definitions = list(tools)
        return request

    def response(self, result: Any, capture: bool) -> LLMResponse | None:
        return openai.ChatAdapter().response(result, capture)

    def stream_accumulator(self, result: Any, capture: bool) -> openai.ChatStreamAccumulator | None:
        if type(result).__name__ != "CustomStreamWrapper":
            return None
        return openai.ChatStreamAccumulator(capture)


class RouterCompletionAdapter(CompletionAdapter):
    """``Router.completion`` / ``acompletion``: one span for the whole routed call (the
    ``litellm.completion`` calls it makes per deployment run inside it and add none). The
    request model is the model group asked for; provider and server are its first
    deployment's; the response says which group and deployment answered, after how many
    fallbacks."""

    def request(
        self, instance: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any], capture: bool
    ) -> LLMRequest:
        params = _call_arguments(args, kwargs, "messages")
        group = params.get("model")
        deployment = _first_deployment(instance, group)
        request = super().request(instance, (), {**params, **deployment}, capture)
        request.model = as_text(group)
        return request

    def response(self, result: Any, capture: bool) -> LLMResponse | None:
        response = super().response(result, capture)
        if response is not None:
            response.attributes.update(_routed(result))
        return response


def _first_deployment(router: Any, group: Any) -> dict[str, Any]:
    """The first deployment's ``model``, ``api_base`` and ``custom_llm_provider`` for a model
    group (what the call will most likely be routed to); empty when the Router has none."""
    try:
        deployments = router.get_model_list(model_name=group) or []
    except Exception:
        return {}
    params = field(deployments[0], "litellm_params") if deployments else None
    if not isinstance(params, Mapping):
        return {}
    keys = ("model", "api_base", "base_url", "custom_llm_provider")
    return {key: params[key] for key in keys if as_text(params.get(key))}


def _routed(result: Any) -> dict[str, AttributeValue]:
    """What the Router's response says about its choices (``_hidden_params``)."""
    hidden = getattr(result, "_hidden_params", None)
    if not isinstance(hidden, Mapping):
        return {}
    headers = hidden.get("additional_headers")
    headers = headers if isinstance(headers, Mapping) else {}
    out: dict[str, AttributeValue] = {}
    group = as_text(headers.get("x-litellm-model-group"))
    if group:
        out[LLM_OTEL_LITELLM_MODEL_GROUP] = group
    deployment = as_text(hidden.get("litellm_model_name"))
    if deployment:
        out[LLM_OTEL_LITELLM_DEPLOYMENT] = deployment
    fallbacks = as_int(headers.get("x-litellm-attempted-fallbacks"))
    if fallbacks:
        out[LLM_OTEL_LITELLM_FALLBACKS] = fallbacks
    return out


class EmbeddingAdapter(BaseAdapter):
    """``embedding`` / ``aembedding``: operation ``embeddings``."""

    def request(
        self, instance: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any], capture: bool
    ) -> LLMRequest:
        params = _call_arguments(args, kwargs, "input")
        request = _route(params)
        request.operation = "embeddings"
        dimensions = as_int(params.get("dimensions"))
        if dimensions is not None:
            request.attributes[ga.GEN_AI_EMBEDDINGS_DIMENSION_COUNT] = dimensions
        encoding = params.get("encoding_format")
        if isinstance(encoding, str):
            request.attributes[ga.GEN_AI_REQUEST_ENCODING_FORMATS] = [encoding]
        return request

    def response(self, result: Any, capture: bool) -> LLMResponse | None:
        return _OpenAIEmbeddings().response(result, capture)
