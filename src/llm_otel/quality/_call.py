"""What an evaluator sees of one finished LLM call."""

from __future__ import annotations

from typing import Any

from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as ga
from opentelemetry.trace import SpanContext

from llm_otel.genai import CompletedCall, Message

__all__ = ["EvaluatedCall"]


def _text(messages: list[Message] | None) -> str:
    """The text parts (and tool results given as text) of messages in the parts schema."""
    texts: list[str] = []
    for message in messages or ():
        for part in message.get("parts") or ():
            if not isinstance(part, dict):
                continue
            kind = part.get("type")
            value = part.get("content") if kind == "text" else None
            if kind == "tool_call_response":
                value = part.get("response")
            if isinstance(value, str) and value:
                texts.append(value)
    return "\n".join(texts)


class EvaluatedCall:
    """One finished LLM call: identity, outcome and content (in memory only; what is recorded
    follows the content policy). Text is in ``input_text`` and ``output_text``; the messages
    themselves are in the conventions' parts schema (``{"role", "parts": [...]}``)."""

    __slots__ = ("_call", "_input_text", "_output_text")

    def __init__(self, call: CompletedCall) -> None:
        self._call = call
        self._input_text: str | None = None
        self._output_text: str | None = None

    @property
    def operation(self) -> str:
        return self._call.request.operation

    @property
    def provider(self) -> str:
        return self._call.request.provider

    @property
    def request_model(self) -> str | None:
        return self._call.request.model

    @property
    def response_model(self) -> str | None:
        response = self._call.response
        return response.response_model if response is not None else None

    @property
    def response_id(self) -> str | None:
        response = self._call.response
        value = response.response_id if response is not None else None
        return value if isinstance(value, str) else None

    @property
    def finish_reasons(self) -> list[str]:
        response = self._call.response
        return list(response.finish_reasons or ()) if response is not None else []

    @property
    def error_type(self) -> str | None:
        """The call's ``error.type`` when it failed."""
        return self._call.error_type

    @property
    def input_tokens(self) -> int | None:
        response = self._call.response
        return response.input_tokens if response is not None else None

    @property
    def output_tokens(self) -> int | None:
        response = self._call.response
        return response.output_tokens if response is not None else None

    @property
    def output_type(self) -> str | None:
        """``gen_ai.output.type`` the request asked for (``json``, ``text``, ...), if said."""
        value = self._call.request.attributes.get(ga.GEN_AI_OUTPUT_TYPE)
        return value if isinstance(value, str) else None

    @property
    def output_schema(self) -> Any:
        """The JSON schema the output was asked to follow, when the request gave one."""
        return self._call.request.output_schema

    @property
    def input_messages(self) -> list[Message]:
        return list(self._call.request.input_messages or ())

    @property
    def system_instructions(self) -> list[Message]:
        return list(self._call.request.system_instructions or ())

    @property
    def output_messages(self) -> list[Message]:
        response = self._call.response
        return list(response.output_messages or ()) if response is not None else []

    @property
    def input_text(self) -> str:
        """The text of the input messages (not the system instructions), one line per part."""
        if self._input_text is None:
            self._input_text = _text(self._call.request.input_messages)
        return self._input_text

    @property
    def output_text(self) -> str:
        if self._output_text is None:
            response = self._call.response
            self._output_text = _text(response.output_messages if response else None)
        return self._output_text

    @property
    def span_context(self) -> SpanContext:
        """The call's span: where its evaluation results are attached."""
        return self._call.span_context

    def __repr__(self) -> str:  # never the content
        return f"<EvaluatedCall {self.operation} {self.request_model} error={self.error_type}>"
