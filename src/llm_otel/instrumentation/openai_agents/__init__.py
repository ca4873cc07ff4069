"""OpenTelemetry instrumentation for the OpenAI Agents SDK (the ``openai-agents`` package).

A tracing processor turns the SDK's traces and spans into GenAI spans: a trace is
``invoke_workflow {name}``, an agent ``invoke_agent {name}``, a function tool ``execute_tool
{name}``, a handoff ``handoff {agent}``, a guardrail ``guardrail {name}``. Each model call gets
exactly one span: the openai client's, when llm_otel instruments it (the SDK's own models call
it), else one recorded from the SDK's generation or response span with the same GenAI
attributes and metrics. See ``_processor`` for the mapping and docs/frameworks.md for use.

    from llm_otel.instrumentation.openai_agents import OpenAIAgentsInstrumentor
    OpenAIAgentsInstrumentor().instrument()

How it hooks in, through the SDK's own extension points:

- the processor is added with ``agents.add_trace_processor`` when the app imports the SDK (the
  SDK takes seconds to import: an app that merely has it installed does not pay that), and is
  kept when the app replaces the SDK's processors with ``set_trace_processors`` (commonly done
  to stop exporting to OpenAI's tracing backend);
- where the SDK makes one of its spans current (``Scope.set_current_span``, and the same for a
  trace), ours is made current in the same context and reset where the SDK resets its own, so
  whatever runs inside (an instrumented client, a tool's HTTP calls, your own spans) nests under
  the step that made it.
"""

from __future__ import annotations

from contextvars import Token
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace

from llm_otel._guard import report_internal_error
from llm_otel.genai import GenAITelemetry
from llm_otel.instrumentation._base import FrameworkInstrumentor
from llm_otel.instrumentation._support import Patches
from llm_otel.instrumentation.openai_agents.package import _instruments

__all__ = ["OpenAIAgentsInstrumentor"]

MAX_ATTACHED = 10_000
"""SDK scopes followed at once (the SDK resets each one it sets; past this none is attached)."""


class OpenAIAgentsInstrumentor(FrameworkInstrumentor):
    """Records OpenAI Agents SDK runs as GenAI spans; model calls once."""

    library = "openai-agents"
    requirements = _instruments
    hooked_modules = ("agents",)

    def when_imported(self, module: Any, telemetry: GenAITelemetry, patches: Patches) -> None:
        _install(telemetry, patches)

    def _uninstrument(self, **kwargs: Any) -> None:
        processor = processor_of_process()
        if processor is not None:
            processor.telemetry = None
            processor.close()
            _remove(processor)
        super()._uninstrument(**kwargs)


_state: dict[str, Any] = {}


def processor_of_process() -> Any:
    """The process's tracing processor (None until the SDK is imported while instrumented)."""
    return _state.get("processor")


def _install(telemetry: GenAITelemetry, patches: Patches) -> None:
    from agents.tracing import add_trace_processor
    from agents.tracing.provider import SynchronousMultiTracingProcessor
    from agents.tracing.scope import Scope

    from llm_otel.instrumentation.openai_agents._processor import OpenTelemetryTracingProcessor

    processor = _state.get("processor")
    if processor is None:
        processor = _state["processor"] = OpenTelemetryTracingProcessor()
    processor.telemetry = telemetry
    add_trace_processor(processor)
    patches.wrap(SynchronousMultiTracingProcessor, "set_processors", _keep_ours)
    # id(the SDK's token) -> (that token, ours): tokens are not hashable; each lives until reset.
    attached: dict[int, tuple[Token[Any], object]] = {}
    scopes = (("set_current_span", "reset_current_span", "span_id"),
              ("set_current_trace", "reset_current_trace", "trace_id"))  # fmt: skip
    for setter, resetter, key in scopes:
        patches.wrap(Scope, setter, _entering(attached, key))
        patches.wrap(Scope, resetter, _leaving(attached))


def _remove(processor: Any) -> None:
    try:
        from agents.tracing import get_trace_provider

        multi = get_trace_provider()._multi_processor  # type: ignore[attr-defined]
        multi.set_processors([p for p in multi._processors if p is not processor])
    except Exception as exc:
        report_internal_error("openai-agents uninstrument", exc)


def _keep_ours(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    # set_trace_processors() replaces the SDK's processors (often: to stop exporting to
    # OpenAI's backend); llm_otel's stays while instrumented.
    result = wrapped(*args, **kwargs)
    processor = processor_of_process()
    if processor is not None and processor.telemetry is not None:
        try:
            if processor not in instance._processors:
                instance.add_tracing_processor(processor)
        except Exception as exc:
            report_internal_error("openai-agents set_processors", exc)
    return result


def _entering(attached: dict[int, tuple[Token[Any], object]], key: str) -> Any:
    def wrapper(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        token = wrapped(*args, **kwargs)
        try:
            item = args[0] if args else kwargs.get("span", kwargs.get("trace"))
            processor = processor_of_process()
            span = None
            if item is not None and processor is not None and len(attached) < MAX_ATTACHED:
                span = processor.span_of(getattr(item, key, None))
            if span is not None:
                ours = otel_context.attach(trace.set_span_in_context(span))
                attached[id(token)] = (token, ours)
        except Exception as exc:
            report_internal_error("openai-agents scope", exc)
        return token

    return wrapper


def _leaving(attached: dict[int, tuple[Token[Any], object]]) -> Any:
    def wrapper(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        token = args[0] if args else kwargs.get("token")
        entry = attached.pop(id(token), None)
        result = wrapped(*args, **kwargs)  # the SDK's reset first: it raises where ours would
        if entry is not None and entry[0] is token:
            otel_context.detach(entry[1])  # type: ignore[arg-type]
        return result

    return wrapper
