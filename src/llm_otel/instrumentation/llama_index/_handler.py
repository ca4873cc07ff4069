"""LlamaIndex's spans and events (its instrumentation API) as GenAI spans, its model calls
recorded once.

LlamaIndex opens one of its spans around every method it decorates (hundreds: node parsers,
prompt helpers, each refine step). Those that mean something to a person reading a trace
become spans of ours; the rest get none, and what runs in them nests under the nearest that
has one:

- a query engine's ``query``, a chat engine's ``chat`` (and their async and streaming twins),
  and a workflow's ``run``: ``invoke_workflow {class}`` at the top, ``task {class}`` inside
  another; an agent's ``run`` (``FunctionAgent``, ``ReActAgent``, ``CodeActAgent``):
  ``invoke_agent {name}``; in an ``AgentWorkflow``, each step an agent takes:
  ``invoke_agent {agent}``. A workflow's own steps are ``task {step}``; the steps of
  LlamaIndex's agents are their plumbing and get no span.
- a retriever's ``retrieve``: ``retrieval {class}`` (CLIENT), the query and the retrieved nodes
  as ``gen_ai.retrieval.*`` under the content policy;
- a response synthesizer's ``synthesize``: ``task {class}``;
- a tool's ``call``: ``execute_tool {name}``, arguments and result under the content policy;
- a model call (``LLMChatStartEvent`` ... ``LLMChatEndEvent``, the completion and embedding
  twins) is announced as a framework call (``genai._frameworks``): when the LLM class's client
  (``llama_index.llms.openai``'s openai SDK, ...) is instrumented by llm_otel, the client's span
  is the call's one span; otherwise the call is recorded when LlamaIndex says it ended, as the
  same ``chat {model}`` CLIENT span and GenAI metrics a client instrumentation gives.

Spans are parented by LlamaIndex's own span tree (its ``parent_id``), which holds under threads
and asyncio tasks, and the nearest span of ours is made current while LlamaIndex's span runs,
so that an instrumented client, HTTP calls and the app's own spans nest under it. Every hook is
guarded: a failure is reported and the app's query goes on.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import threading
from collections.abc import Callable, Mapping
from contextvars import ContextVar, Token
from types import AsyncGeneratorType, GeneratorType
from typing import Any

from llama_index.core.bridge.pydantic import PrivateAttr
from llama_index.core.instrumentation.event_handlers import BaseEventHandler
from llama_index.core.instrumentation.span.base import BaseSpan
from llama_index.core.instrumentation.span_handlers import BaseSpanHandler
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as ga
from opentelemetry.trace import Span, SpanKind
from opentelemetry.util.types import AttributeValue

from llm_otel._guard import call_guarded, report_internal_error
from llm_otel.genai import GenAITelemetry, LLMRequest, LLMResponse, call_observer
from llm_otel.genai._failure import end_span, fail_span, start_span
from llm_otel.genai._frameworks import AnnouncedCall
from llm_otel.genai._iterate import aiterate_under, iterate_under
from llm_otel.genai._observe import CallObserver
from llm_otel.genai._scope import scope_attributes
from llm_otel.instrumentation.llama_index import _messages
from llm_otel.semconv import manual as ours

__all__ = ["MAX_OPEN", "MAX_OPEN_CALLS", "EventHandler", "Recorder", "SpanHandler"]

_logger = logging.getLogger("llm_otel")

MAX_OPEN = 10_000
"""LlamaIndex spans followed at once; past this one is not recorded (one warning): a bound on
memory for an app whose spans never end (LlamaIndex ends them; a broken integration might
not)."""

MAX_OPEN_CALLS = 1_000
"""Model calls followed at once. A stream the app stops reading never tells LlamaIndex it ended;
past this the oldest call is forgotten to make room, so such streams cannot take the memory, or
the room of the calls after them."""

# Other vendors' LlamaIndex instrumentations, which add a span handler of their own to the root
# dispatcher and give each model call a span.
FOREIGN_HANDLERS = {
    "openinference": "openinference.instrumentation.llama_index",
    "openllmetry": "opentelemetry.instrumentation.llamaindex",
}
# The classes whose methods get a span, by the qualified name of a class in their MRO (nothing
# is imported: an integration's subclass counts), with the methods that do.
_KINDS = (
    ("llama_index.core.agent.workflow.multi_agent_workflow.AgentWorkflow", "agents"),
    ("llama_index.core.agent.workflow.base_agent.BaseWorkflowAgent", "agent"),
    ("workflows.workflow.Workflow", "workflow"),
    ("llama_index.core.base.base_query_engine.BaseQueryEngine", "query"),
    ("llama_index.core.chat_engine.types.BaseChatEngine", "chat_engine"),
    ("llama_index.core.base.base_retriever.BaseRetriever", "retriever"),
    ("llama_index.core.response_synthesizers.base.BaseSynthesizer", "synthesizer"),
    ("llama_index.core.tools.types.BaseTool", "tool"),
)
_METHODS = {
    "agents": frozenset({"run"}),
    "agent": frozenset({"run"}),
    "workflow": frozenset({"run"}),
    "query": frozenset({"query", "aquery"}),
    "chat_engine": frozenset({"chat", "achat", "stream_chat", "astream_chat"}),
    "retriever": frozenset({"retrieve", "aretrieve"}),
    "synthesizer": frozenset({"synthesize", "asynthesize"}),
    "tool": frozenset({"call", "acall", "__call__"}),
}
# LlamaIndex ends a workflow with these: not failures of the spans they leave.
_CONTROL_FLOW = frozenset({"WorkflowDone", "WorkflowCancelledByUser"})
_UUID_SUFFIX = 37  # LlamaIndex's span ids are "{Class}.{method}-{uuid4}"


_PROPAGATION_KEY = "llm_otel"
# The trace context a distributed workflow's sender captured, restored in this context (as
# LlamaIndex restores its own tags: for what runs here from now on).
_REMOTE_PARENT: ContextVar[otel_context.Context | None] = ContextVar(
    "llm_otel_llama_index_remote_parent", default=None
)


class _Step:
    """One of LlamaIndex's open spans: ``span`` ours (None: it has none), ``visible`` the
    nearest with one (itself, an ancestor, or None), ``steps`` what a workflow run's steps
    become (``"task"``, ``"agents"``, ``"hidden"``; None: not a workflow run)."""

    __slots__ = ("kind", "span", "steps", "token", "visible")

    def __init__(self, span: Span | None, visible: _Step | None, kind: str | None) -> None:
        self.span = span
        self.visible = visible if span is None else self
        self.kind = kind
        self.steps: str | None = None
        self.token: Token[Any] | None = None


class _ModelCall(AnnouncedCall):
    """A model or embedding call LlamaIndex announced; recorded at its end unless claimed."""

    __slots__ = ("request",)

    def __init__(self, request: LLMRequest, observer: CallObserver | None, foreign: bool) -> None:
        super().__init__(otel_context.get_current(), observer, foreign)
        self.request = request


class Recorder:
    """The state both handlers share: the telemetry (None while uninstrumented), the open
    spans and the announced calls, by LlamaIndex's span id."""

    def __init__(self) -> None:
        self.telemetry: GenAITelemetry | None = None
        self.steps: dict[str, _Step] = {}
        self.calls: dict[str, _ModelCall] = {}
        self.dispatcher: Any = None  # LlamaIndex's root dispatcher
        self._foreign: tuple[int, frozenset[str]] = (-1, frozenset())
        self._kinds: dict[type, str | None] = {}
        self._warned = False
        self._lock = threading.Lock()

    def foreign(self, span_id: str) -> bool:
        """Whether another vendor's LlamaIndex span handler gives the model call in LlamaIndex's
        span ``span_id`` a span (the call then gets our metrics, not a second span). Asked per
        call: a handler added after ours counts. OpenInference's spans every call; OpenLLMetry's
        leaves the LLM classes its client instrumentations cover (``OpenAI``) to those."""
        handlers = getattr(self.dispatcher, "span_handlers", None) or ()
        seen, vendors = self._foreign
        if seen != len(handlers):
            vendors = frozenset(
                vendor
                for h in handlers
                for vendor, prefix in FOREIGN_HANDLERS.items()
                if type(h).__module__.startswith(prefix)
            )
            self._foreign = (len(handlers), vendors)
        if "openinference" in vendors:
            return True
        if "openllmetry" in vendors:
            module = sys.modules.get(FOREIGN_HANDLERS["openllmetry"] + ".dispatcher_wrapper")
            deferred = getattr(module, "AVAILABLE_OPENLLMETRY_INSTRUMENTATIONS", ("OpenAI",))
            return span_id.partition(".")[0] not in deferred
        return False

    def _room(self) -> bool:
        if len(self.steps) < MAX_OPEN:
            return True
        with self._lock:
            if not self._warned:
                self._warned = True
                _logger.warning(
                    "llm_otel: %d LlamaIndex spans are open at once; spans past that are not "
                    "recorded (are spans ending?)",
                    MAX_OPEN,
                )
        return False

    def _kind(self, instance: Any) -> str | None:
        cls = type(instance)
        try:
            return self._kinds[cls]
        except KeyError:
            pass
        names = {f"{c.__module__}.{c.__qualname__}" for c in cls.__mro__}
        kind = next((k for name, k in _KINDS if name in names), None)
        if len(self._kinds) < 4096:
            self._kinds[cls] = kind
        return kind

    # spans ---------------------------------------------------------------------------------
    def enter(self, id_: str, bound: Any, instance: Any, parent_id: str | None) -> None:
        telemetry = self.telemetry
        if telemetry is None or not self._room():
            return
        parent = self.steps.get(parent_id) if parent_id is not None else None
        visible = parent.visible if parent is not None else None
        qualname = id_[:-_UUID_SUFFIX]
        method = qualname.rpartition(".")[2]
        kind = self._kind(instance) if instance is not None else None
        step: _Step | None = None
        if kind is not None and method in _METHODS[kind]:
            step = self._open_span(telemetry, kind, instance, bound, visible)
        elif instance is None and parent is not None and parent.steps is not None:
            step = self._workflow_step(telemetry, parent, method, bound)
        if step is None:
            step = _Step(None, visible, kind)
        self.steps[id_] = step
        # A workflow's run returns a future, which LlamaIndex ends from the event loop: nothing
        # attached in the caller's context could be detached. Its steps attach their own.
        target = step.visible
        if (
            target is not None
            and target.span is not None
            and step.steps is None
            and trace.get_current_span() is not target.span
        ):
            step.token = otel_context.attach(trace.set_span_in_context(target.span))

    def _open_span(
        self,
        telemetry: GenAITelemetry,
        kind: str,
        instance: Any,
        bound: Any,
        visible: _Step | None,
    ) -> _Step:
        name = type(instance).__name__
        attributes: dict[str, AttributeValue]
        content: tuple[str, Callable[[], Any]] | None = None
        steps = None
        span_kind = SpanKind.INTERNAL
        if kind == "agent":
            agent = str(getattr(instance, "name", None) or name)
            attributes = {ga.GEN_AI_OPERATION_NAME: "invoke_agent", ga.GEN_AI_AGENT_NAME: agent}
            description = getattr(instance, "description", None)
            if isinstance(description, str) and description:
                attributes[ga.GEN_AI_AGENT_DESCRIPTION] = description
            span_name, steps = f"invoke_agent {agent}", "hidden"
        elif kind == "tool":
            metadata = getattr(instance, "metadata", None)
            tool = str(getattr(metadata, "name", None) or name)
            attributes = {ga.GEN_AI_OPERATION_NAME: "execute_tool", ga.GEN_AI_TOOL_NAME: tool,
                          ga.GEN_AI_TOOL_TYPE: "function"}  # fmt: skip
            description = getattr(metadata, "description", None)
            if isinstance(description, str) and description:
                attributes[ga.GEN_AI_TOOL_DESCRIPTION] = description[:1024]
            span_name = f"execute_tool {tool}"
            content = (ga.GEN_AI_TOOL_CALL_ARGUMENTS,
                       lambda: _messages.tool_arguments(bound.arguments))  # fmt: skip
        elif kind == "retriever":
            attributes = {ga.GEN_AI_OPERATION_NAME: "retrieval", ga.GEN_AI_DATA_SOURCE_ID: name}
            span_name, span_kind = f"retrieval {name}", SpanKind.CLIENT
            query = bound.arguments.get("str_or_query_bundle")
            content = (ga.GEN_AI_RETRIEVAL_QUERY_TEXT, lambda: _messages.query_text(query))
        elif visible is None and kind != "synthesizer":
            attributes = {ga.GEN_AI_OPERATION_NAME: "invoke_workflow",
                          ga.GEN_AI_WORKFLOW_NAME: name}  # fmt: skip
            span_name = f"invoke_workflow {name}"
        else:
            attributes = {ours.LLM_OTEL_TASK_NAME: name}
            span_name = f"task {name}"
        if kind == "workflow":
            steps = "task"
        elif kind == "agents":
            steps = "agents"
        step = self._start(telemetry, span_name, span_kind, attributes, visible)
        step.steps, step.kind = steps, kind
        if content is not None:
            call_guarded("llama_index span content", self._content, step, *content)
        return step

    def _workflow_step(
        self, telemetry: GenAITelemetry, run: _Step, method: str, bound: Any
    ) -> _Step | None:
        if run.steps == "task":
            return self._start(telemetry, f"task {method}", SpanKind.INTERNAL,
                               {ours.LLM_OTEL_TASK_NAME: method}, run.visible)  # fmt: skip
        if run.steps == "agents" and method == "run_agent_step":
            agent = getattr(bound.arguments.get("ev"), "current_agent_name", None)
            if isinstance(agent, str) and agent:
                attributes: dict[str, AttributeValue] = {
                    ga.GEN_AI_OPERATION_NAME: "invoke_agent",
                    ga.GEN_AI_AGENT_NAME: agent,
                }
                return self._start(telemetry, f"invoke_agent {agent}", SpanKind.INTERNAL,
                                   attributes, run.visible)  # fmt: skip
        return None

    def _start(
        self,
        telemetry: GenAITelemetry,
        name: str,
        kind: SpanKind,
        attributes: dict[str, AttributeValue],
        parent: _Step | None,
    ) -> _Step:
        scoped = scope_attributes()
        if scoped:
            attributes.update(scoped)
        context = None
        if parent is not None and parent.span is not None:
            context = trace.set_span_in_context(parent.span)
        else:
            remote = _REMOTE_PARENT.get()
            if remote is not None and not trace.get_current_span().get_span_context().is_valid:
                context = remote
        return _Step(start_span(telemetry.tracer, name, kind, attributes, context), None, None)

    def _content(self, step: _Step, key: str, compute: Callable[[], Any]) -> None:
        """``key`` on the step's span, its value computed only when content goes on spans."""
        telemetry = self.telemetry
        span = step.span
        if telemetry is None or span is None or not telemetry.content.on_span:
            return
        if span.is_recording():
            value = compute()
            if value is not None:
                span.set_attribute(key, telemetry.content.attribute_text(value))

    def exit(self, id_: str, result: Any, error: BaseException | None) -> None:
        step = self.steps.pop(id_, None)
        token = step.token if step is not None else None
        if token is not None:
            # ValueError: ended in another context than it began (a future's callback)
            with contextlib.suppress(ValueError):
                token.var.reset(token)
        if error is not None:
            call = self.calls.pop(id_, None)
            if call is not None:
                call_guarded("llama_index model call end", self.end_call, call, None, error)
        span = step.span if step is not None else None
        if step is None or span is None:
            return
        try:
            self._outcome(step, span, result, error)
        except Exception as internal:
            report_internal_error("llama_index span end", internal)
        finally:
            end_span(span)

    def _outcome(self, step: _Step, span: Span, result: Any, error: BaseException | None) -> None:
        """What the span says about how its step ended, before it ends."""
        telemetry = self.telemetry
        if error is not None:
            if telemetry is not None and type(error).__name__ not in _CONTROL_FLOW:
                fail_span(span, error, telemetry.content)
        elif step.kind in ("query", "synthesizer") and result is not None:
            _follow_stream(result, span)
        elif step.kind == "tool":
            self._content(step, ga.GEN_AI_TOOL_CALL_RESULT, lambda: _messages.tool_result(result))
        elif step.kind == "retriever":
            self._content(step, ga.GEN_AI_RETRIEVAL_DOCUMENTS, lambda: _messages.documents(result))

    # model and embedding calls ----------------------------------------------------------------
    def announce(
        self, span_id: str | None, request: LLMRequest, observer: CallObserver | None
    ) -> None:
        if span_id is None:
            return
        calls = self.calls
        while len(calls) >= MAX_OPEN_CALLS:
            # The oldest are streams the app stopped reading (a client that went away): nothing
            # will end them. Forgotten, unrecorded, to make room (no span was opened for them).
            try:
                oldest = next(iter(calls))
                calls.pop(oldest).call.ended = True
            except (StopIteration, KeyError, RuntimeError):
                break  # emptied or changed by another thread meanwhile
        calls[span_id] = _ModelCall(request, observer, self.foreign(span_id))

    def chunk(self, span_id: str | None) -> None:
        call = self.calls.get(span_id) if span_id is not None else None
        if call is not None:
            call.note_chunk()

    def end_call(
        self, call: _ModelCall, response: LLMResponse | None, error: BaseException | None
    ) -> None:
        """LlamaIndex said the call ended (``call`` is out of :attr:`calls`)."""
        call.record(self.telemetry, call.request, response, error)

    def capture(self, observer: CallObserver | None) -> bool:
        telemetry = self.telemetry
        return telemetry is not None and (telemetry.content.enabled or observer is not None)

    def close(self) -> None:
        """End every span still open and forget every call (uninstrument)."""
        steps, self.steps = self.steps, {}
        calls, self.calls = self.calls, {}
        for step in steps.values():
            if step.span is not None:
                end_span(step.span)
        for call in calls.values():
            call.call.ended = True


def _follow_stream(result: Any, span: Span) -> None:
    """A streamed query's answer (``StreamingResponse``, ``AsyncStreamingResponse``) is generated
    as the app reads it, after the query's span ended and LlamaIndex closed its span tree: its
    generator is wrapped so that the model call it makes nests under the query's span."""
    generator = getattr(result, "response_gen", None)
    if isinstance(generator, GeneratorType):
        result.response_gen = iterate_under(span, generator)
    elif isinstance(generator, AsyncGeneratorType):
        result.response_gen = aiterate_under(span, generator)


class SpanHandler(BaseSpanHandler[BaseSpan]):  # type: ignore[misc]
    """Added to LlamaIndex's root dispatcher: its span notices, to the :class:`Recorder`."""

    _recorder: Recorder = PrivateAttr()

    def __init__(self, recorder: Recorder) -> None:
        super().__init__()
        self._recorder = recorder

    @classmethod
    def class_name(cls) -> str:
        return "LLMOtelSpanHandler"

    def span_enter(self, id_: str, bound_args: Any, instance: Any = None,
                   parent_id: str | None = None, **kwargs: Any) -> None:  # fmt: skip
        call_guarded("llama_index span enter", self._recorder.enter, id_, bound_args, instance,
                     parent_id)  # fmt: skip

    def span_exit(self, id_: str, bound_args: Any, instance: Any = None, result: Any = None,
                  **kwargs: Any) -> None:  # fmt: skip
        call_guarded("llama_index span exit", self._recorder.exit, id_, result, None)

    def span_drop(self, id_: str, bound_args: Any, instance: Any = None,
                  err: BaseException | None = None, **kwargs: Any) -> None:  # fmt: skip
        call_guarded("llama_index span drop", self._recorder.exit, id_, None,
                     err if err is not None else RuntimeError("dropped"))  # fmt: skip

    # Across processes (LlamaIndex's distributed workflows): the trace context of the span
    # current where LlamaIndex captures, in W3C form under a key of ours; restored as the
    # parent of the spans the receiving side starts with no parent of its own.
    def capture_propagation_context(self) -> dict[str, Any]:
        carrier: dict[str, str] = {}
        call_guarded("llama_index propagation capture", propagate.inject, carrier)
        return {_PROPAGATION_KEY: carrier} if carrier else {}

    def restore_propagation_context(self, context: dict[str, Any]) -> None:
        carrier = context.get(_PROPAGATION_KEY) if isinstance(context, Mapping) else None
        if isinstance(carrier, Mapping):
            _REMOTE_PARENT.set(propagate.extract(dict(carrier)))

    # The base class's bookkeeping (open_spans) is not used: the recorder keeps its own.
    def new_span(self, *args: Any, **kwargs: Any) -> None:
        return None

    def prepare_to_exit_span(self, *args: Any, **kwargs: Any) -> None:
        return None

    def prepare_to_drop_span(self, *args: Any, **kwargs: Any) -> None:
        return None


_CHAT_START = "LLMChatStartEvent"
_COMPLETION_START = "LLMCompletionStartEvent"
_PROGRESS = frozenset({"LLMChatInProgressEvent", "LLMCompletionInProgressEvent"})
_ENDS = frozenset({"LLMChatEndEvent", "LLMCompletionEndEvent"})
_EMBEDDING_STARTS = frozenset({"EmbeddingStartEvent", "SparseEmbeddingStartEvent"})
_EMBEDDING_ENDS = frozenset({"EmbeddingEndEvent", "SparseEmbeddingEndEvent"})


class EventHandler(BaseEventHandler):  # type: ignore[misc]
    """Added to LlamaIndex's root dispatcher: the model and embedding call events."""

    _recorder: Recorder = PrivateAttr()

    def __init__(self, recorder: Recorder) -> None:
        super().__init__()
        self._recorder = recorder

    @classmethod
    def class_name(cls) -> str:
        return "LLMOtelEventHandler"

    def handle(self, event: Any, **kwargs: Any) -> None:
        recorder: Recorder = self._recorder
        if recorder.telemetry is None:
            return
        name = type(event).__name__
        if name in _PROGRESS:
            recorder.chunk(event.span_id)
        elif name in _ENDS or name in _EMBEDDING_ENDS or name == "ExceptionEvent":
            call_guarded("llama_index model call end", self._end, recorder, name, event)
        elif name in (_CHAT_START, _COMPLETION_START) or name in _EMBEDDING_STARTS:
            call_guarded("llama_index model call start", self._start, recorder, name, event)

    @staticmethod
    def _start(recorder: Recorder, name: str, event: Any) -> None:
        model_dict = event.model_dict if isinstance(event.model_dict, Mapping) else {}
        if name in _EMBEDDING_STARTS:
            recorder.announce(event.span_id, _messages.embedding_request(model_dict), None)
            return
        observer = call_observer()  # sampled for online evaluation: content needed in memory
        capture = recorder.capture(observer)
        if name == _CHAT_START:
            request = _messages.model_request("chat", model_dict, event.messages, capture)
        else:
            request = _messages.model_request("text_completion", model_dict, event.prompt,
                                              capture)  # fmt: skip
        recorder.announce(event.span_id, request, observer)

    @staticmethod
    def _end(recorder: Recorder, name: str, event: Any) -> None:
        span_id = event.span_id
        call = recorder.calls.pop(span_id, None) if span_id is not None else None
        if call is None:
            return
        error = event.exception if name == "ExceptionEvent" else None
        response = None
        try:
            if name in _EMBEDDING_ENDS:
                response = _messages.embedding_response(event.embeddings)
            elif error is None and event.response is not None and call.unclaimed:
                capture = recorder.capture(call.observer)
                response = _messages.model_response(event.response, capture)
        except Exception as internal:
            report_internal_error("llama_index model result", internal)
        recorder.end_call(call, response, error)
