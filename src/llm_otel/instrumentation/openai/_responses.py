"""The Responses API (``client.responses.create/parse``, streamed events) onto the GenAI core."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as ga
from opentelemetry.semconv._incubating.attributes import openai_attributes as oa
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
from llm_otel.instrumentation._fields import as_text, items
from llm_otel.instrumentation._raw import StainlessAdapter, unwrap_response
from llm_otel.instrumentation.openai._common import (
    as_int,
    as_number,
    client_identity,
    field,
    given,
    output_schema,
    parse_arguments,
    text_parts,
)

__all__ = ["ResponsesAdapter", "ResponsesStreamAccumulator"]

_INCOMPLETE_REASONS = {"max_output_tokens": "length", "content_filter": "content_filter"}
_FINAL_EVENTS = ("response.completed", "response.incomplete", "response.failed")


def _request_attributes(kwargs: Mapping[str, Any]) -> dict[str, AttributeValue]:
    attrs: dict[str, AttributeValue] = {}
    for name, key in (
        ("temperature", ga.GEN_AI_REQUEST_TEMPERATURE),
        ("top_p", ga.GEN_AI_REQUEST_TOP_P),
    ):
        value = as_number(kwargs.get(name))
        if value is not None:
            attrs[key] = value
    max_tokens = as_int(kwargs.get("max_output_tokens"))
    if max_tokens is not None:
        attrs[ga.GEN_AI_REQUEST_MAX_TOKENS] = max_tokens
    text_format = field(field(kwargs.get("text"), "format"), "type")
    if text_format in ("json_schema", "json_object"):
        attrs[ga.GEN_AI_OUTPUT_TYPE] = "json"
    elif text_format == "text":
        attrs[ga.GEN_AI_OUTPUT_TYPE] = "text"
    elif given(kwargs.get("text_format")):  # responses.parse(text_format=Model)
        attrs[ga.GEN_AI_OUTPUT_TYPE] = "json"
    conversation = kwargs.get("conversation")
    conversation_id = conversation if isinstance(conversation, str) else field(conversation, "id")
    if isinstance(conversation_id, str):
        attrs[ga.GEN_AI_CONVERSATION_ID] = conversation_id
    tier = kwargs.get("service_tier")
    if isinstance(tier, str):
        attrs[oa.OPENAI_REQUEST_SERVICE_TIER] = tier
    return attrs


def _input_messages(items: Any) -> list[Message]:
    if isinstance(items, str):
        return [{"role": "user", "parts": [text_part(items)]}]
    out: list[Message] = []
    for item in items or ():
        kind = field(item, "type", "message")
        if kind == "function_call":
            part = tool_call_part(
                field(item, "call_id"),
                field(item, "name"),
                parse_arguments(field(item, "arguments")),
            )
            out.append({"role": "assistant", "parts": [part]})
        elif kind == "function_call_output":
            part = tool_call_response_part(field(item, "call_id"), field(item, "output"))
            out.append({"role": "tool", "parts": [part]})
        elif kind == "message":
            role = field(item, "role", "user")
            out.append(
                {
                    "role": "system" if role == "developer" else role,
                    "parts": text_parts(field(item, "content")),
                }
            )
        else:
            out.append({"role": "user", "parts": [{"type": str(kind), "content": item}]})
    return out


def _output_messages(outputs: Any, finish_reason: str) -> list[Message]:
    parts: list[dict[str, Any]] = []
    for item in items(outputs):
        kind = field(item, "type")
        if kind == "message":
            parts.extend(text_parts(field(item, "content")))
        elif kind == "function_call":
            parts.append(
                tool_call_part(
                    field(item, "call_id"),
                    field(item, "name"),
                    parse_arguments(field(item, "arguments")),
                )
            )
        elif kind == "reasoning":
            for summary in items(field(item, "summary")):
                parts.append(reasoning_part(field(summary, "text", "")))
    return [{"role": "assistant", "parts": parts, "finish_reason": finish_reason}]


def _finish_reason(response: Any) -> str:
    status = field(response, "status")
    if status == "failed":
        return "error"
    if status == "incomplete":
        reason = as_text(field(field(response, "incomplete_details"), "reason"))
        return _INCOMPLETE_REASONS.get(reason, reason) if reason else "length"
    outputs = items(field(response, "output"))
    if any(field(item, "type") == "function_call" for item in outputs):
        return "tool_call"
    return "stop"


def convert_response(source: Any, capture: bool) -> LLMResponse:
    """A Responses API ``Response`` object as an :class:`LLMResponse`."""
    reason = _finish_reason(source)
    response = LLMResponse(
        response_id=field(source, "id"),
        response_model=field(source, "model"),
        finish_reasons=[reason],
    )
    usage = field(source, "usage")
    if usage is not None:
        response.input_tokens = as_int(field(usage, "input_tokens"))
        response.output_tokens = as_int(field(usage, "output_tokens"))
        response.cache_read_input_tokens = as_int(
            field(field(usage, "input_tokens_details"), "cached_tokens")
        )
        response.reasoning_output_tokens = as_int(
            field(field(usage, "output_tokens_details"), "reasoning_tokens")
        )
    tier = field(source, "service_tier")
    if isinstance(tier, str):
        response.attributes[oa.OPENAI_RESPONSE_SERVICE_TIER] = tier
    if capture:
        response.output_messages = _output_messages(field(source, "output"), reason)
    return response


def failure_type(source: Any) -> str | None:
    """``error.type`` for a response whose status is ``failed``."""
    if field(source, "status") != "failed":
        return None
    return str(field(field(source, "error"), "code") or "response.failed")


class ResponsesAdapter(StainlessAdapter):
    """``responses.create`` / ``parse``: operation ``chat``."""

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
            attributes=_request_attributes(kwargs),
        )
        if capture:
            request.input_messages = _input_messages(kwargs.get("input"))
            text_format = field(kwargs.get("text"), "format")
            if field(text_format, "type") == "json_schema":
                schema = field(text_format, "schema")
                request.output_schema = schema if isinstance(schema, dict) else None
            elif given(kwargs.get("text_format")):  # responses.parse(text_format=Model)
                request.output_schema = output_schema(kwargs.get("text_format"))
            instructions = kwargs.get("instructions")
            if isinstance(instructions, str) and instructions:
                request.system_instructions = [text_part(instructions)]
            tools = kwargs.get("tools")
            if given(tools) and tools:
                request.tool_definitions = list(tools)
        return request

    def response(self, result: Any, capture: bool) -> LLMResponse | None:
        source = unwrap_response(result)
        return None if source is None else convert_response(source, capture)

    def stream_accumulator(self, result: Any, capture: bool) -> ResponsesStreamAccumulator | None:
        if type(result).__name__ not in ("Stream", "AsyncStream"):
            return None
        return ResponsesStreamAccumulator(capture)


class ResponsesStreamAccumulator:
    """Keeps the latest ``Response`` snapshot the event stream carried."""

    __slots__ = ("_capture", "_last", "error_type")

    def __init__(self, capture: bool) -> None:
        self._capture = capture
        self._last: Any = None
        self.error_type: str | None = None

    def add(self, event: Any) -> None:
        kind = field(event, "type")
        if kind == "error":
            self.error_type = str(field(event, "code") or "error")
            return
        snapshot = field(event, "response")
        if snapshot is not None and (self._last is None or kind in _FINAL_EVENTS):
            self._last = snapshot
            if kind == "response.failed":
                self.error_type = failure_type(snapshot)

    def complete(self) -> bool:
        """Whether the stream carried the response's final state."""
        return self._last is not None and field(self._last, "status") not in (
            "in_progress",
            "queued",
        )

    def response(self) -> LLMResponse:
        if self._last is None:
            return LLMResponse()
        response = convert_response(self._last, self._capture)
        if field(self._last, "status") in ("in_progress", "queued"):
            response.finish_reasons = None  # the stream ended before the model did
            response.output_messages = None
        return response
