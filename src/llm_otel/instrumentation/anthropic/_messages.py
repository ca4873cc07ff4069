"""Anthropic Messages (``client.messages.create`` / ``stream``) onto the GenAI core.

Anthropic reports ``input_tokens`` without the tokens read from or written to the prompt cache;
the conventions' ``gen_ai.usage.input_tokens`` includes them, so the adapter adds them up.
Stop reasons are mapped to the conventions' finish reasons (an unknown one is kept as sent).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as ga
from opentelemetry.util.types import AttributeValue

from llm_otel.genai import (
    LLMRequest,
    LLMResponse,
    Message,
    reasoning_part,
    text_part,
    tool_call_part,
    tool_call_response_part,
)
from llm_otel.instrumentation._fields import (
    Parameter,
    as_int,
    as_number,
    as_text,
    client_endpoint,
    field,
    finish_reason,
    given,
    parameters,
    parse_arguments,
)
from llm_otel.instrumentation._raw import StainlessAdapter, unwrap_response

__all__ = ["FINISH_REASONS", "MessagesAdapter", "MessagesStreamAccumulator", "client_identity"]

FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_call",
    "refusal": "content_filter",
}

# An enum member's ``value`` is a Python-level property (two frames a read): read once here.
_ANTHROPIC = ga.GenAiProviderNameValues.ANTHROPIC.value
# The anthropic client classes for other clouds, by the provider the conventions name.
_PROVIDERS = (
    ("Bedrock", ga.GenAiProviderNameValues.AWS_BEDROCK.value),
    ("Vertex", ga.GenAiProviderNameValues.GCP_VERTEX_AI.value),
)


def client_identity(resource: Any) -> tuple[str, str | None, int | None]:
    """Provider name and server address/port of the client a resource belongs to."""
    client = getattr(resource, "_client", None)
    provider = _ANTHROPIC
    name = type(client).__name__
    for marker, value in _PROVIDERS:
        if marker in name:
            provider = value
    return provider, *client_endpoint(client)


_PARAMETERS: tuple[Parameter, ...] = (
    ("temperature", ga.GEN_AI_REQUEST_TEMPERATURE, as_number),
    ("top_p", ga.GEN_AI_REQUEST_TOP_P, as_number),
    ("max_tokens", ga.GEN_AI_REQUEST_MAX_TOKENS, as_int),
    ("top_k", ga.GEN_AI_REQUEST_TOP_K, as_int),
)


def request_attributes(kwargs: Mapping[str, Any]) -> dict[str, AttributeValue]:
    attrs = parameters(kwargs, _PARAMETERS, stop="stop_sequences")
    output_config = kwargs.get("output_config")
    if field(field(output_config, "format"), "type") == "json_schema":
        attrs[ga.GEN_AI_OUTPUT_TYPE] = "json"
    return attrs


def block_parts(content: Any) -> list[dict[str, Any]]:
    """Anthropic content (a string or content blocks) as the conventions' message parts."""
    if content is None:
        return []
    if isinstance(content, str):
        return [text_part(content)]
    parts: list[dict[str, Any]] = []
    for block in content if isinstance(content, (list, tuple)) else [content]:
        kind = field(block, "type")
        if kind == "text":
            parts.append(text_part(field(block, "text", "")))
        elif kind in ("tool_use", "server_tool_use", "mcp_tool_use"):
            parts.append(
                tool_call_part(field(block, "id"), field(block, "name"), field(block, "input"))
            )
        elif kind == "tool_result" or (isinstance(kind, str) and kind.endswith("_tool_result")):
            result = field(block, "content")
            if isinstance(result, (list, tuple)):
                result = [p.get("content", p) for p in block_parts(result)]
            parts.append(tool_call_response_part(field(block, "tool_use_id"), result))
        elif kind == "thinking":
            parts.append(reasoning_part(field(block, "thinking", "")))
        elif kind == "redacted_thinking":
            parts.append(reasoning_part(""))
        elif kind in ("image", "document"):
            parts.append(_source_part("image" if kind == "image" else "document", block))
        else:
            parts.append({"type": str(kind), "content": block})
    return parts


def _source_part(modality: str, block: Any) -> dict[str, Any]:
    source = field(block, "source")
    kind = field(source, "type")
    if kind == "base64":
        return {
            "type": "blob",
            "modality": modality,
            "mime_type": field(source, "media_type"),
            "content": field(source, "data", ""),
        }
    if kind == "url":
        return {"type": "uri", "modality": modality, "uri": field(source, "url")}
    if kind == "file":
        return {"type": "file", "modality": modality, "file_id": field(source, "file_id")}
    if kind == "text":
        return text_part(field(source, "data", ""))
    return {"type": "blob", "modality": modality, "content": source}


def input_messages(messages: Any) -> list[Message]:
    return [
        {"role": field(m, "role", "user"), "parts": block_parts(field(m, "content"))}
        for m in messages or ()
    ]


def usage_into(response: LLMResponse, usage: Any) -> None:
    """Anthropic usage -> the conventions' counts (input includes cache reads and writes)."""
    if usage is None:
        return
    fresh = as_int(field(usage, "input_tokens"))
    read = as_int(field(usage, "cache_read_input_tokens"))
    created = as_int(field(usage, "cache_creation_input_tokens"))
    if read is not None:
        response.cache_read_input_tokens = read
    if created is not None:
        response.cache_creation_input_tokens = created
    if fresh is not None:
        response.input_tokens = (
            fresh
            + (response.cache_read_input_tokens or 0)
            + (response.cache_creation_input_tokens or 0)
        )
    output = as_int(field(usage, "output_tokens"))
    if output is not None:
        response.output_tokens = output
    thinking = as_int(field(field(usage, "output_tokens_details"), "thinking_tokens"))
    if thinking is not None:
        response.reasoning_output_tokens = thinking


def _finish(reason: Any) -> str | None:
    return finish_reason(reason, FINISH_REASONS)


class MessagesAdapter(StainlessAdapter):
    """``messages.create`` (and the ``stream()`` helper): operation ``chat``."""

    def request(
        self, instance: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any], capture: bool
    ) -> LLMRequest:
        provider, host, port = client_identity(instance)
        model = kwargs.get("model")
        request = LLMRequest(
            operation="chat",
            provider=provider,
            model=as_text(model),
            server_address=host,
            server_port=port,
            stream=kwargs.get("stream") is True,
            attributes=request_attributes(kwargs),
        )
        if capture:
            request.input_messages = input_messages(kwargs.get("messages"))
            system = kwargs.get("system")
            if given(system) and system:
                request.system_instructions = block_parts(system)
            tools = kwargs.get("tools")
            if given(tools) and tools:
                request.tool_definitions = list(tools)
        return request

    def response(self, result: Any, capture: bool) -> LLMResponse | None:
        message = unwrap_response(result)
        if message is None:
            return None
        response = LLMResponse(
            response_id=field(message, "id"), response_model=field(message, "model")
        )
        reason = _finish(field(message, "stop_reason"))
        if reason:
            response.finish_reasons = [reason]
        usage_into(response, field(message, "usage"))
        if capture:
            response.output_messages = [
                {
                    "role": field(message, "role", "assistant"),
                    "parts": block_parts(field(message, "content")),
                    "finish_reason": reason,
                }
            ]
        return response

    def stream_accumulator(self, result: Any, capture: bool) -> MessagesStreamAccumulator | None:
        if type(result).__name__ not in ("Stream", "AsyncStream"):
            return None
        return MessagesStreamAccumulator(capture)


class MessagesStreamAccumulator:
    """Folds the raw stream events: ids and usage from message_start/delta, content if kept."""

    __slots__ = ("_blocks", "_capture", "_reason", "_response", "_role", "error_type")

    def __init__(self, capture: bool) -> None:
        self._capture = capture
        self._response = LLMResponse()
        self._reason: str | None = None
        self._role = "assistant"
        self._blocks: dict[int, dict[str, Any]] = {}
        self.error_type: str | None = None

    def add(self, event: Any) -> None:
        kind = field(event, "type")
        if kind == "content_block_delta":
            if self._capture:
                self._delta(field(event, "index", 0), field(event, "delta"))
        elif kind == "message_start":
            message = field(event, "message")
            response = self._response
            response.response_id = field(message, "id")
            response.response_model = field(message, "model")
            self._role = field(message, "role", "assistant")
            usage_into(response, field(message, "usage"))
        elif kind == "message_delta":
            self._reason = _finish(field(field(event, "delta"), "stop_reason")) or self._reason
            usage_into(self._response, field(event, "usage"))
        elif kind == "content_block_start" and self._capture:
            block = field(event, "content_block")
            self._blocks[field(event, "index", 0)] = {"block": block, "text": [], "json": []}

    def _delta(self, index: int, delta: Any) -> None:
        state = self._blocks.setdefault(index, {"block": None, "text": [], "json": []})
        kind = field(delta, "type")
        if kind == "text_delta":
            state["text"].append(field(delta, "text", ""))
        elif kind == "thinking_delta":
            state["text"].append(field(delta, "thinking", ""))
        elif kind == "input_json_delta":
            state["json"].append(field(delta, "partial_json", ""))

    def complete(self) -> bool:
        """Whether the stream reached the provider's final event (a cut stream does not)."""
        return self._reason is not None

    def response(self) -> LLMResponse:
        response = self._response
        if self._reason:
            response.finish_reasons = [self._reason]
        if self._capture:
            parts: list[dict[str, Any]] = []
            for index in sorted(self._blocks):
                parts.extend(_streamed_block(self._blocks[index]))
            response.output_messages = [
                {"role": self._role, "parts": parts, "finish_reason": self._reason}
            ]
        return response


def _streamed_block(state: dict[str, Any]) -> list[dict[str, Any]]:
    block = state["block"]
    kind = field(block, "type")
    text = "".join(state["text"])
    if kind == "text" or (kind is None and text):
        return [text_part(text)]
    if kind == "thinking":
        return [reasoning_part(text)]
    if kind in ("tool_use", "server_tool_use", "mcp_tool_use"):
        raw = "".join(state["json"])
        arguments: Any = field(block, "input")
        if raw:
            arguments = parse_arguments(raw)
        return [tool_call_part(field(block, "id"), field(block, "name"), arguments)]
    return block_parts([block]) if block is not None else []
