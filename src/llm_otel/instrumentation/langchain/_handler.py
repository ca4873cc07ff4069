"""The LangChain callback handler: LangChain's runs as GenAI spans, its model calls recorded once.

- A chain run is ``invoke_workflow {name}`` at the top, ``task {name}`` inside another run, and
  ``invoke_agent {name}`` where an agent starts: a run whose ``lc_agent_name`` metadata (set by
  ``langchain.agents.create_agent(name=...)``, inherited by everything inside) differs from its
  parent's, a ``create_agent`` graph without a name, or a legacy ``AgentExecutor``. Runs
  LangChain marks hidden (``langsmith:hidden``: LangGraph's plumbing) get no span; what runs
  inside them nests under the nearest run that has one.
- A tool run is ``execute_tool {name}``; a retriever run ``retrieval {name}`` (CLIENT).
- A model run is announced as a framework call (``genai._frameworks``): when LangChain's client
  (``ChatOpenAI``'s openai SDK, ``ChatAnthropic``'s anthropic SDK, ...) is instrumented by
  llm_otel, the client's span is the call's one span and the run records nothing; otherwise
  the run is recorded when it ends, as the same ``chat {model}`` CLIENT span and GenAI metrics a
  client instrumentation gives, from what LangChain reports (usage, finish reasons, model).

Spans are parented by LangChain's run tree (``parent_run_id``), which holds under threads,
``asyncio.gather`` and LangGraph's parallel branches. Every hook is guarded: a failure is
reported and the app's run goes on.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from typing import Any
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler, BaseCallbackManager
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as ga
from opentelemetry.trace import Span, SpanKind
from opentelemetry.util.types import AttributeValue

from llm_otel._guard import call_guarded, report_internal_error
from llm_otel.genai import GenAITelemetry, LLMRequest, call_observer
from llm_otel.genai._failure import end_span, fail_span, start_span
from llm_otel.genai._frameworks import AnnouncedCall
from llm_otel.genai._observe import CallObserver
from llm_otel.genai._scope import scope_attributes
from llm_otel.instrumentation.langchain import _messages
from llm_otel.semconv import manual as ours

__all__ = ["MAX_OPEN_RUNS", "OpenTelemetryCallbackHandler"]

_logger = logging.getLogger("llm_otel")

MAX_OPEN_RUNS = 10_000
"""Runs followed at once; past this a run is not recorded (one warning): a bound on memory for
an app whose runs never end (LangChain always ends them; a broken integration might not)."""

_HIDDEN = "langsmith:hidden"
_CREATE_AGENT = "langchain_create_agent"
# LangGraph's control flow, raised through the runs it leaves: an interrupt, a handoff. Not a
# failure of those runs.
_CONTROL_FLOW = frozenset({"GraphInterrupt", "NodeInterrupt", "GraphBubbleUp", "ParentCommand"})


class _SpanRun:
    """A chain, tool or retriever run with its span."""

    __slots__ = ("agent", "span")

    def __init__(self, span: Span, agent: str | None) -> None:
        self.span = span
        self.agent = agent  # the agent this run is inside (lc_agent_name; "" for unnamed)


class _Hidden:
    """A run without a span: its children nest under ``visible`` (None: the context's span)."""

    __slots__ = ("visible",)

    def __init__(self, visible: _SpanRun | None) -> None:
        self.visible = visible


class _ModelRun(AnnouncedCall):
    """A model call LangChain announced; recorded at its end unless a client call claimed it."""

    __slots__ = ("request",)

    def __init__(
        self,
        request: LLMRequest,
        parent: otel_context.Context,
        observer: CallObserver | None,
    ) -> None:
        super().__init__(parent, observer, _foreign_langchain_tracer())
        self.request = request


_Run = _SpanRun | _Hidden | _ModelRun


class OpenTelemetryCallbackHandler(BaseCallbackHandler):
    """Records LangChain runs as OpenTelemetry spans. Added to every callback manager by
    :class:`LangChainInstrumentor`; inert (LangChain skips it) while not instrumented."""

    run_inline = True  # called in the run's own thread/task, never from an executor
    raise_error = False

    def __init__(self) -> None:
        self.telemetry: GenAITelemetry | None = None
        self._runs: dict[UUID, _Run] = {}
        self._warned = False
        self._lock = threading.Lock()

    # LangChain asks these before every event: while uninstrumented nothing is called.
    @property
    def ignore_llm(self) -> bool:
        return self.telemetry is None

    @property
    def ignore_chat_model(self) -> bool:
        return self.telemetry is None

    @property
    def ignore_chain(self) -> bool:
        return self.telemetry is None

    @property
    def ignore_agent(self) -> bool:
        # LangChain gates tool events by this one too; agent actions themselves are no-ops
        # here (they are the chain, model and tool runs around them).
        return self.telemetry is None

    @property
    def ignore_retriever(self) -> bool:
        return self.telemetry is None

    @property
    def ignore_retry(self) -> bool:
        return True

    @property
    def ignore_custom_event(self) -> bool:
        return True

    # run bookkeeping ----------------------------------------------------------------------
    def visible(self, run_id: UUID | None) -> _SpanRun | None:
        """The run's nearest ancestor-or-self with a span (None: none known)."""
        run = self._runs.get(run_id) if run_id is not None else None
        if isinstance(run, _Hidden):
            return run.visible
        return run if isinstance(run, _SpanRun) else None

    def _add(self, run_id: UUID, run: _Run) -> bool:
        runs = self._runs
        if len(runs) >= MAX_OPEN_RUNS:
            with self._lock:
                if not self._warned:
                    self._warned = True
                    _logger.warning(
                        "llm_otel: %d LangChain runs are open at once; runs past that are not "
                        "recorded (are runs ending?)",
                        MAX_OPEN_RUNS,
                    )
            return False
        runs[run_id] = run
        return True

    def _parent_context(self, parent: _SpanRun | None) -> otel_context.Context:
        if parent is not None:
            return trace.set_span_in_context(parent.span)
        return otel_context.get_current()

    def _start(
        self,
        telemetry: GenAITelemetry,
        run_id: UUID,
        parent_run_id: UUID | None,
        name: str,
        kind: SpanKind,
        attributes: dict[str, AttributeValue],
        agent: str | None,
    ) -> _SpanRun | None:
        parent = self.visible(parent_run_id)
        scoped = scope_attributes()
        if scoped:
            attributes.update(scoped)
        span = start_span(telemetry.tracer, name, kind, attributes, self._parent_context(parent))
        run = _SpanRun(span, agent)
        if not self._add(run_id, run):
            end_span(span)
            return None
        return run

    def _end(self, run_id: UUID, error: BaseException | None = None) -> _SpanRun | None:
        run = self._runs.pop(run_id, None)
        if not isinstance(run, _SpanRun):
            return None
        telemetry = self.telemetry
        if (
            error is not None
            and telemetry is not None
            and type(error).__name__ not in _CONTROL_FLOW
        ):
            try:
                fail_span(run.span, error, telemetry.content)
            except Exception as internal:
                report_internal_error("langchain run failure", internal)
        end_span(run.span)
        return run

    def _content(self, run: _SpanRun | None, key: str, value: Any) -> None:
        telemetry = self.telemetry
        if run is None or telemetry is None or not telemetry.content.on_span:
            return
        if not run.span.is_recording():
            return
        run.span.set_attribute(key, telemetry.content.attribute_text(value))

    # chains and agents ----------------------------------------------------------------------
    def on_chain_start(
        self,
        serialized: dict[str, Any] | None,
        inputs: Any,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        call_guarded("langchain on_chain_start", self._chain_start, run_id, parent_run_id, tags,
                     metadata or {}, kwargs.get("name") or _name(serialized))  # fmt: skip

    def _chain_start(
        self,
        run_id: UUID,
        parent_run_id: UUID | None,
        tags: list[str] | None,
        metadata: Mapping[str, Any],
        name: str,
    ) -> None:
        telemetry = self.telemetry
        if telemetry is None:
            return
        if tags and _HIDDEN in tags:
            self._add(run_id, _Hidden(self.visible(parent_run_id)))
            return
        parent = self.visible(parent_run_id)
        outer = parent.agent if parent is not None else None
        agent = metadata.get("lc_agent_name")
        if not isinstance(agent, str):
            agent = "" if metadata.get("ls_integration") == _CREATE_AGENT else outer
        attributes: dict[str, AttributeValue]
        if (agent is not None and agent != outer) or name == "AgentExecutor":
            agent_name = agent or name
            attributes = {ga.GEN_AI_OPERATION_NAME: "invoke_agent",
                          ga.GEN_AI_AGENT_NAME: agent_name}  # fmt: skip
            span_name = f"invoke_agent {agent_name}"
        elif parent is None and parent_run_id is None:
            attributes = {ga.GEN_AI_OPERATION_NAME: "invoke_workflow",
                          ga.GEN_AI_WORKFLOW_NAME: name}  # fmt: skip
            span_name = f"invoke_workflow {name}"
        else:
            attributes = {ours.LLM_OTEL_TASK_NAME: name}
            span_name = f"task {name}"
        self._start(telemetry, run_id, parent_run_id, span_name, SpanKind.INTERNAL, attributes,
                    agent)  # fmt: skip

    def on_chain_end(self, outputs: Any, *, run_id: UUID, **kwargs: Any) -> None:
        call_guarded("langchain on_chain_end", self._end, run_id)

    def on_chain_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        call_guarded("langchain on_chain_error", self._end, run_id, error)

    # tools --------------------------------------------------------------------------------
    def on_tool_start(
        self,
        serialized: dict[str, Any] | None,
        input_str: str,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        inputs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        call_guarded("langchain on_tool_start", self._tool_start, serialized or {}, input_str,
                     run_id, parent_run_id, inputs, kwargs)  # fmt: skip

    def _tool_start(
        self,
        serialized: Mapping[str, Any],
        input_str: str,
        run_id: UUID,
        parent_run_id: UUID | None,
        inputs: dict[str, Any] | None,
        kwargs: Mapping[str, Any],
    ) -> None:
        telemetry = self.telemetry
        if telemetry is None:
            return
        name = str(serialized.get("name") or kwargs.get("name") or "tool")
        attributes: dict[str, AttributeValue] = {
            ga.GEN_AI_OPERATION_NAME: "execute_tool",
            ga.GEN_AI_TOOL_NAME: name,
            ga.GEN_AI_TOOL_TYPE: "function",
        }
        call_id = kwargs.get("tool_call_id")
        if isinstance(call_id, str):
            attributes[ga.GEN_AI_TOOL_CALL_ID] = call_id
        description = serialized.get("description")
        if isinstance(description, str) and description:
            attributes[ga.GEN_AI_TOOL_DESCRIPTION] = description
        parent = self.visible(parent_run_id)
        agent = parent.agent if parent else None
        run = self._start(telemetry, run_id, parent_run_id, f"execute_tool {name}",
                          SpanKind.INTERNAL, attributes, agent)  # fmt: skip
        arguments = inputs if inputs is not None else input_str
        self._content(run, ga.GEN_AI_TOOL_CALL_ARGUMENTS, arguments)

    def on_tool_end(self, output: Any, *, run_id: UUID, **kwargs: Any) -> None:
        call_guarded("langchain on_tool_end", self._tool_end, output, run_id)

    def _tool_end(self, output: Any, run_id: UUID) -> None:
        run = self._runs.get(run_id)
        if isinstance(run, _SpanRun):
            self._content(run, ga.GEN_AI_TOOL_CALL_RESULT, _messages.tool_result(output))
        self._end(run_id)

    def on_tool_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        call_guarded("langchain on_tool_error", self._end, run_id, error)

    # retrievers -----------------------------------------------------------------------------
    def on_retriever_start(
        self,
        serialized: dict[str, Any] | None,
        query: str,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        name = kwargs.get("name") or _name(serialized)
        call_guarded("langchain on_retriever_start", self._retriever_start, name, query, run_id,
                     parent_run_id)  # fmt: skip

    def _retriever_start(
        self, name: str, query: str, run_id: UUID, parent_run_id: UUID | None
    ) -> None:
        telemetry = self.telemetry
        if telemetry is None:
            return
        attributes: dict[str, AttributeValue] = {
            ga.GEN_AI_OPERATION_NAME: "retrieval",
            ga.GEN_AI_DATA_SOURCE_ID: name,
        }
        parent = self.visible(parent_run_id)
        run = self._start(telemetry, run_id, parent_run_id, f"retrieval {name}", SpanKind.CLIENT,
                          attributes, parent.agent if parent else None)  # fmt: skip
        self._content(run, ga.GEN_AI_RETRIEVAL_QUERY_TEXT, query)

    def on_retriever_end(self, documents: Any, *, run_id: UUID, **kwargs: Any) -> None:
        call_guarded("langchain on_retriever_end", self._retriever_end, documents, run_id)

    def _retriever_end(self, documents: Any, run_id: UUID) -> None:
        run = self._runs.get(run_id)
        if isinstance(run, _SpanRun):
            self._content(run, ga.GEN_AI_RETRIEVAL_DOCUMENTS, _messages.documents(documents))
        self._end(run_id)

    def on_retriever_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        call_guarded("langchain on_retriever_error", self._end, run_id, error)

    # models ----------------------------------------------------------------------------------
    def on_chat_model_start(
        self,
        serialized: dict[str, Any] | None,
        messages: list[list[Any]],
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        call_guarded("langchain on_chat_model_start", self._model_start, "chat", messages, run_id,
                     parent_run_id, metadata or {}, kwargs)  # fmt: skip

    def on_llm_start(
        self,
        serialized: dict[str, Any] | None,
        prompts: list[str],
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        call_guarded("langchain on_llm_start", self._model_start, "text_completion", [prompts],
                     run_id, parent_run_id, metadata or {}, kwargs)  # fmt: skip

    def _model_start(
        self,
        operation: str,
        messages: list[Any],
        run_id: UUID,
        parent_run_id: UUID | None,
        metadata: Mapping[str, Any],
        kwargs: Mapping[str, Any],
    ) -> None:
        telemetry = self.telemetry
        if telemetry is None:
            return
        params = kwargs.get("invocation_params") or {}
        observer = call_observer()  # sampled for online evaluation: content needed in memory
        capture = telemetry.content.enabled or observer is not None
        model = metadata.get("ls_model_name") or params.get("model") or params.get("model_name")
        request = LLMRequest(
            operation=operation,
            provider=_messages.provider_of(metadata, params),
            model=model if isinstance(model, str) else None,
            stream=params.get("stream") is True,
            attributes=_messages.request_attributes(metadata, params),
        )
        if capture:
            request.input_messages = _messages.input_messages(messages[0] if messages else ())
            tools = params.get("tools")
            if isinstance(tools, list) and tools:
                request.tool_definitions = tools
        parent = self._parent_context(self.visible(parent_run_id))
        self._add(run_id, _ModelRun(request, parent, observer))

    def on_llm_new_token(self, token: Any, *, run_id: UUID, **kwargs: Any) -> None:
        run = self._runs.get(run_id)
        if isinstance(run, _ModelRun):
            run.note_chunk()

    def on_llm_end(self, response: Any, *, run_id: UUID, **kwargs: Any) -> None:
        call_guarded("langchain on_llm_end", self._model_end, run_id, response, None)

    def on_llm_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        response = kwargs.get("response")
        call_guarded("langchain on_llm_error", self._model_end, run_id, response, error)

    def _model_end(self, run_id: UUID, result: Any, error: BaseException | None) -> None:
        run = self._runs.pop(run_id, None)
        if not isinstance(run, _ModelRun):
            return
        telemetry = self.telemetry
        response = None
        if result is not None and telemetry is not None and run.unclaimed:
            capture = telemetry.content.enabled or run.observer is not None
            try:
                response = _messages.response_of(result, capture)
            except Exception as internal:
                report_internal_error("langchain model result", internal)
        run.record(telemetry, run.request, response, error)

    def close(self) -> None:
        """End every run still open (uninstrument): no span is left open."""
        runs, self._runs = self._runs, {}
        for run in runs.values():
            if isinstance(run, _SpanRun):
                end_span(run.span)
            elif isinstance(run, _ModelRun):
                run.call.ended = True


# Other vendors' LangChain instrumentations, which add their tracer to every callback manager by
# wrapping BaseCallbackManager.__init__ and give each model run a span of their own.
_FOREIGN_TRACERS = (
    "openinference.instrumentation.langchain",
    "opentelemetry.instrumentation.langchain",
)


def _foreign_langchain_tracer() -> bool:
    """Whether another vendor's LangChain instrumentation is active (it gives model runs their
    span: the call then gets our metrics, not a second span)."""
    init = BaseCallbackManager.__dict__.get("__init__")
    wrapper = getattr(init, "_self_wrapper", None)
    return wrapper is not None and str(getattr(wrapper, "__module__", "")).startswith(
        _FOREIGN_TRACERS
    )


def _name(serialized: Mapping[str, Any] | None) -> str:
    if not serialized:
        return "chain"
    name = serialized.get("name")
    if isinstance(name, str) and name:
        return name
    ids = serialized.get("id")
    if isinstance(ids, list) and ids and isinstance(ids[-1], str):
        return ids[-1]
    return "chain"
