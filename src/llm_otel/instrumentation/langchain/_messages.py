"""LangChain's messages, model results and documents in the conventions' shapes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as ga
from opentelemetry.util.types import AttributeValue

from llm_otel.genai import LLMResponse, Message
from llm_otel.instrumentation.anthropic._messages import FINISH_REASONS as ANTHROPIC_FINISH_REASONS
from llm_otel.instrumentation.openai._chat import FINISH_REASONS as OPENAI_FINISH_REASONS
from llm_otel.manual._values import as_messages

__all__ = ["FINISH_REASONS", "documents", "input_messages", "provider_of", "request_attributes",
           "response_of", "tool_result"]  # fmt: skip

# The conventions' provider names for LangChain's ``ls_provider`` values.
_PROVIDERS = {
    "openai": "openai",
    "azure": "azure.ai.openai",
    "anthropic": "anthropic",
    "groq": "groq",
    "mistral": "mistral_ai",
    "mistralai": "mistral_ai",
    "cohere": "cohere",
    "ollama": "ollama",
    "google_genai": "gcp.gen_ai",
    "google_vertexai": "gcp.vertex_ai",
    "amazon_bedrock": "aws.bedrock",
    "bedrock": "aws.bedrock",
    "bedrock_converse": "aws.bedrock",
    "deepseek": "deepseek",
    "xai": "x_ai",
    "perplexity": "perplexity",
}
# What LangChain passes on is the provider's own finish reason: OpenAI's and Anthropic's as
# their instrumentations map them (neither module imports its SDK), and Gemini's two common ones.
FINISH_REASONS = {**OPENAI_FINISH_REASONS, **ANTHROPIC_FINISH_REASONS,
                  "STOP": "stop", "MAX_TOKENS": "length"}  # fmt: skip
_ROLES = {"human": "user", "ai": "assistant", "system": "system", "tool": "tool",
          "function": "tool", "developer": "system"}  # fmt: skip
_PARAMETERS = (
    ("ls_temperature", "temperature", ga.GEN_AI_REQUEST_TEMPERATURE),
    ("ls_max_tokens", "max_tokens", ga.GEN_AI_REQUEST_MAX_TOKENS),
    (None, "top_p", ga.GEN_AI_REQUEST_TOP_P),
    (None, "frequency_penalty", ga.GEN_AI_REQUEST_FREQUENCY_PENALTY),
    (None, "presence_penalty", ga.GEN_AI_REQUEST_PRESENCE_PENALTY),
    (None, "seed", ga.GEN_AI_REQUEST_SEED),
)


def provider_of(metadata: Mapping[str, Any], params: Mapping[str, Any]) -> str:
    """``gen_ai.provider.name`` from LangChain's ``ls_provider`` (else the model's type)."""
    name = metadata.get("ls_provider") or params.get("_type") or "langchain"
    name = str(name)
    return _PROVIDERS.get(name, name)


def request_attributes(
    metadata: Mapping[str, Any], params: Mapping[str, Any]
) -> dict[str, AttributeValue]:
    out: dict[str, AttributeValue] = {}
    for ls_key, param, key in _PARAMETERS:
        value = metadata.get(ls_key) if ls_key else None
        if value is None:
            value = params.get(param)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            out[key] = value
    stop = metadata.get("ls_stop") or params.get("stop")
    if isinstance(stop, str):
        stop = [stop]
    if isinstance(stop, (list, tuple)) and all(isinstance(s, str) for s in stop) and stop:
        out[ga.GEN_AI_REQUEST_STOP_SEQUENCES] = list(stop)
    return out


def _content(content: Any) -> Any:
    """A message's content as chat-completions content: text, or content blocks."""
    if isinstance(content, (str, list)):
        return content
    return None if content is None else str(content)


def _as_dict(message: Any) -> dict[str, Any] | str | None:
    """One LangChain message (or a plain string prompt) in chat-completions shape."""
    if isinstance(message, str):
        return message
    kind = getattr(message, "type", None)
    if not isinstance(kind, str):
        return None
    role = getattr(message, "role", None) if kind == "chat" else _ROLES.get(kind, kind)
    out: dict[str, Any] = {"role": role or "user", "content": _content(message.content)}
    if kind == "tool":
        out["tool_call_id"] = getattr(message, "tool_call_id", None)
    calls = getattr(message, "tool_calls", None)
    if calls:
        out["tool_calls"] = [
            {"id": c.get("id"), "name": c.get("name"), "arguments": c.get("args")}
            for c in calls
            if isinstance(c, Mapping)
        ]
    return out


def input_messages(messages: Any) -> list[Message] | None:
    """The messages (or prompt strings) a model run was given, in the parts schema."""
    converted = [_as_dict(m) for m in messages or ()]
    return as_messages("input_messages", [m for m in converted if m is not None])


def _finish_reason(generation: Any, metadata: Mapping[str, Any]) -> str | None:
    info = getattr(generation, "generation_info", None) or {}
    reason = info.get("finish_reason") or metadata.get("finish_reason")
    reason = reason or metadata.get("stop_reason")
    if not isinstance(reason, str):
        return None
    return FINISH_REASONS.get(reason, reason)


def _usage(response: LLMResponse, message: Any, llm_output: Mapping[str, Any]) -> None:
    usage = getattr(message, "usage_metadata", None)
    if isinstance(usage, Mapping):
        response.input_tokens = _count(usage.get("input_tokens"))
        response.output_tokens = _count(usage.get("output_tokens"))
        details = usage.get("input_token_details") or {}
        response.cache_read_input_tokens = _count(details.get("cache_read"))
        response.cache_creation_input_tokens = _count(details.get("cache_creation"))
        reasoning = (usage.get("output_token_details") or {}).get("reasoning")
        response.reasoning_output_tokens = _count(reasoning)
        return
    usage = llm_output.get("token_usage") or llm_output.get("usage") or {}
    if isinstance(usage, Mapping):
        response.input_tokens = _count(usage.get("prompt_tokens", usage.get("input_tokens")))
        response.output_tokens = _count(usage.get("completion_tokens", usage.get("output_tokens")))


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def response_of(result: Any, capture: bool) -> LLMResponse:
    """What a model run's ``LLMResult`` says: identity, usage, finish reasons, output."""
    response = LLMResponse()
    generations = (getattr(result, "generations", None) or [[]])[0] or []
    llm_output = getattr(result, "llm_output", None) or {}
    first = generations[0] if generations else None
    message = getattr(first, "message", None)
    metadata = getattr(message, "response_metadata", None) or {}
    model = metadata.get("model_name") or metadata.get("model") or llm_output.get("model_name")
    response.response_model = model if isinstance(model, str) else None
    response_id = metadata.get("id")
    response.response_id = response_id if isinstance(response_id, str) else None
    _usage(response, message, llm_output)
    reasons = []
    outputs: list[Any] = []
    for generation in generations:
        gen_message = getattr(generation, "message", None)
        gen_metadata = getattr(gen_message, "response_metadata", None) or {}
        reason = _finish_reason(generation, gen_metadata)
        if reason:
            reasons.append(reason)
        if capture:
            shaped = _as_dict(gen_message) if gen_message is not None else None
            if shaped is None:
                shaped = {"role": "assistant", "content": getattr(generation, "text", None)}
            if isinstance(shaped, dict):
                shaped["finish_reason"] = reason or "stop"
                outputs.append(shaped)
    response.finish_reasons = reasons or None
    if capture:
        response.output_messages = as_messages("output_messages", outputs)
    return response


def tool_result(output: Any) -> Any:
    """A tool's result: a ``ToolMessage``'s content, else the value."""
    content = getattr(output, "content", None)
    if content is not None and getattr(output, "type", None) == "tool":
        return content
    return output


def documents(found: Any) -> list[dict[str, Any]]:
    """Retrieved documents as the conventions' ``gen_ai.retrieval.documents`` items."""
    items = []
    for document in found or ():
        item: dict[str, Any] = {"content": getattr(document, "page_content", str(document))}
        document_id = getattr(document, "id", None)
        if document_id is not None:
            item["id"] = str(document_id)
        items.append(item)
    return items
