"""The OpenAI Agents SDK tracing processor: the SDK's traces and spans as GenAI spans, its model
calls recorded once.

- A trace (one ``Runner.run``, or the app's ``agents.trace(...)`` block around several) is
  ``invoke_workflow {name}``, with ``gen_ai.conversation.id`` from the trace's ``group_id``.
- An agent span is ``invoke_agent {name}``; a function tool ``execute_tool {name}`` (type
  ``extension`` for an MCP server's tool), with arguments and result when content capture is
  on; a handoff ``handoff {to agent}``; a guardrail ``guardrail {name}`` (a triggered tripwire
  is the guardrail's verdict, not its failure); a custom span (``agents.custom_span``) its name.
- A model call (the SDK's ``response`` or ``generation`` span) is announced as a framework call
  (``genai._frameworks``): the SDK's models call the openai client, and when llm_otel
  instruments it, the client's span is the call's one span and nothing else is recorded; else
  the call is recorded when the SDK's span ends, as the same ``chat {model}`` CLIENT span and
  GenAI metrics a client instrumentation gives.
- The SDK's task and turn spans (one ``Runner.run``, one turn of its loop) get no span: what
  runs in them nests under the agent. Neither do MCP ``list_tools`` spans (the ``mcp`` package
  traces its own requests) nor voice pipelines' spans.

Spans are parented by the SDK's own tree (``parent_id``, the trace), which holds under the
tasks it starts for tools and guardrails. Every hook is guarded: a failure is reported and the
agent run goes on.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from typing import Any

from agents.tracing import TracingProcessor
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as ga
from opentelemetry.semconv.attributes import error_attributes
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from opentelemetry.util.types import AttributeValue

from llm_otel._guard import call_guarded
from llm_otel.genai import GenAITelemetry, LLMRequest, LLMResponse, call_observer
from llm_otel.genai._failure import end_span, start_span
from llm_otel.genai._frameworks import AnnouncedCall
from llm_otel.genai._scope import scope_attributes
from llm_otel.semconv import agents as ours

__all__ = ["MAX_OPEN", "OpenTelemetryTracingProcessor"]

_logger = logging.getLogger("llm_otel")

MAX_OPEN = 10_000
"""Traces and spans followed at once; past this one is not recorded (one warning): a bound on
memory for an app whose spans never end (the SDK ends them; a broken integration might not)."""

# The SDK's span types that get no span of ours: their children nest under their parent.
_PASS_THROUGH = frozenset({"task", "turn", "mcp_tools", "transcription", "speech", "speech_group"})
# SpanError messages the SDK writes as constants: low-cardinality enough for error.type. Any
# other message (some carry the app's text) is "_OTHER", and its text is kept only with content
# capture on.
_KNOWN_ERRORS = frozenset(
    {
        "Error",
        "Error running tool",
        "Error running tool (non-fatal)",
        "Error getting response",
        "Error streaming response",
        "Error in call_model_input_filter",
        "Guardrail tripwire triggered",
        "Handoff function expected non-null input, but got None",
        "Invalid JSON",
        "Invalid JSON provided",
        "Invalid input filter",
        "Invalid input filter result",
        "Max turns exceeded",
        "Multiple handoffs requested",
        "Tool execution cancelled",
        "Tool execution rejected",
        "Tool not found",
    }
)
_TRIPWIRE = "Guardrail tripwire triggered"


class _Step:
    """A trace or span of the SDK with its span (None: it has none; children use ``parent``)."""

    __slots__ = ("parent", "span")

    def __init__(self, span: Span | None, parent: Span | None) -> None:
        self.span = span
        self.parent = parent


class OpenTelemetryTracingProcessor(TracingProcessor):
    """Records the OpenAI Agents SDK's traces and spans as OpenTelemetry spans. Added to the
    SDK's processors by :class:`OpenAIAgentsInstrumentor`; inert while not instrumented."""

    def __init__(self) -> None:
        self.telemetry: GenAITelemetry | None = None
        self._open: dict[str, _Step | AnnouncedCall] = {}
        self._warned = False
        self._lock = threading.Lock()

    # what the scope hooks ask -----------------------------------------------------------------
    def span_of(self, sdk_id: Any) -> Span | None:
        """Our span for the SDK's trace or span id (None for a model call or a pass-through)."""
        step = self._open.get(sdk_id) if isinstance(sdk_id, str) else None
        return step.span if isinstance(step, _Step) else None

    def _parent(self, sdk_span: Any) -> Span | None:
        for key in (getattr(sdk_span, "parent_id", None), getattr(sdk_span, "trace_id", None)):
            step = self._open.get(key) if isinstance(key, str) else None
            if isinstance(step, _Step):
                return step.span or step.parent
        return None

    def _room(self) -> bool:
        """Whether one more trace or span may be followed (past MAX_OPEN: no, one warning)."""
        if len(self._open) < MAX_OPEN:
            return True
        with self._lock:
            if not self._warned:
                self._warned = True
                _logger.warning(
                    "llm_otel: %d OpenAI Agents SDK spans are open at once; spans past that are "
                    "not recorded (are spans ending?)",
                    MAX_OPEN,
                )
        return False

    def _start(
        self,
        telemetry: GenAITelemetry,
        key: str,
        parent: Span | None,
        name: str,
        attributes: dict[str, AttributeValue],
    ) -> None:
        if not self._room():
            return
        scoped = scope_attributes()
        if scoped:
            attributes.update(scoped)
        context = trace.set_span_in_context(parent) if parent is not None else None
        span = start_span(telemetry.tracer, name, SpanKind.INTERNAL, attributes, context)
        self._open[key] = _Step(span, parent)

    def _content(self, span: Span | None, key: str, value: Any) -> None:
        telemetry = self.telemetry
        if span is None or telemetry is None or not telemetry.content.on_span or value is None:
            return
        if span.is_recording():
            span.set_attribute(key, telemetry.content.attribute_text(value))

    # traces ------------------------------------------------------------------------------
    def on_trace_start(self, trace_: Any) -> None:
        call_guarded("openai-agents on_trace_start", self._trace_start, trace_)

    def _trace_start(self, trace_: Any) -> None:
        telemetry = self.telemetry
        key = getattr(trace_, "trace_id", None)
        if telemetry is None or not isinstance(key, str):
            return
        name = str(getattr(trace_, "name", None) or "Agent workflow")
        attributes: dict[str, AttributeValue] = {
            ga.GEN_AI_OPERATION_NAME: "invoke_workflow",
            ga.GEN_AI_WORKFLOW_NAME: name,
        }
        group = getattr(trace_, "group_id", None)
        if isinstance(group, str) and group:
            attributes[ga.GEN_AI_CONVERSATION_ID] = group
        # Parented by the current context: the app's (a request's span), if any.
        self._start(telemetry, key, None, f"invoke_workflow {name}", attributes)

    def on_trace_end(self, trace_: Any) -> None:
        key = getattr(trace_, "trace_id", None)
        call_guarded("openai-agents on_trace_end", self._end, key, None, None)

    # spans -------------------------------------------------------------------------------
    def on_span_start(self, span: Any) -> None:
        call_guarded("openai-agents on_span_start", self._span_start, span)

    def _span_start(self, span: Any) -> None:
        telemetry = self.telemetry
        key = getattr(span, "span_id", None)
        data = getattr(span, "span_data", None)
        if telemetry is None or not isinstance(key, str) or data is None:
            return
        kind = getattr(data, "type", None)
        parent = self._parent(span)
        if kind in ("response", "generation"):
            observer = call_observer()  # sampled for online evaluation: content needed
            context = (trace.set_span_in_context(parent) if parent is not None
                       else otel_context.get_current())  # fmt: skip
            if self._room():
                self._open[key] = AnnouncedCall(context, observer, _foreign_agents_tracer())
            return
        if kind == "agent":
            name = str(getattr(data, "name", None) or "agent")
            self._start(telemetry, key, parent, f"invoke_agent {name}",
                        {ga.GEN_AI_OPERATION_NAME: "invoke_agent",
                         ga.GEN_AI_AGENT_NAME: name})  # fmt: skip
        elif kind == "function":
            name = str(getattr(data, "name", None) or "tool")
            attributes: dict[str, AttributeValue] = {
                ga.GEN_AI_OPERATION_NAME: "execute_tool",
                ga.GEN_AI_TOOL_NAME: name,
                ga.GEN_AI_TOOL_TYPE: "function",  # "extension" at the end, if from an MCP server
            }
            self._start(telemetry, key, parent, f"execute_tool {name}", attributes)
        elif kind == "handoff":
            source = getattr(data, "from_agent", None)
            target = getattr(data, "to_agent", None)
            attributes = {ours.LLM_OTEL_HANDOFF_FROM_AGENT: str(source)} if source else {}
            if target:
                attributes[ours.LLM_OTEL_HANDOFF_TO_AGENT] = str(target)
            self._start(telemetry, key, parent, f"handoff {target or 'agent'}", attributes)
        elif kind == "guardrail":
            name = str(getattr(data, "name", None) or "guardrail")
            self._start(telemetry, key, parent, f"guardrail {name}",
                        {ours.LLM_OTEL_GUARDRAIL_NAME: name})  # fmt: skip
        elif kind == "custom":
            self._start(telemetry, key, parent, str(getattr(data, "name", None) or "custom"), {})
        elif self._room():  # task, turn, MCP list_tools, voice, and kinds newer than this code
            self._open[key] = _Step(None, parent)

    def on_span_end(self, span: Any) -> None:
        call_guarded("openai-agents on_span_end", self._span_end, span)

    def _span_end(self, span: Any) -> None:
        key = getattr(span, "span_id", None)
        step = self._open.get(key) if isinstance(key, str) else None
        data = getattr(span, "span_data", None)
        error = getattr(span, "error", None)
        if isinstance(step, AnnouncedCall):
            del self._open[key]  # type: ignore[arg-type]
            self._model_end(step, data, error)
            return
        if isinstance(step, _Step) and step.span is not None:
            kind = getattr(data, "type", None)
            if kind == "function":  # the SDK fills its arguments in after the span starts
                if getattr(data, "mcp_data", None) and step.span.is_recording():
                    step.span.set_attribute(ga.GEN_AI_TOOL_TYPE, "extension")
                arguments, result = getattr(data, "input", None), getattr(data, "output", None)
                self._content(step.span, ga.GEN_AI_TOOL_CALL_ARGUMENTS, arguments)
                self._content(step.span, ga.GEN_AI_TOOL_CALL_RESULT, result)
            elif kind == "handoff" and step.span.is_recording():
                target = getattr(data, "to_agent", None)
                if target:
                    step.span.set_attribute(ours.LLM_OTEL_HANDOFF_TO_AGENT, str(target))
                    step.span.update_name(f"handoff {target}")
            elif kind == "guardrail":
                triggered = getattr(data, "triggered", None) is True
                step.span.set_attribute(ours.LLM_OTEL_GUARDRAIL_TRIGGERED, triggered)
                if triggered and _message(error) == _TRIPWIRE:
                    error = None  # the guardrail's verdict, not its failure
        self._end(key, error, data)

    def _end(self, key: Any, error: Any, data: Any) -> None:
        step = self._open.pop(key, None) if isinstance(key, str) else None
        if not isinstance(step, _Step) or step.span is None:
            return
        if error:
            self._fail(step.span, error)
        end_span(step.span)

    def _fail(self, span: Span, error: Any) -> None:
        telemetry = self.telemetry
        message = _message(error)
        known = message in _KNOWN_ERRORS
        span.set_attribute(error_attributes.ERROR_TYPE,
                           message if known and message else "_OTHER")  # fmt: skip
        description = message if known else "_OTHER"
        if telemetry is not None and telemetry.content.enabled:
            detail = error.get("data") if isinstance(error, Mapping) else None
            text = f"{message}: {detail}" if detail else str(message or "")
            description = telemetry.content.clean_text(text) or description
        span.set_status(Status(StatusCode.ERROR, description))

    # model calls ---------------------------------------------------------------------------
    def _model_end(self, step: AnnouncedCall, data: Any, error: Any) -> None:
        telemetry = self.telemetry
        if not step.unclaimed or telemetry is None:
            step.call.ended = True
            return  # the client library's instrumentation recorded this call
        capture = telemetry.content.enabled or step.observer is not None
        request, response = _model_call(data, capture)
        failure = _ModelError(_message(error) or "model call failed") if error else None
        step.record(telemetry, request, response, failure)

    def close(self) -> None:
        """End every span still open (uninstrument): no span is left open."""
        steps, self._open = self._open, {}
        for step in steps.values():
            if isinstance(step, _Step) and step.span is not None:
                end_span(step.span)
            elif isinstance(step, AnnouncedCall):
                step.call.ended = True

    def shutdown(self) -> None:
        """The SDK's shutdown (at exit): the OpenTelemetry providers flush on their own."""

    def force_flush(self) -> None:
        """Nothing is queued here: spans go to the OpenTelemetry SDK as they end."""


class _ModelError(Exception):
    """A model call the SDK reports failed (its span's error), with the SDK's message."""


def _model_call(data: Any, capture: bool) -> tuple[LLMRequest, LLMResponse | None]:
    """The request and response of the SDK's ``response`` (Responses API: the ``Response``
    object) or ``generation`` span (any other model: model, config, usage, messages)."""
    if getattr(data, "type", None) == "response":
        from llm_otel.instrumentation.openai._responses import convert_response

        result = getattr(data, "response", None)
        response = convert_response(result, capture) if result is not None else None
        model = getattr(result, "model", None)
        return LLMRequest(operation="chat", provider="openai",
                          model=model if isinstance(model, str) else None), response  # fmt: skip
    model = getattr(data, "model", None)
    config = getattr(data, "model_config", None)
    request = LLMRequest(operation="chat", provider=_provider(model, config),
                         model=model if isinstance(model, str) else None)  # fmt: skip
    usage = getattr(data, "usage", None)
    usage = usage if isinstance(usage, Mapping) else {}
    response = LLMResponse(
        input_tokens=_int(usage.get("input_tokens", usage.get("prompt_tokens"))),
        output_tokens=_int(usage.get("output_tokens", usage.get("completion_tokens"))),
    )
    if capture:
        from llm_otel.manual._values import as_messages

        try:
            request.input_messages = as_messages("input", getattr(data, "input", None))
            response.output_messages = as_messages("output", getattr(data, "output", None))
        except (TypeError, ValueError):
            pass  # a shape the conventions' converter does not know: no content recorded
    return request, response


def _provider(model: Any, config: Any) -> str:
    """``gen_ai.provider.name`` of a generation span: a LiteLLM-style ``provider/model`` prefix,
    else ``openai`` (the SDK's chat-completions model)."""
    if isinstance(config, Mapping) and isinstance(config.get("provider"), str):
        return str(config["provider"])
    if isinstance(model, str) and "/" in model:
        return model.split("/", 1)[0]
    return "openai"


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _message(error: Any) -> str | None:
    message = error.get("message") if isinstance(error, Mapping) else None
    return message if isinstance(message, str) else None


# Other vendors' Agents SDK processors, which give each model call a span of their own.
_FOREIGN_PROCESSORS = (
    "openinference.instrumentation.openai_agents",
    "opentelemetry.instrumentation.openai_agents",
    "openlit.instrumentation.openai_agents",
)


def _foreign_agents_tracer() -> bool:
    """Whether another vendor's Agents SDK processor is registered (it gives model calls their
    span: the call then gets our metrics, not a second span)."""
    try:
        from agents.tracing import get_trace_provider

        processors = get_trace_provider()._multi_processor._processors  # type: ignore[attr-defined]
    except Exception:
        return False
    return any(type(p).__module__.startswith(_FOREIGN_PROCESSORS) for p in processors)
