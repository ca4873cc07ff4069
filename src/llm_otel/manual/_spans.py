"""Spans for the work around LLM calls: workflows, tasks, agents, tools, retrieval.

Each factory works as a context manager (``with llm_otel.tool("search") as t: ...``) and as a
decorator (``@llm_otel.tool`` / ``@llm_otel.tool("search")``) on functions, coroutines and
(async) generators; a generator's span covers its whole iteration. An exception marks the span
as failed (status ERROR, ``error.type``) and is re-raised unchanged.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterator
from contextlib import aclosing, contextmanager
from typing import Any, TypeVar, overload

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as ga
from opentelemetry.trace import Span, SpanKind
from opentelemetry.util.types import AttributeValue

from llm_otel._guard import report_internal_error
from llm_otel.genai._failure import end_span, fail_span, start_span
from llm_otel.genai._iterate import aiterate_under, iterate_under
from llm_otel.genai._scope import scope_attributes
from llm_otel.manual._defaults import default_telemetry
from llm_otel.semconv import manual as ours

__all__ = ["OperationSpan", "agent", "retrieval", "task", "tool", "workflow"]

F = TypeVar("F", bound=Callable[..., Any])
_ContentFor = Callable[[tuple[Any, ...], dict[str, Any]], dict[str, Any]]


class OperationSpan:
    """The handle a ``with`` block gets: set attributes, a tool's result, retrieved documents."""

    def __init__(self, span: Span, capture_content: bool) -> None:
        self.span = span
        self._capture = capture_content

    def set_attribute(self, key: str, value: AttributeValue) -> None:
        self.span.set_attribute(key, value)

    def set_result(self, result: Any) -> None:
        """A tool's result (recorded only when content capture is on)."""
        self._content(ga.GEN_AI_TOOL_CALL_RESULT, result)

    def set_documents(self, documents: list[Any]) -> None:
        """Retrieved documents (recorded only when content capture is on)."""
        self._content(ga.GEN_AI_RETRIEVAL_DOCUMENTS, documents)

    def _content(self, key: str, value: Any) -> None:
        if not self._capture or not self.span.is_recording():
            return
        policy = default_telemetry().content
        try:
            self.span.set_attribute(key, policy.attribute_text(value))
        except Exception as exc:
            report_internal_error(f"manual span {key}", exc)


class _Operation:
    """A span factory usable as a context manager or a decorator."""

    def __init__(
        self,
        name: str,
        attributes: dict[str, AttributeValue],
        kind: SpanKind = SpanKind.INTERNAL,
        content: dict[str, Any] | None = None,
        bind_arguments: bool = False,
    ) -> None:
        self._name = name
        self._attributes = attributes
        self._kind = kind
        self._content = content or {}
        self._bind_arguments = bind_arguments
        self._open: list[Any] = []  # entered context managers (a factory may be nested)

    # context manager -------------------------------------------------------------------------
    def __enter__(self) -> OperationSpan:
        cm = self._run(self._content)
        handle = cm.__enter__()
        self._open.append(cm)
        return handle

    def __exit__(self, *exc_info: Any) -> Any:
        return self._open.pop().__exit__(*exc_info)

    @contextmanager
    def _run(self, content: dict[str, Any], attach: bool = True) -> Iterator[OperationSpan]:
        telemetry = default_telemetry()
        attributes = {**self._attributes, **scope_attributes()}
        span = start_span(telemetry.tracer, self._name, self._kind, attributes)
        handle = OperationSpan(span, telemetry.content.on_span)
        for key, value in content.items():
            handle._content(key, value)
        token = otel_context.attach(trace.set_span_in_context(span)) if attach else None
        try:
            yield handle
        except GeneratorExit:
            raise  # a generator abandoned by its consumer: an ending, not a failure
        except BaseException as exc:
            try:
                fail_span(span, exc, telemetry.content)
            except Exception as internal:
                report_internal_error(f"manual span {self._name} failure", internal)
            raise
        finally:
            if token is not None:
                otel_context.detach(token)
            end_span(span)

    # decorator -------------------------------------------------------------------------------
    def __call__(self, fn: F) -> F:
        def content_for(args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
            if not self._bind_arguments:
                return self._content
            try:
                bound = inspect.signature(fn).bind_partial(*args, **kwargs)
                return {**self._content, ga.GEN_AI_TOOL_CALL_ARGUMENTS: dict(bound.arguments)}
            except Exception:
                return self._content

        if inspect.isasyncgenfunction(fn):
            return self._async_generator(fn, content_for)  # type: ignore[no-any-return]
        if inspect.isgeneratorfunction(fn):
            return self._generator(fn, content_for)  # type: ignore[no-any-return]
        if inspect.iscoroutinefunction(fn):
            return self._coroutine(fn, content_for)  # type: ignore[no-any-return]
        return self._function(fn, content_for)  # type: ignore[no-any-return]

    # Generators: the span covers the whole iteration but is current only while the generator's
    # own code runs, never while the consumer runs between items.
    def _async_generator(self, fn: Callable[..., Any], content_for: _ContentFor) -> Any:
        @functools.wraps(fn)
        async def agen(*args: Any, **kwargs: Any) -> Any:
            with self._run(content_for(args, kwargs), attach=False) as handle:
                items = aiterate_under(handle.span, fn(*args, **kwargs))
                async with aclosing(items):
                    async for item in items:
                        yield item

        return agen

    def _generator(self, fn: Callable[..., Any], content_for: _ContentFor) -> Any:
        @functools.wraps(fn)
        def gen(*args: Any, **kwargs: Any) -> Any:
            with self._run(content_for(args, kwargs), attach=False) as handle:
                return (yield from iterate_under(handle.span, fn(*args, **kwargs)))

        return gen

    def _coroutine(self, fn: Callable[..., Any], content_for: _ContentFor) -> Any:
        @functools.wraps(fn)
        async def coro(*args: Any, **kwargs: Any) -> Any:
            with self._run(content_for(args, kwargs)) as handle:
                result = await fn(*args, **kwargs)
                if self._bind_arguments:
                    handle.set_result(result)
                return result

        return coro

    def _function(self, fn: Callable[..., Any], content_for: _ContentFor) -> Any:
        @functools.wraps(fn)
        def sync(*args: Any, **kwargs: Any) -> Any:
            with self._run(content_for(args, kwargs)) as handle:
                result = fn(*args, **kwargs)
                if self._bind_arguments:
                    handle.set_result(result)
                return result

        return sync


class _Unnamed:
    """``@factory()`` or ``@factory(option=...)`` without a name: the decorated function's
    qualified name is the name. A ``with`` block has no function to name it after."""

    def __init__(self, factory: str, build: Callable[[str], _Operation]) -> None:
        self._factory = factory
        self._build = build

    def __call__(self, fn: F) -> F:
        return self._build(fn.__qualname__)(fn)

    def __enter__(self) -> Any:
        raise TypeError(
            f"llm_otel.{self._factory}() in a with block needs a name: "
            f'with llm_otel.{self._factory}("name"): ...'
        )

    def __exit__(self, *exc_info: Any) -> None:  # pragma: no cover - __enter__ raised
        return None


def _named(factory: str, fn_or_name: Any, build: Callable[[str], _Operation]) -> Any:
    """Support ``@factory``, ``@factory()``, ``@factory("name")`` and ``with factory("name")``."""
    if fn_or_name is None:
        return _Unnamed(factory, build)
    if isinstance(fn_or_name, str):
        if not fn_or_name:
            raise ValueError(f"llm_otel.{factory}(): the name is empty")
        return build(fn_or_name)
    if callable(fn_or_name):
        return _Unnamed(factory, build)(fn_or_name)
    raise TypeError(
        f"llm_otel.{factory}() takes a name (str) or decorates a function, "
        f"not {type(fn_or_name).__name__}"
    )


@overload
def workflow(name: F) -> F: ...
@overload
def workflow(name: str, **attributes: AttributeValue) -> _Operation: ...
@overload
def workflow(name: None = None, **attributes: AttributeValue) -> Callable[[F], F]: ...
def workflow(name: Any = None, **attributes: AttributeValue) -> Any:
    """A whole GenAI workflow (``invoke_workflow {name}``), e.g. one user request end to end."""
    return _named("workflow", name, lambda n: _Operation(
        f"invoke_workflow {n}",
        {ga.GEN_AI_OPERATION_NAME: "invoke_workflow", ga.GEN_AI_WORKFLOW_NAME: n, **attributes},
    ))  # fmt: skip


@overload
def task(name: F) -> F: ...
@overload
def task(name: str, **attributes: AttributeValue) -> _Operation: ...
@overload
def task(name: None = None, **attributes: AttributeValue) -> Callable[[F], F]: ...
def task(name: Any = None, **attributes: AttributeValue) -> Any:
    """A step inside a workflow (``task {name}``); the conventions have no operation for it."""
    return _named("task", name, lambda n: _Operation(
        f"task {n}", {ours.LLM_OTEL_TASK_NAME: n, **attributes}
    ))  # fmt: skip


@overload
def agent(name: F) -> F: ...
@overload
def agent(
    name: str,
    *,
    agent_id: str | None = None,
    description: str | None = None,
    provider: str | None = None,
    model: str | None = None,
) -> _Operation: ...
@overload
def agent(
    name: None = None,
    *,
    agent_id: str | None = None,
    description: str | None = None,
    provider: str | None = None,
    model: str | None = None,
) -> Callable[[F], F]: ...
def agent(
    name: Any = None,
    *,
    agent_id: str | None = None,
    description: str | None = None,
    provider: str | None = None,
    model: str | None = None,
) -> Any:
    """An agent invocation (``invoke_agent {name}``), run in this process."""

    def build(n: str) -> _Operation:
        attrs: dict[str, AttributeValue] = {
            ga.GEN_AI_OPERATION_NAME: "invoke_agent",
            ga.GEN_AI_AGENT_NAME: n,
        }
        for key, value in ((ga.GEN_AI_AGENT_ID, agent_id),
                           (ga.GEN_AI_AGENT_DESCRIPTION, description),
                           (ga.GEN_AI_PROVIDER_NAME, provider),
                           (ga.GEN_AI_REQUEST_MODEL, model)):  # fmt: skip
            if value is not None:
                attrs[key] = value
        return _Operation(f"invoke_agent {n}", attrs)

    return _named("agent", name, build)


@overload
def tool(name: F) -> F: ...
@overload
def tool(
    name: str,
    *,
    call_id: str | None = None,
    description: str | None = None,
    tool_type: str = "function",
    arguments: Any = None,
) -> _Operation: ...
@overload
def tool(
    name: None = None,
    *,
    call_id: str | None = None,
    description: str | None = None,
    tool_type: str = "function",
    arguments: Any = None,
) -> Callable[[F], F]: ...
def tool(
    name: Any = None,
    *,
    call_id: str | None = None,
    description: str | None = None,
    tool_type: str = "function",
    arguments: Any = None,
) -> Any:
    """A tool execution (``execute_tool {name}``). As a decorator it records the call's
    arguments and return value as ``gen_ai.tool.call.arguments``/``.result`` when content
    capture is on; in a ``with`` block pass ``arguments=`` and call ``set_result()``."""

    def build(n: str) -> _Operation:
        attrs: dict[str, AttributeValue] = {
            ga.GEN_AI_OPERATION_NAME: "execute_tool",
            ga.GEN_AI_TOOL_NAME: n,
            ga.GEN_AI_TOOL_TYPE: tool_type,
        }
        if call_id is not None:
            attrs[ga.GEN_AI_TOOL_CALL_ID] = call_id
        if description is not None:
            attrs[ga.GEN_AI_TOOL_DESCRIPTION] = description
        content = {} if arguments is None else {ga.GEN_AI_TOOL_CALL_ARGUMENTS: arguments}
        return _Operation(f"execute_tool {n}", attrs, content=content, bind_arguments=True)

    return _named("tool", name, build)


def retrieval(data_source_id: str | None = None, *, query: str | None = None) -> _Operation:
    """A retrieval from a vector store or search index (``retrieval {data_source_id}``, CLIENT).
    The query text and, through ``set_documents()``, the documents are content (opt-in)."""
    attrs: dict[str, AttributeValue] = {ga.GEN_AI_OPERATION_NAME: "retrieval"}
    if data_source_id is not None:
        attrs[ga.GEN_AI_DATA_SOURCE_ID] = data_source_id
    content = {} if query is None else {ga.GEN_AI_RETRIEVAL_QUERY_TEXT: query}
    name = f"retrieval {data_source_id}" if data_source_id else "retrieval"
    return _Operation(name, attrs, kind=SpanKind.CLIENT, content=content)
