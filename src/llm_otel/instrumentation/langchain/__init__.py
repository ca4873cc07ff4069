"""OpenTelemetry instrumentation for LangChain and LangGraph (``langchain-core`` callbacks).

Chains and graphs become workflow, task and agent spans, tools ``execute_tool`` spans,
retrievers ``retrieval`` spans; each model call gets exactly one span (the client library's,
when llm_otel instruments it; else one recorded from LangChain's callbacks with the same GenAI
attributes and metrics). See ``_handler`` for the mapping and docs/frameworks.md for use.

    from llm_otel.instrumentation.langchain import LangChainInstrumentor
    LangChainInstrumentor().instrument()

How it hooks in, through LangChain's own extension points:

- the handler is added to every callback manager LangChain configures, with
  ``register_configure_hook`` (the hook LangSmith's tracer and ``get_openai_callback`` use);
- the span of the run that starts a child step is made current inside the context LangChain
  copies for that step (``_set_config_context``, where LangChain sets LangSmith's parent run),
  so whatever the step calls (an instrumented client, your own spans) nests under it. The copy
  is dropped when the step ends, so nothing is ever left attached.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextvars import ContextVar
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace

from llm_otel._guard import report_internal_error
from llm_otel.genai import GenAITelemetry
from llm_otel.instrumentation._base import FrameworkInstrumentor
from llm_otel.instrumentation._support import Patches
from llm_otel.instrumentation.langchain.package import _instruments

__all__ = ["LangChainInstrumentor"]

# Where LangChain (and LangGraph, with its own copy) sets a child step's context.
_CONTEXT_SETTERS = (
    ("langchain_core.runnables.config", "_set_config_context"),
    ("langgraph._internal._runnable", "_set_config_context"),
)
# (The callback handler module imports langchain_core: it is imported only once LangChain is.)


class LangChainInstrumentor(FrameworkInstrumentor):
    """Records LangChain/LangGraph runs as GenAI spans; model calls once."""

    library = "langchain"
    requirements = _instruments
    hooked_modules = tuple(module_name for module_name, _ in _CONTEXT_SETTERS)
    _hook: Any = None

    def when_imported(self, module: Any, telemetry: GenAITelemetry, patches: Patches) -> None:
        if module.__name__ == _CONTEXT_SETTERS[0][0]:
            _handler_for(telemetry)
            from langchain_core.tracers import context as lc_context

            hook = (ContextVar("llm_otel_langchain", default=_state["handler"]), True,
                    None, None)  # fmt: skip
            lc_context._configure_hooks.append(hook)  # register_configure_hook, undoable
            type(self)._hook = hook
        if callable(getattr(module, "_set_config_context", None)):
            patches.wrap(module, "_set_config_context", _enter_parent)

    def _uninstrument(self, **kwargs: Any) -> None:
        hook = type(self)._hook
        if hook is not None:
            from langchain_core.tracers import context as lc_context

            if hook in lc_context._configure_hooks:
                lc_context._configure_hooks.remove(hook)
        type(self)._hook = None
        handler = handler_of_process()
        if handler is not None:
            handler.telemetry = None
            handler.close()
        super()._uninstrument(**kwargs)


_state: dict[str, Any] = {}


def handler_of_process() -> Any:
    """The process's callback handler (None until LangChain is imported while instrumented)."""
    return _state.get("handler")


def _handler_for(telemetry: GenAITelemetry) -> None:
    from llm_otel.instrumentation.langchain._handler import OpenTelemetryCallbackHandler

    handler = _state.get("handler")
    if handler is None:
        handler = _state["handler"] = OpenTelemetryCallbackHandler()
    handler.telemetry = telemetry


def _enter_parent(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    result = wrapped(*args, **kwargs)
    _make_parent_current(args[0] if args else kwargs.get("config"))
    return result


def _make_parent_current(config: Any) -> None:
    """Inside the context LangChain made for a child step: the parent run's span is current."""
    try:
        handler = handler_of_process()
        callbacks = config.get("callbacks") if isinstance(config, Mapping) else None
        run = handler.visible(getattr(callbacks, "parent_run_id", None)) if handler else None
        if run is not None:
            # Attached in the step's own copy of the context, which is dropped when the step
            # ends: there is nothing to detach.
            otel_context.attach(trace.set_span_in_context(run.span))
    except Exception as exc:
        report_internal_error("langchain step context", exc)
