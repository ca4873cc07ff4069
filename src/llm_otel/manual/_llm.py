"""Record an LLM call made with a client llm-otel does not patch (an in-house HTTP model server,
a local transformers or vLLM engine) and get the same span and metrics as an instrumented call.

    with llm_otel.llm_call(provider="vllm", model="llama-3-8b", server_address="gpu-1",
                           server_port=8000, stream=True, input_messages=messages) as call:
        for chunk in engine.generate(...):
            call.chunk()
        call.set_response(output_tokens=n, finish_reasons=["stop"], output_text=text)
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from opentelemetry import trace
from opentelemetry.util.types import AttributeValue

from llm_otel.genai import Invocation, LLMRequest, LLMResponse, Message, call_observer, text_part
from llm_otel.genai._frameworks import claim_framework_call
from llm_otel.manual._defaults import default_telemetry
from llm_otel.manual._values import (
    as_count,
    as_finish_reasons,
    as_identifier,
    as_messages,
    as_parts,
)

__all__ = ["LLMCall", "llm_call"]

_logger = logging.getLogger("llm_otel")


class LLMCall:
    """The handle of one manually recorded LLM call."""

    def __init__(self, invocation: Invocation, capture_content: bool = False) -> None:
        self._invocation = invocation
        self._capture = capture_content
        self._late: set[str] = set()
        self.response = LLMResponse()

    @property
    def span(self) -> trace.Span:
        return self._invocation.span

    def chunk(self) -> None:
        """Call once per streamed chunk received (time to first chunk, time per chunk)."""
        if self._ended("chunk"):
            return
        self._invocation.on_chunk()

    def set_response(
        self,
        *,
        response_id: str | None = None,
        response_model: str | None = None,
        finish_reasons: list[str] | str | None = None,
        input_tokens: int | None = None,
        output_tokens: int | None = None,
        cache_read_input_tokens: int | None = None,
        cache_creation_input_tokens: int | None = None,
        reasoning_output_tokens: int | None = None,
        output_text: str | None = None,
        output_messages: list[Message] | None = None,
        attributes: dict[str, AttributeValue] | None = None,
    ) -> None:
        """What came back; any field may be set in several calls (the last value wins).

        Token counts are non-negative integers (``"12"`` is taken as 12); ``finish_reasons`` is
        a list of strings or one string; ``output_messages`` take the shapes ``input_messages``
        does. A value that is none of these is left out with a warning naming it."""
        if self._ended("set_response"):
            return
        r = self.response
        if response_id is not None:
            r.response_id = as_identifier(response_id)
        if response_model is not None:
            r.response_model = as_identifier(response_model)
        if finish_reasons is not None:
            r.finish_reasons = as_finish_reasons(finish_reasons) or r.finish_reasons
        for name, value in (
            ("input_tokens", input_tokens),
            ("output_tokens", output_tokens),
            ("cache_read_input_tokens", cache_read_input_tokens),
            ("cache_creation_input_tokens", cache_creation_input_tokens),
            ("reasoning_output_tokens", reasoning_output_tokens),
        ):
            if value is not None:
                count = as_count(name, value)
                if count is not None:
                    setattr(r, name, count)
        reason = (r.finish_reasons or ["stop"])[0]
        if not self._capture:
            pass  # content is neither converted nor kept
        elif output_messages is not None:
            messages = as_messages("output_messages", output_messages) or []
            r.output_messages = [{**m, "finish_reason": m.get("finish_reason", reason)}
                                 for m in messages]  # fmt: skip
        elif output_text is not None:
            part = text_part(output_text)
            r.output_messages = [{"role": "assistant", "parts": [part], "finish_reason": reason}]
        if attributes:
            r.attributes.update(attributes)

    def _ended(self, method: str) -> bool:
        """True, with one warning per method and handle, once the ``with`` block has ended."""
        if not self._invocation.done:
            return False
        if method not in self._late:
            self._late.add(method)
            _logger.warning(
                "%s() after the llm_call() block ended is ignored: the call is already "
                "recorded; call it inside the block",
                method,
            )
        return True


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
    input_messages: list[Message] | str | None = None,
    system_instructions: list[Message] | str | None = None,
) -> Iterator[LLMCall]:
    """A CLIENT span ``{operation} {model}`` plus the GenAI client metrics, ended when the block
    ends (failed, with ``error.type``, if it raises). ``provider`` is the ``gen_ai.provider.name``
    (a well-known value such as ``openai``, or your own, e.g. ``vllm``).

    ``input_messages`` is a prompt string, or messages in the conventions' parts schema
    (``{"role", "parts"}``) or the chat-completions shape (``{"role", "content"}`` with text or
    content parts, ``tool_calls``, ``tool_call_id``); ``system_instructions`` a string or a
    list of parts. They are recorded in the parts schema, only when content capture is on."""
    telemetry = default_telemetry()
    # A framework's model that records itself with llm_call(): the call the framework announced
    # is ours to record; if another vendor's instrumentation of the framework already gave it a
    # span, ours would be a second one (metrics only, as for a client library's call).
    framework = claim_framework_call()
    observer = call_observer()  # sampled for online evaluation: content needed in memory
    capture = telemetry.content.enabled or observer is not None
    request = LLMRequest(
        operation=operation,
        provider=provider,
        model=model,
        server_address=server_address,
        server_port=server_port,
        stream=stream,
        attributes=dict(request_attributes or {}),
        input_messages=as_messages("input_messages", input_messages) if capture else None,
        system_instructions=as_parts("system_instructions", system_instructions)
        if capture
        else None,
    )
    own_span = framework is None or not framework.traced_elsewhere
    invocation = Invocation(telemetry, request, observer=observer, own_span=own_span)
    call = LLMCall(invocation, capture)
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
