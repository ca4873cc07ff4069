"""OpenTelemetry instrumentation for LlamaIndex (``llama-index-core``, its instrumentation API).

Query and chat engines, workflows and agents become workflow, task and agent spans, retrievers
``retrieval`` spans, tools ``execute_tool`` spans; each model call gets exactly one span (the
client library's, when llm_otel instruments it; else one recorded from LlamaIndex's events with
the same GenAI attributes and metrics). See ``_handler`` for the mapping and docs/frameworks.md
for use.

    from llm_otel.instrumentation.llama_index import LlamaIndexInstrumentor
    LlamaIndexInstrumentor().instrument()

It hooks in through LlamaIndex's own extension point: a span handler and an event handler on
the root dispatcher, which every LlamaIndex module's dispatcher passes its spans and events to.
``uninstrument()`` removes both.
"""

from __future__ import annotations

from typing import Any

from llm_otel.genai import GenAITelemetry
from llm_otel.instrumentation._base import FrameworkInstrumentor
from llm_otel.instrumentation._support import Patches
from llm_otel.instrumentation.llama_index.package import _instruments

__all__ = ["LlamaIndexInstrumentor"]


class LlamaIndexInstrumentor(FrameworkInstrumentor):
    """Records LlamaIndex queries, retrievals, synthesis, workflows, agents and tools as GenAI
    spans; model calls once."""

    library = "llama-index"
    requirements = _instruments
    hooked_modules = ("llama_index.core.instrumentation",)
    _handlers: tuple[Any, Any] | None = None

    def when_imported(self, module: Any, telemetry: GenAITelemetry, patches: Patches) -> None:
        from llm_otel.instrumentation.llama_index._handler import (
            EventHandler,
            Recorder,
            SpanHandler,
        )

        root = module.get_dispatcher()
        recorder = Recorder()
        recorder.telemetry = telemetry
        recorder.dispatcher = root
        spans, events = SpanHandler(recorder), EventHandler(recorder)
        root.add_span_handler(spans)
        root.add_event_handler(events)
        type(self)._handlers = (spans, events)

    def _uninstrument(self, **kwargs: Any) -> None:
        handlers = type(self)._handlers
        type(self)._handlers = None
        if handlers is not None:
            from llama_index.core.instrumentation import get_dispatcher

            root = get_dispatcher()
            spans, events = handlers
            # Lists rebuilt, not mutated: a dispatch walking the old list finishes undisturbed.
            root.span_handlers = [h for h in root.span_handlers if h is not spans]
            root.event_handlers = [h for h in root.event_handlers if h is not events]
            recorder = spans._recorder
            recorder.telemetry = None
            recorder.close()
        super()._uninstrument(**kwargs)


def recorder_of_process() -> Any:
    """The recorder of the current instrumentation (None while not instrumented, or before
    LlamaIndex is imported)."""
    handlers = LlamaIndexInstrumentor._handlers
    return handlers[0]._recorder if handlers is not None else None
