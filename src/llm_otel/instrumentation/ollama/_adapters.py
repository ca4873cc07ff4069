"""Ollama's client (``chat``, ``generate``, ``embed``, ``embeddings``) onto the GenAI core.

The conventions have no ``gen_ai.provider.name`` value for Ollama; llm-otel uses ``ollama``
(docs/providers.md). Streams are plain generators of partial responses; the last one carries
``done_reason`` and the token counts (``prompt_eval_count`` in, ``eval_count`` out).
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as ga

from llm_otel.genai import BaseAdapter, LLMRequest, LLMResponse, Message, reasoning_part, text_part
from llm_otel.instrumentation._fields import (
    Parameter,
    as_int,
    as_number,
    field,
    finish_reason,
    given,
    items,
    parameters,
)

__all__ = ["PROVIDER", "ChatAdapter", "EmbedAdapter", "GenerateAdapter", "StreamAccumulator"]

PROVIDER = "ollama"

FINISH_REASONS = {"stop": "stop", "length": "length"}

_OPTIONS: tuple[Parameter, ...] = (
    ("temperature", ga.GEN_AI_REQUEST_TEMPERATURE, as_number),
    ("top_p", ga.GEN_AI_REQUEST_TOP_P, as_number),
    ("top_k", ga.GEN_AI_REQUEST_TOP_K, as_int),
    ("num_predict", ga.GEN_AI_REQUEST_MAX_TOKENS, as_int),
    ("seed", ga.GEN_AI_REQUEST_SEED, as_int),
    ("frequency_penalty", ga.GEN_AI_REQUEST_FREQUENCY_PENALTY, as_number),
    ("presence_penalty", ga.GEN_AI_REQUEST_PRESENCE_PENALTY, as_number),
)


def _arg(args: tuple[Any, ...], kwargs: Mapping[str, Any], index: int, name: str) -> Any:
    """A parameter given by keyword or position (the client takes ``model`` etc. positionally)."""
    if name in kwargs:
        return kwargs[name]
    return args[index] if len(args) > index else None


def _server(instance: Any) -> tuple[str | None, int | None]:
    url = getattr(getattr(instance, "_client", None), "base_url", None)
    host = getattr(url, "host", None) or None
    port = getattr(url, "port", None)
    if port is None and host is not None:
        port = 443 if getattr(url, "scheme", "") == "https" else 80
    return host, port


def _request(operation: str, instance: Any, model: Any, kwargs: Mapping[str, Any]) -> LLMRequest:
    host, port = _server(instance)
    attrs = parameters(kwargs.get("options"), _OPTIONS, stop="stop")
    output_format = kwargs.get("format")
    if output_format == "json" or isinstance(output_format, Mapping):
        attrs[ga.GEN_AI_OUTPUT_TYPE] = "json"
    return LLMRequest(
        operation=operation,
        provider=PROVIDER,
        model=model if isinstance(model, str) and model else None,
        server_address=host,
        server_port=port,
        stream=kwargs.get("stream") is True,
        attributes=attrs,
    )


def _usage(response: LLMResponse, part: Any) -> None:
    prompt = as_int(field(part, "prompt_eval_count"))
    if prompt is not None:
        response.input_tokens = prompt
    output = as_int(field(part, "eval_count"))
    if output is not None:
        response.output_tokens = output


def _finish(part: Any) -> str | None:
    return finish_reason(field(part, "done_reason"), FINISH_REASONS)


def _message_parts(message: Any) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = []
    thinking = field(message, "thinking")
    if isinstance(thinking, str) and thinking:
        parts.append(reasoning_part(thinking))
    content = field(message, "content")
    if isinstance(content, str) and content:
        parts.append(text_part(content))
    for image in items(field(message, "images")):
        parts.append({"type": "blob", "modality": "image", "content": str(image)})
    for call in items(field(message, "tool_calls")):
        function = field(call, "function")
        parts.append(
            {
                "type": "tool_call",
                "name": field(function, "name"),
                "arguments": dict(field(function, "arguments") or {}),
            }
        )
    return parts


def _is_stream(result: Any) -> bool:
    return inspect.isgenerator(result) or inspect.isasyncgen(result)


class ChatAdapter(BaseAdapter):
    """``Client.chat``: operation ``chat``."""

    def request(
        self, instance: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any], capture: bool
    ) -> LLMRequest:
        request = _request("chat", instance, _arg(args, kwargs, 0, "model"), kwargs)
        if capture:
            messages = _arg(args, kwargs, 1, "messages") or ()
            inputs: list[Message] = []
            for message in messages:
                role = field(message, "role", "user")
                parts = _message_parts(message)
                if role == "tool":
                    text = " ".join(p["content"] for p in parts if p["type"] == "text")
                    parts = [{"type": "tool_call_response", "response": text}]
                inputs.append({"role": role, "parts": parts})
            request.input_messages = inputs
            tools = kwargs.get("tools")
            if given(tools) and tools:
                request.tool_definitions = [t for t in tools if not callable(t)] or None
        return request

    def response(self, result: Any, capture: bool) -> LLMResponse | None:
        response = LLMResponse(response_model=field(result, "model"))
        _usage(response, result)
        reason = _finish(result)
        if reason:
            response.finish_reasons = [reason]
        if capture:
            message = field(result, "message")
            response.output_messages = [
                {
                    "role": field(message, "role", "assistant"),
                    "parts": _message_parts(message),
                    "finish_reason": _tool_or(reason, message),
                }
            ]
        return response

    def stream_accumulator(self, result: Any, capture: bool) -> StreamAccumulator | None:
        return StreamAccumulator(capture, "message") if _is_stream(result) else None


def _tool_or(reason: str | None, message: Any) -> str | None:
    # Ollama says "stop" when it answers with tool calls; the conventions say tool_call.
    if field(message, "tool_calls"):
        return "tool_call"
    return reason


class GenerateAdapter(BaseAdapter):
    """``Client.generate``: operation ``text_completion``."""

    def request(
        self, instance: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any], capture: bool
    ) -> LLMRequest:
        request = _request("text_completion", instance, _arg(args, kwargs, 0, "model"), kwargs)
        if capture:
            prompt = _arg(args, kwargs, 1, "prompt")
            if isinstance(prompt, str):
                request.input_messages = [{"role": "user", "parts": [text_part(prompt)]}]
            system = kwargs.get("system")
            if isinstance(system, str) and system:
                request.system_instructions = [text_part(system)]
        return request

    def response(self, result: Any, capture: bool) -> LLMResponse | None:
        response = LLMResponse(response_model=field(result, "model"))
        _usage(response, result)
        reason = _finish(result)
        if reason:
            response.finish_reasons = [reason]
        if capture:
            parts = _message_parts(
                {"content": field(result, "response"), "thinking": field(result, "thinking")}
            )
            response.output_messages = [
                {"role": "assistant", "parts": parts, "finish_reason": reason}
            ]
        return response

    def stream_accumulator(self, result: Any, capture: bool) -> StreamAccumulator | None:
        return StreamAccumulator(capture, "response") if _is_stream(result) else None


class EmbedAdapter(BaseAdapter):
    """``Client.embed`` and the older ``Client.embeddings``: operation ``embeddings``."""

    def request(
        self, instance: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any], capture: bool
    ) -> LLMRequest:
        request = _request("embeddings", instance, _arg(args, kwargs, 0, "model"), kwargs)
        dimensions = as_int(kwargs.get("dimensions"))
        if dimensions is not None:
            request.attributes[ga.GEN_AI_EMBEDDINGS_DIMENSION_COUNT] = dimensions
        return request

    def response(self, result: Any, capture: bool) -> LLMResponse | None:
        response = LLMResponse(response_model=field(result, "model"))
        _usage(response, result)
        return response


class StreamAccumulator:
    """Folds partial responses: text deltas, tool calls, and the counts of the final part."""

    __slots__ = (
        "_capture",
        "_done",
        "_field",
        "_parts",
        "_reason",
        "_response",
        "_thinking",
        "_tool_calls",
        "error_type",
    )

    def __init__(self, capture: bool, text_field: str) -> None:
        self._capture = capture
        self._field = text_field
        self._response = LLMResponse()
        self._reason: str | None = None
        self._done = False
        self._parts: list[str] = []
        self._thinking: list[str] = []
        self._tool_calls: list[Any] = []
        self.error_type: str | None = None

    def add(self, part: Any) -> None:
        response = self._response
        if response.response_model is None:
            response.response_model = field(part, "model")
        if field(part, "done"):
            self._done = True
            _usage(response, part)
            self._reason = _finish(part) or self._reason
        if not self._capture:
            return
        source = field(part, "message") if self._field == "message" else part
        text = field(source, "content" if self._field == "message" else "response")
        if isinstance(text, str) and text:
            self._parts.append(text)
        thinking = field(source, "thinking")
        if isinstance(thinking, str) and thinking:
            self._thinking.append(thinking)
        if self._field == "message":
            self._tool_calls.extend(items(field(source, "tool_calls")))

    def complete(self) -> bool:
        """Whether the stream reached its final ``done`` part (a cut stream does not)."""
        return self._done

    def response(self) -> LLMResponse:
        response = self._response
        if self._reason:
            response.finish_reasons = [self._reason]
        if self._capture:
            message = {
                "content": "".join(self._parts),
                "thinking": "".join(self._thinking),
                "tool_calls": self._tool_calls,
            }
            response.output_messages = [
                {
                    "role": "assistant",
                    "parts": _message_parts(message),
                    "finish_reason": _tool_or(self._reason, message),
                }
            ]
        return response
