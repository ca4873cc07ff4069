"""Cohere's v2 API (``chat``, ``chat_stream``, ``embed``) onto the GenAI core.

Cohere sends token counts as numbers that may be floats (``12.0``), usage under
``usage.tokens`` (what the model saw) and ``usage.billed_units`` (what is billed); the conventions'
counts are the former, with billed units as the fallback. Streams are generators of typed events
(``message-start``, ``content-delta``, ``tool-call-*``, ``message-end``).
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as ga

from llm_otel.genai import (
    BaseAdapter,
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
    endpoint,
    field,
    given,
    parameters,
    parse_arguments,
)
from llm_otel.instrumentation.openai.compat import tool_call_parts

__all__ = ["ChatAdapter", "EmbedAdapter", "StreamAccumulator"]

PROVIDER = ga.GenAiProviderNameValues.COHERE.value

FINISH_REASONS = {
    "COMPLETE": "stop",
    "STOP_SEQUENCE": "stop",
    "MAX_TOKENS": "length",
    "TOOL_CALL": "tool_call",
    "ERROR": "error",
    "TIMEOUT": "error",
}


_PARAMETERS: tuple[Parameter, ...] = (
    ("temperature", ga.GEN_AI_REQUEST_TEMPERATURE, as_number),
    ("p", ga.GEN_AI_REQUEST_TOP_P, as_number),
    ("k", ga.GEN_AI_REQUEST_TOP_K, as_int),
    ("max_tokens", ga.GEN_AI_REQUEST_MAX_TOKENS, as_int),
    ("seed", ga.GEN_AI_REQUEST_SEED, as_int),
    ("frequency_penalty", ga.GEN_AI_REQUEST_FREQUENCY_PENALTY, as_number),
    ("presence_penalty", ga.GEN_AI_REQUEST_PRESENCE_PENALTY, as_number),
)


def _count(value: Any) -> int | None:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return as_int(value)


def _server(instance: Any) -> tuple[str | None, int | None]:
    wrapper = getattr(instance, "_client_wrapper", None) or getattr(
        getattr(instance, "_raw_client", None), "_client_wrapper", None
    )
    try:
        return endpoint(wrapper.get_base_url())  # type: ignore[union-attr]
    except Exception:
        return None, None


def _finish(reason: Any) -> str | None:
    if not isinstance(reason, str) or not reason:
        return None
    return FINISH_REASONS.get(reason, reason)


def _usage(response: LLMResponse, usage: Any) -> None:
    if usage is None:
        return
    for source in (field(usage, "tokens"), field(usage, "billed_units")):
        if response.input_tokens is None:
            response.input_tokens = _count(field(source, "input_tokens"))
        if response.output_tokens is None:
            response.output_tokens = _count(field(source, "output_tokens"))
    cached = _count(field(usage, "cached_tokens"))
    if cached is not None:
        response.cache_read_input_tokens = cached


def _parts(content: Any) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [text_part(content)]
    parts: list[dict[str, Any]] = []
    for item in content or ():
        kind = field(item, "type")
        if kind == "text":
            parts.append(text_part(field(item, "text", "")))
        elif kind == "thinking":
            parts.append(reasoning_part(field(item, "thinking", "")))
        elif kind == "image_url":
            url = field(field(item, "image_url"), "url")
            parts.append({"type": "uri", "modality": "image", "uri": url})
        else:
            parts.append({"type": str(kind), "content": item})
    return parts


def _input_messages(messages: Any) -> list[Message]:
    out: list[Message] = []
    for message in messages or ():
        role = field(message, "role", "user")
        if role == "tool":
            parts: list[dict[str, Any]] = [
                tool_call_response_part(
                    field(message, "tool_call_id"),
                    [p.get("content") for p in _parts(field(message, "content"))],
                )
            ]
        else:
            calls = tool_call_parts(field(message, "tool_calls"))
            parts = _parts(field(message, "content")) + calls
        out.append({"role": role, "parts": parts})
    return out


class ChatAdapter(BaseAdapter):
    """``v2.chat`` / ``v2.chat_stream``: operation ``chat``."""

    def __init__(self, streaming: bool = False) -> None:
        self._streaming = streaming

    def request(
        self, instance: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any], capture: bool
    ) -> LLMRequest:
        host, port = _server(instance)
        attrs = parameters(kwargs, _PARAMETERS, stop="stop_sequences")
        if field(kwargs.get("response_format"), "type") == "json_object":
            attrs[ga.GEN_AI_OUTPUT_TYPE] = "json"
        model = kwargs.get("model")
        request = LLMRequest(
            operation="chat",
            provider=PROVIDER,
            model=as_text(model),
            server_address=host,
            server_port=port,
            stream=self._streaming,
            attributes=attrs,
        )
        if capture:
            request.input_messages = _input_messages(kwargs.get("messages"))
            tools = kwargs.get("tools")
            if given(tools) and tools:
                request.tool_definitions = list(tools)
        return request

    def response(self, result: Any, capture: bool) -> LLMResponse | None:
        response = LLMResponse(response_id=field(result, "id"))
        reason = _finish(field(result, "finish_reason"))
        if reason:
            response.finish_reasons = [reason]
        _usage(response, field(result, "usage"))
        if capture:
            message = field(result, "message")
            response.output_messages = [
                {
                    "role": field(message, "role", "assistant"),
                    "parts": _parts(field(message, "content"))
                    + tool_call_parts(field(message, "tool_calls")),
                    "finish_reason": reason,
                }
            ]
        return response

    def stream_accumulator(self, result: Any, capture: bool) -> StreamAccumulator | None:
        if not (inspect.isgenerator(result) or inspect.isasyncgen(result)):
            return None
        return StreamAccumulator(capture)


class EmbedAdapter(BaseAdapter):
    """``v2.embed``: operation ``embeddings``; usage is the billed input tokens."""

    def request(
        self, instance: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any], capture: bool
    ) -> LLMRequest:
        host, port = _server(instance)
        model = kwargs.get("model")
        request = LLMRequest(
            operation="embeddings",
            provider=PROVIDER,
            model=as_text(model),
            server_address=host,
            server_port=port,
        )
        dimensions = as_int(kwargs.get("output_dimension"))
        if dimensions is not None:
            request.attributes[ga.GEN_AI_EMBEDDINGS_DIMENSION_COUNT] = dimensions
        types = kwargs.get("embedding_types")
        if isinstance(types, (list, tuple)) and types:
            request.attributes[ga.GEN_AI_REQUEST_ENCODING_FORMATS] = [str(t) for t in types]
        return request

    def response(self, result: Any, capture: bool) -> LLMResponse | None:
        response = LLMResponse(response_id=field(result, "id"))
        _usage(response, field(result, "meta"))
        return response


class StreamAccumulator:
    """Folds v2 stream events into one response."""

    __slots__ = ("_calls", "_capture", "_reason", "_response", "_role", "_text", "error_type")

    def __init__(self, capture: bool) -> None:
        self._capture = capture
        self._response = LLMResponse()
        self._reason: str | None = None
        self._role = "assistant"
        self._text: list[str] = []
        self._calls: list[dict[str, Any]] = []
        self.error_type: str | None = None

    def add(self, event: Any) -> None:
        kind = field(event, "type")
        if kind == "content-delta":
            if self._capture:
                text = field(field(field(field(event, "delta"), "message"), "content"), "text")
                if isinstance(text, str):
                    self._text.append(text)
        elif kind == "message-start":
            self._response.response_id = field(event, "id")
        elif kind == "message-end":
            delta = field(event, "delta")
            self._reason = _finish(field(delta, "finish_reason"))
            _usage(self._response, field(delta, "usage"))
            if field(delta, "error"):
                self.error_type = "_OTHER"
        elif self._capture and kind in ("tool-call-start", "tool-call-delta"):
            call = field(field(field(event, "delta"), "message"), "tool_calls")
            function = field(call, "function")
            if kind == "tool-call-start":
                self._calls.append(
                    {"id": field(call, "id"), "name": field(function, "name"), "args": []}
                )
            if self._calls and isinstance(field(function, "arguments"), str):
                self._calls[-1]["args"].append(field(function, "arguments"))

    def complete(self) -> bool:
        """Whether the stream reached the provider's final event (a cut stream does not)."""
        return self._reason is not None

    def response(self) -> LLMResponse:
        response = self._response
        if self._reason:
            response.finish_reasons = [self._reason]
        if self._capture:
            parts: list[dict[str, Any]] = []
            if self._text:
                parts.append(text_part("".join(self._text)))
            for call in self._calls:
                parts.append(
                    tool_call_part(call["id"], call["name"], parse_arguments("".join(call["args"])))
                )
            response.output_messages = [
                {"role": self._role, "parts": parts, "finish_reason": self._reason}
            ]
        return response
