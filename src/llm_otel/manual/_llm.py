"""Record an LLM call made with a client llm-otel does not patch (an in-house HTTP model server,
a local transformers or vLLM engine) and get the same span and metrics as an instrumented call.

    with llm_otel.llm_call(provider="vllm", model="llama-3-8b", server_address="gpu-1",
                           server_port=8000, stream=True, input_messages=messages) as call:
        for chunk in engine.generate(...):
            call.chunk()
        call.set_response(output_tokens=n, finish_reasons=["stop"], output_text=text)
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from opentelemetry import trace
from opentelemetry.util.types import AttributeValue

from llm_otel.genai import Invocation, LLMRequest, LLMResponse, Message
from llm_otel.manual._defaults import default_telemetry

__all__ = ["LLMCall", "llm_call"]


class LLMCall:
    """The handle of one manually recorded LLM call."""

    def __init__(self, invocation: Invocation) -> None:
        self._invocation = invocation
        self.response = LLMResponse()

    @property
    def span(self) -> trace.Span:
        return self._invocation.span

    def chunk(self) -> None:
        """Call once per streamed chunk received (time to first chunk, time per chunk)."""
        self._invocation.on_chunk()

    def set_response(
        self,
        *,
        response_id: str | None = None,
        response_model: str | None = None,
        finish_reasons: list[str] | None = None,
        input_tokens: int | None = None,
        output_tokens: int | None = None,
        cache_read_input_tokens: int | None = None,
        cache_creation_input_tokens: int | None = None,
        reasoning_output_tokens: int | None = None,
        output_text: str | None = None,
        output_messages: list[Message] | None = None,
        attributes: dict[str, AttributeValue] | None = None,
    ) -> None:
        """What came back; any field may be set in several calls (the last value wins)."""
        r = self.response
        for name, value in (
            ("response_id", response_id),
            ("response_model", response_model),
            ("finish_reasons", finish_reasons),
            ("input_tokens", input_tokens),
            ("output_tokens", output_tokens),
            ("cache_read_input_tokens", cache_read_input_tokens),
            ("cache_creation_input_tokens", cache_creation_input_tokens),
            ("reasoning_output_tokens", reasoning_output_tokens),
        ):
            if value is not None:
                setattr(r, name, value)
        if output_messages is not None:
            r.output_messages = output_messages
        elif output_text is not None:
            reason = (finish_reasons or r.finish_reasons or ["stop"])[0]
            part = {"type": "text", "content": output_text}
            r.output_messages = [{"role": "assistant", "parts": [part], "finish_reason": reason}]
        if attributes:
            r.attributes.update(attributes)


@contextmanager
def llm_call(
    *,
    provider: str,
    model: str | None = None,
    operation: str = "chat",
    server_address: str | None = None,
    server_port: int | None = None,
    stream: bool = False,
    request_attributes: dict[str, AttributeValue] | None = None,
    input_messages: list[Message] | None = None,
    system_instructions: list[Message] | None = None,
) -> Iterator[LLMCall]:
    """A CLIENT span ``{operation} {model}`` plus the GenAI client metrics, ended when the block
    ends (failed, with ``error.type``, if it raises). ``provider`` is the ``gen_ai.provider.name``
    (a well-known value such as ``openai``, or your own, e.g. ``vllm``)."""
    telemetry = default_telemetry()
    capture = telemetry.content.enabled
    request = LLMRequest(
        operation=operation,
        provider=provider,
        model=model,
        server_address=server_address,
        server_port=server_port,
        stream=stream,
        attributes=dict(request_attributes or {}),
        input_messages=input_messages if capture else None,
        system_instructions=system_instructions if capture else None,
    )
    invocation = Invocation(telemetry, request)
    call = LLMCall(invocation)
    token = invocation.attach()
    try:
        yield call
    except BaseException as exc:
        invocation.fail(exc, call.response)
        raise
    else:
        invocation.finish(call.response)
    finally:
        Invocation.detach(token)
