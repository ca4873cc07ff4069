"""OpenTelemetry instrumentation for MCP, the Model Context Protocol (the ``mcp`` package).

The ``mcp`` SDK traces itself: a CLIENT span per request it sends (``MCP send {method}
{target}``), a SERVER span per request it handles, and the W3C trace context carried in each
request's ``params._meta``, so a server's spans join the client's trace across stdio or HTTP.
llm-otel takes over those spans, where the SDK makes them (``mcp.shared._otel.otel_span``), so
each request keeps exactly one span on each side, now:

- named and attributed per the MCP conventions: ``{mcp.method.name} {target}`` (``tools/call
  get_weather``), ``mcp.method.name``, ``mcp.protocol.version``, ``jsonrpc.request.id``, and
  for a tool call ``gen_ai.operation.name = execute_tool`` and ``gen_ai.tool.name``;
- recorded through llm-otel's providers, with ``mcp.client.operation.duration`` and
  ``mcp.server.operation.duration`` (seconds, the conventions' buckets) by method, tool and
  ``error.type``;
- under llm-otel's content policy: error messages (a tool's exception text, a JSON-RPC error's
  message, which can carry the tool's input) are kept only with content capture on.

    from llm_otel.instrumentation.mcp import MCPInstrumentor
    MCPInstrumentor().instrument()
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as ga
from opentelemetry.semconv._incubating.attributes import mcp_attributes as mcp
from opentelemetry.semconv.attributes import error_attributes
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from opentelemetry.util.types import AttributeValue

from llm_otel._guard import report_internal_error
from llm_otel.genai import GenAITelemetry
from llm_otel.genai._failure import record_failure
from llm_otel.instrumentation._base import FrameworkInstrumentor
from llm_otel.instrumentation._support import Patches
from llm_otel.instrumentation.mcp.package import _instruments

__all__ = ["MCPInstrumentor"]

# Where the mcp SDK imported its span helper (``from mcp.shared._otel import otel_span``).
_SPAN_USERS = ("mcp.shared.jsonrpc_dispatcher", "mcp.server._otel")
_CLIENT_PREFIX = "MCP send "
# What goes on the duration metrics (never ids: a request or session id is one series each).
_METRIC_KEYS = (
    mcp.MCP_METHOD_NAME,
    mcp.MCP_PROTOCOL_VERSION,
    ga.GEN_AI_OPERATION_NAME,
    ga.GEN_AI_TOOL_NAME,
    ga.GEN_AI_PROMPT_NAME,
    error_attributes.ERROR_TYPE,
    "rpc.response.status_code",
)


class MCPInstrumentor(FrameworkInstrumentor):
    """Records MCP requests, client and server side, as convention spans and metrics."""

    library = "mcp"
    requirements = _instruments
    hooked_modules = _SPAN_USERS

    def when_imported(self, module: Any, telemetry: GenAITelemetry, patches: Patches) -> None:
        if callable(getattr(module, "otel_span", None)):
            patches.replace(module, "otel_span", _span_helper(telemetry))


def _span_helper(telemetry: GenAITelemetry) -> Any:
    """A stand-in for the mcp SDK's ``otel_span`` that records through llm-otel."""

    @contextmanager
    def otel_span(
        name: str,
        *,
        kind: SpanKind,
        attributes: dict[str, Any] | None = None,
        context: Context | None = None,
        record_exception: bool = True,
        set_status_on_exception: bool = True,
    ) -> Iterator[Any]:
        attrs: dict[str, AttributeValue] = dict(attributes or {})
        try:
            name = _describe(name, kind, attrs)
        except Exception as exc:
            report_internal_error("mcp span", exc)
        span = telemetry.tracer.start_span(name, context=context, kind=kind, attributes=attrs)
        started = time.perf_counter()
        handle = _RequestSpan(span, telemetry)
        try:
            with trace.use_span(span, end_on_exit=False, record_exception=False,
                                set_status_on_exception=False):  # fmt: skip
                yield handle
        except BaseException as exc:
            if set_status_on_exception and not handle.failed:
                handle.fail(exc)
            raise
        finally:
            try:
                _record(telemetry, kind, span, attrs, handle, time.perf_counter() - started)
            except Exception as exc:
                report_internal_error("mcp metrics", exc)
            span.end()

    return otel_span


def _describe(name: str, kind: SpanKind, attrs: dict[str, AttributeValue]) -> str:
    """The conventions' span name (``{method} {target}``), and a tool call's GenAI attributes
    on the client side too (the SDK sets them on the server's span only)."""
    method = attrs.get(mcp.MCP_METHOD_NAME)
    target = None
    if kind is SpanKind.CLIENT and name.startswith(_CLIENT_PREFIX):
        rest = name[len(_CLIENT_PREFIX) :]
        if isinstance(method, str) and rest.startswith(method):
            target = rest[len(method) :].strip() or None
        name = rest
        if method == "tools/call" and target:
            attrs[ga.GEN_AI_OPERATION_NAME] = "execute_tool"
            attrs[ga.GEN_AI_TOOL_NAME] = target
        elif method == "prompts/get" and target:
            attrs[ga.GEN_AI_PROMPT_NAME] = target
    return name


class _RequestSpan:
    """What the mcp SDK's code gets instead of the span: the same calls, with error text kept
    only under the content policy (a tool's exception or a JSON-RPC message can carry input)."""

    __slots__ = ("_span", "_telemetry", "failed", "outcome")

    def __init__(self, span: Span, telemetry: GenAITelemetry) -> None:
        self._span = span
        self._telemetry = telemetry
        self.failed = False
        self.outcome: dict[str, AttributeValue] = {}
        """The metric attributes the SDK set (``error.type``, the status code): kept here, as a
        span sampled out keeps none."""

    def set_attribute(self, key: str, value: Any) -> None:
        if key in _METRIC_KEYS:
            self.outcome[key] = value
        self._span.set_attribute(key, value)

    def set_attributes(self, attributes: dict[str, Any]) -> None:
        for key, value in attributes.items():
            if key in _METRIC_KEYS:
                self.outcome[key] = value
        self._span.set_attributes(attributes)

    def set_status(self, status: Any, description: str | None = None) -> None:
        code = status.status_code if isinstance(status, Status) else status
        if isinstance(status, Status):
            description = status.description
        if code is StatusCode.ERROR:
            self.failed = True
            content = self._telemetry.content
            description = content.clean_text(description) if description and content.enabled \
                else self._error_type()  # fmt: skip
        self._span.set_status(Status(code, description if code is StatusCode.ERROR else None))

    def record_exception(self, exception: BaseException, *args: Any, **kwargs: Any) -> None:
        self.fail(exception)

    def fail(self, exc: BaseException) -> None:
        self.failed = True
        error_type = self._error_type() or type(exc).__qualname__
        self.set_attribute(error_attributes.ERROR_TYPE, error_type)
        record_failure(self._span, exc, error_type, self._telemetry.content)

    def is_recording(self) -> bool:
        return self._span.is_recording()

    def get_span_context(self) -> Any:
        return self._span.get_span_context()

    def _error_type(self) -> str | None:
        value = self.outcome.get(error_attributes.ERROR_TYPE)
        return str(value) if value is not None else None


def _record(
    telemetry: GenAITelemetry,
    kind: SpanKind,
    span: Span,
    attrs: dict[str, AttributeValue],
    handle: _RequestSpan,
    duration: float,
) -> None:
    recorded = {**attrs, **handle.outcome}
    points = {key: recorded[key] for key in _METRIC_KEYS if key in recorded}
    if kind is SpanKind.SERVER and str(points.get(error_attributes.ERROR_TYPE)) not in (
        "None", "tool_error"):  # fmt: skip
        # A request the server refused: the tool or prompt name is whatever the client sent,
        # not one of the server's (a series per garbage name otherwise).
        points.pop(ga.GEN_AI_TOOL_NAME, None)
        points.pop(ga.GEN_AI_PROMPT_NAME, None)
    histogram = telemetry.mcp_server_duration if kind is SpanKind.SERVER \
        else telemetry.mcp_client_duration  # fmt: skip
    histogram.record(duration, points)
