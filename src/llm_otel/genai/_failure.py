"""How a failure is written on a span without recording text that may be someone's content.

A provider's error often quotes the request (a 400 that echoes the prompt, an error event
mid-stream that repeats the output), so the exception's message is content. With content
capture off, the span gets the error's class and ``error.type`` in its status and an
``exception`` event with the class and the stack's frames, never the message; with capture on,
the message too, after the redactor and the length cut, like any other captured text.
"""

from __future__ import annotations

import traceback
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.semconv.attributes import error_attributes
from opentelemetry.semconv.attributes import exception_attributes as ex
from opentelemetry.trace import Status, StatusCode

from llm_otel._guard import exception_type, report_internal_error
from llm_otel.genai._content import ContentPolicy

__all__ = ["end_span", "fail_span", "record_failure", "start_span"]


def fail_span(span: trace.Span, exc: BaseException, content: ContentPolicy) -> str:
    """Mark ``span`` failed by a raised exception: ``error.type`` is its class name, then
    :func:`record_failure`; returns the ``error.type``."""
    error_type = type(exc).__qualname__
    span.set_attribute(error_attributes.ERROR_TYPE, error_type)
    record_failure(span, exc, error_type, content)
    return error_type


def record_failure(
    span: trace.Span,
    exc: BaseException | None,
    error_type: str,
    content: ContentPolicy,
) -> None:
    """Mark ``span`` failed: status ERROR and, for a raised exception, the ``exception`` event.

    With content capture on, the message passes the policy's redactor and length cut; with it
    off, no message text is recorded at all."""
    if exc is None:
        span.set_status(Status(StatusCode.ERROR, error_type))
        return
    name = exception_type(exc)
    frames = "".join(traceback.format_tb(exc.__traceback__))
    attributes: dict[str, Any] = {ex.EXCEPTION_TYPE: name}
    if content.enabled:
        message = content.clean_text(str(exc))
        span.set_status(Status(StatusCode.ERROR, message or name))
        attributes[ex.EXCEPTION_MESSAGE] = message
        last = f"{name}: {message}" if message else name
    else:
        short = type(exc).__qualname__
        span.set_status(
            Status(
                StatusCode.ERROR, name if error_type in (name, short) else f"{name} ({error_type})"
            )
        )
        last = name
    attributes[ex.EXCEPTION_STACKTRACE] = f"Traceback (most recent call last):\n{frames}{last}\n"
    span.add_event("exception", attributes)


def start_span(
    tracer: trace.Tracer,
    name: str,
    kind: trace.SpanKind,
    attributes: dict[str, Any],
    context: Context | None = None,
    start_time: int | None = None,
) -> trace.Span:
    """``tracer.start_span`` (in ``context``, default the current one), safe from a span
    processor whose ``on_start`` raises.

    The SDK has then already started the span and shown it to the processors registered before
    the failing one, but hands it back to nobody, so nobody would end it: it is found in the
    exception's frames and ended, and the call goes on with a non-recording span (its metrics
    are still recorded)."""
    try:
        return tracer.start_span(
            name, context, kind=kind, attributes=attributes, start_time=start_time
        )
    except Exception as exc:
        report_internal_error("span start (a span processor's on_start)", exc)
        _end_orphan(exc)
        return trace.NonRecordingSpan(trace.get_current_span().get_span_context())


def _end_orphan(exc: BaseException) -> None:
    tb = exc.__traceback__
    while tb is not None:
        local = tb.tb_frame.f_locals
        for key in ("span", "self"):
            candidate = local.get(key)
            if isinstance(candidate, trace.Span) and candidate.is_recording():
                end_span(candidate)
                return
        tb = tb.tb_next


def end_span(span: trace.Span, end_time: int | None = None) -> None:
    """``span.end()``; a span processor whose ``on_end`` raises is reported, not raised."""
    try:
        span.end(end_time=end_time)
    except Exception as exc:
        report_internal_error("span end (a span processor's on_end)", exc)
