"""LlamaIndex's model requests, responses, nodes and tool calls in the conventions' shapes.

Nothing here imports LlamaIndex: every value is read by attribute or key, so that a class an
integration package defines (an LLM's ``raw`` response, a vector store's node) is read the same
way as core's own.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as ga
from opentelemetry.util.types import AttributeValue

from llm_otel.genai import LLMRequest, LLMResponse
from llm_otel.instrumentation.langchain._messages import FINISH_REASONS
from llm_otel.manual._values import as_messages

__all__ = ["documents", "embedding_request", "embedding_response", "model_request",
           "model_response", "query_text", "tool_arguments", "tool_result"]  # fmt: skip

# The conventions' provider names for the ``class_name`` of LlamaIndex's LLM and embedding
# classes (``to_dict()``), lower-cased. Others: the class name as LlamaIndex spells it.
_PROVIDERS = {
    "openai_llm": "openai",
    "openai": "openai",
    "openailike": "openai",
    "openai_like": "openai",
    "openaiembedding": "openai",
    "azure_openai_llm": "azure.ai.openai",
    "azureopenai": "azure.ai.openai",
    "azureopenaiembedding": "azure.ai.openai",
    "anthropic_llm": "anthropic",
    "groq_llm": "groq",
    "groq": "groq",
    "mistralai_llm": "mistral_ai",
    "mistralai": "mistral_ai",
    "mistralaiembedding": "mistral_ai",
    "cohere_llm": "cohere",
    "cohereembedding": "cohere",
    "ollama_llm": "ollama",
    "ollama": "ollama",
    "ollamaembedding": "ollama",
    "googlegenai": "gcp.gen_ai",
    "bedrock_llm": "aws.bedrock",
    "bedrock_converse_llm": "aws.bedrock",
    "deepseek": "deepseek",
}
_PARAMETERS = (
    ("temperature", ga.GEN_AI_REQUEST_TEMPERATURE),
    ("max_tokens", ga.GEN_AI_REQUEST_MAX_TOKENS),
    ("top_p", ga.GEN_AI_REQUEST_TOP_P),
    ("frequency_penalty", ga.GEN_AI_REQUEST_FREQUENCY_PENALTY),
    ("presence_penalty", ga.GEN_AI_REQUEST_PRESENCE_PENALTY),
    ("seed", ga.GEN_AI_REQUEST_SEED),
)
_ROLES = {"user": "user", "assistant": "assistant", "system": "system",
          "developer": "system", "tool": "tool", "function": "tool", "chatbot": "assistant",
          "model": "assistant"}  # fmt: skip


def _get(value: Any, key: str) -> Any:
    """``value[key]`` for a mapping, else ``value.key`` (None when missing)."""
    if isinstance(value, Mapping):
        return value.get(key)
    return getattr(value, key, None)


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _provider(model_dict: Mapping[str, Any]) -> str:
    name = str(model_dict.get("class_name") or "llama_index")
    return _PROVIDERS.get(name.lower(), name)


def _model(model_dict: Mapping[str, Any]) -> str | None:
    model = model_dict.get("model") or model_dict.get("model_name")
    return model if isinstance(model, str) and model else None


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _text(message: Any) -> Any:
    """A LlamaIndex ``ChatMessage``'s text (its ``content`` joins the text blocks)."""
    try:
        return message.content
    except Exception:
        return None


def _as_dict(message: Any) -> dict[str, Any] | None:
    """One ``ChatMessage`` in chat-completions shape."""
    role = _get(message, "role")
    role = getattr(role, "value", role)
    if not isinstance(role, str):
        return None
    extra = _get(message, "additional_kwargs") or {}
    out: dict[str, Any] = {"role": _ROLES.get(role, role), "content": _text(message)}
    if out["role"] == "tool":
        out["tool_call_id"] = extra.get("tool_call_id")
    calls = extra.get("tool_calls") if isinstance(extra, Mapping) else None
    if calls:
        out["tool_calls"] = [_tool_call(c) for c in calls]
    return out


def _tool_call(call: Any) -> dict[str, Any]:
    function = _get(call, "function")
    return {"id": _get(call, "id"), "name": _get(function, "name"),
            "arguments": _get(function, "arguments")}  # fmt: skip


def model_request(
    operation: str,
    model_dict: Mapping[str, Any],
    messages: Sequence[Any] | str | None,
    capture: bool,
) -> LLMRequest:
    """The request of a model call LlamaIndex announced (``LLMChatStartEvent`` or
    ``LLMCompletionStartEvent``): what the LLM's ``to_dict()`` says and, with ``capture``,
    the messages (or the prompt)."""
    attributes: dict[str, AttributeValue] = {}
    for key, name in _PARAMETERS:
        value = model_dict.get(key)
        if _number(value):
            attributes[name] = value
    request = LLMRequest(operation=operation, provider=_provider(model_dict),
                         model=_model(model_dict), attributes=attributes)  # fmt: skip
    if capture and messages is not None:
        if isinstance(messages, str):
            request.input_messages = as_messages("input_messages", messages)
        else:
            shaped = [_as_dict(m) for m in messages]
            request.input_messages = as_messages("input_messages",
                                                 [m for m in shaped if m is not None])  # fmt: skip
    return request


def _usage(response: LLMResponse, raw: Any, extra: Mapping[str, Any]) -> None:
    usage = _get(raw, "usage")
    if usage is not None:
        response.input_tokens = _count(_get(usage, "prompt_tokens") or _get(usage, "input_tokens"))
        response.output_tokens = _count(
            _get(usage, "completion_tokens") or _get(usage, "output_tokens")
        )
        details = _get(usage, "prompt_tokens_details")
        response.cache_read_input_tokens = _count(_get(details, "cached_tokens"))
        if response.cache_read_input_tokens is None:
            response.cache_read_input_tokens = _count(_get(usage, "cache_read_input_tokens"))
        response.cache_creation_input_tokens = _count(_get(usage, "cache_creation_input_tokens"))
        reasoning = _get(_get(usage, "completion_tokens_details"), "reasoning_tokens")
        response.reasoning_output_tokens = _count(reasoning)
    if response.input_tokens is None:  # what LlamaIndex's OpenAI classes copy out of ``raw``
        response.input_tokens = _count(extra.get("prompt_tokens"))
    if response.output_tokens is None:
        response.output_tokens = _count(extra.get("completion_tokens"))


def _finish_reasons(raw: Any) -> list[str] | None:
    reasons = []
    for choice in _get(raw, "choices") or ():
        reason = _get(choice, "finish_reason")
        if isinstance(reason, str):
            reasons.append(FINISH_REASONS.get(reason, reason))
    stop = _get(raw, "stop_reason")  # Anthropic's
    if not reasons and isinstance(stop, str):
        reasons.append(FINISH_REASONS.get(stop, stop))
    return reasons or None


def model_response(result: Any, capture: bool) -> LLMResponse:
    """What a ``ChatResponse`` or ``CompletionResponse`` says (a stream's last one: identity
    and finish reason from its last chunk)."""
    response = LLMResponse()
    raw = _get(result, "raw")
    response_id = _get(raw, "id")
    response.response_id = response_id if isinstance(response_id, str) else None
    model = _get(raw, "model")
    response.response_model = model if isinstance(model, str) else None
    extra = _get(result, "additional_kwargs")
    _usage(response, raw, extra if isinstance(extra, Mapping) else {})
    response.finish_reasons = _finish_reasons(raw)
    if capture:
        message = _get(result, "message")
        shaped = _as_dict(message) if message is not None else None
        if shaped is None:
            shaped = {"role": "assistant", "content": _get(result, "text")}
        reasons = response.finish_reasons
        shaped["finish_reason"] = reasons[0] if reasons else "stop"
        response.output_messages = as_messages("output_messages", [shaped])
    return response


def embedding_request(model_dict: Mapping[str, Any]) -> LLMRequest:
    """The request of an embedding call (``EmbeddingStartEvent``)."""
    return LLMRequest(operation="embeddings", provider=_provider(model_dict),
                      model=_model(model_dict))  # fmt: skip


def embedding_response(embeddings: Any) -> LLMResponse:
    """What an ``EmbeddingEndEvent`` says: the vectors' dimension (no usage: LlamaIndex
    passes none on)."""
    response = LLMResponse()
    if isinstance(embeddings, list) and embeddings and isinstance(embeddings[0], list):
        response.attributes[ga.GEN_AI_EMBEDDINGS_DIMENSION_COUNT] = len(embeddings[0])
    return response


def query_text(query: Any) -> Any:
    """A query as given to a retriever or query engine: a string or a ``QueryBundle``."""
    if isinstance(query, str):
        return query
    text = _get(query, "query_str")
    return text if isinstance(text, str) else None


def documents(nodes: Any) -> list[dict[str, Any]]:
    """Retrieved ``NodeWithScore`` items as the conventions' ``gen_ai.retrieval.documents``."""
    items = []
    for found in nodes if isinstance(nodes, list) else ():
        node = _get(found, "node") or found
        item: dict[str, Any] = {}
        node_id = _get(node, "node_id") or _get(node, "id_")
        if node_id is not None:
            item["id"] = str(node_id)
        score = _get(found, "score")
        if _number(score):
            item["score"] = score
        try:
            item["content"] = node.get_content()
        except Exception:
            item["content"] = str(_get(node, "text") or "")
        items.append(item)
    return items


def tool_arguments(arguments: Mapping[str, Any]) -> Any:
    """A tool call's arguments from ``BaseTool.call(*args, **kwargs)``'s bound arguments: the
    keyword arguments (how agents call tools), else the positional ones."""
    kwargs = arguments.get("kwargs")
    args = arguments.get("args")
    if kwargs or not args:
        return dict(kwargs or {})
    return list(args) if len(args) != 1 else args[0]


def tool_result(output: Any) -> Any:
    """A ``ToolOutput``'s content (the text the agent sees), else the value."""
    content = _get(output, "content")
    return content if isinstance(content, str) else output
