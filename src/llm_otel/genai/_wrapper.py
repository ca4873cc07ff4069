"""wrapt wrappers shared by every provider: an adapter maps, this module records.

The wrapper starts an invocation from the adapter's request description, makes the span current
for the duration of the client call, and either ends it with the adapter's response description
or hands a stream to a proxy. A call made while another llm_otel-instrumented call is in progress
(a wrapper library calling an instrumented client, a helper calling ``create``) or while OTel
instrumentation is suppressed is passed through untouched, so each LLM call gets one span. A call
that another vendor's GenAI instrumentation already traces gets our metrics but not a second span
(see ``_coexist``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry.context import detach as _detach
from opentelemetry.context import get_current as _current_context
from opentelemetry.instrumentation.utils import is_instrumentation_enabled, suppress_instrumentation

from llm_otel._guard import report_internal_error
from llm_otel.genai._abandoned import PENDING, drain_abandoned
from llm_otel.genai._adapter import Adapter
from llm_otel.genai._coexist import traced_elsewhere
from llm_otel.genai._deferred import defer
from llm_otel.genai._frameworks import _OPEN as _FRAMEWORK_CALLS
from llm_otel.genai._frameworks import claim_framework_call
from llm_otel.genai._incall import IN_CALL as _IN_CALL
from llm_otel.genai._incall import in_instrumented_call
from llm_otel.genai._invocation import Invocation
from llm_otel.genai._observe import call_observer
from llm_otel.genai._streams import AsyncStreamProxy, SyncStreamProxy, async_only, make_proxy
from llm_otel.genai._telemetry import GenAITelemetry

__all__ = ["Adapter", "async_wrapper", "in_instrumented_call", "sync_wrapper"]


def _suppression_keys() -> frozenset[str]:
    """The context keys ``suppress_instrumentation()`` sets, read off the API (in an empty
    context), not imported from its private modules: ``is_instrumentation_enabled()`` reads
    them with a ``get_value`` each, seven frames a call. A context holding none of them is not
    suppressed, so the wrappers ask ``is_instrumentation_enabled()`` only when one is there
    (its answer stays the rule: a key set to False does not suppress)."""
    token = otel_context.attach(otel_context.Context())
    try:
        with suppress_instrumentation():
            return frozenset(_current_context())
    finally:
        otel_context.detach(token)


_SUPPRESSION_KEYS = _suppression_keys()
# Found none (an API that suppresses some other way): ask on every call.
_ASK_ALWAYS = not _SUPPRESSION_KEYS


def _fail(adapter: Adapter, invocation: Invocation, exc: BaseException) -> None:
    """End ``invocation`` with the client's exception, and what the adapter reads from it."""
    response = None
    try:
        response = adapter.error_response(exc)
    except Exception as internal:
        report_internal_error(f"{type(adapter).__name__}.error_response", internal)
    invocation.fail(exc, response)


def _start(
    telemetry: GenAITelemetry,
    adapter: Adapter,
    wrapped: Any,
    instance: Any,
    args: tuple[Any, ...],
    kwargs: Mapping[str, Any],
    current: otel_context.Context,
) -> tuple[Invocation, object] | None:
    """The call's invocation, its span made current, and the token that undoes that; None
    when the adapter failed. ``current``: the current context (what is traced above, the
    span's parent, and what the span is made current in)."""
    if PENDING:  # streams abandoned since the last call: end them here, outside any lock
        drain_abandoned(wait=False)
    # A framework (LangChain) that announced this call leaves it to us; if another vendor's
    # instrumentation of the framework gave it a span, ours would be a second one.
    framework = claim_framework_call() if _FRAMEWORK_CALLS.get() else None
    try:
        observer = call_observer()  # sampled for online evaluation: content needed in memory
        content = telemetry.content
        request = adapter.request(instance, args, kwargs, content.enabled or observer is not None)
        invocation = Invocation(
            telemetry,
            request,
            own_span=not (
                (framework is not None and framework.traced_elsewhere)
                or traced_elsewhere(wrapped, instance, current)
            ),
            classify=adapter.error_type,
            observer=observer,
            parent=current,
            content=content,
        )
    except Exception as exc:
        report_internal_error(f"{type(adapter).__name__}.request", exc)
        return None
    return invocation, invocation.attach(current)


def _result(
    telemetry: GenAITelemetry,
    adapter: Adapter,
    invocation: Invocation,
    result: Any,
    proxy: type[SyncStreamProxy] | type[AsyncStreamProxy],
) -> Any:
    capture = invocation.content.enabled or invocation.observed
    try:
        accumulator = adapter.stream_accumulator(result, capture)
        if accumulator is not None:
            embedded = adapter.embed_stream(  # the stream sits inside the result (botocore)
                result, lambda stream, cls: make_proxy(cls, stream, invocation, accumulator)
            )
            if embedded is not None:
                return embedded
            if proxy is SyncStreamProxy and async_only(result):
                proxy = AsyncStreamProxy  # a plain call that hands back an async generator
            return make_proxy(proxy, result, invocation, accumulator)
        if adapter.body_unread(result):  # with_streaming_response: ends when the app reads it
            defer(result, invocation, adapter, capture)
            return result
        invocation.finish(adapter.response(result, capture))
    except Exception as exc:
        report_internal_error(f"{type(adapter).__name__}.response", exc)
        invocation.finish(None)
    return result


def sync_wrapper(telemetry: GenAITelemetry, adapter: Adapter) -> Callable[..., Any]:
    """A wrapt wrapper for a synchronous client method."""

    def wrapper(wrapped: Callable[..., Any], instance: Any, args: Any, kwargs: Any) -> Any:
        # Not ours to record (inside another recorded call, off, or suppressed); written out
        # here and in async_wrapper rather than called: a frame less on every call.
        current = _current_context()  # read once for the whole call
        if (
            _IN_CALL.get() is not None
            or not telemetry.active
            or (
                (_ASK_ALWAYS or not _SUPPRESSION_KEYS.isdisjoint(current))
                and not is_instrumentation_enabled()
            )
        ):
            return wrapped(*args, **kwargs)
        started = _start(telemetry, adapter, wrapped, instance, args, kwargs, current)
        if started is None:
            return wrapped(*args, **kwargs)
        invocation, token = started
        in_call = _IN_CALL.set(invocation)
        try:
            result = wrapped(*args, **kwargs)
        except BaseException as exc:
            _fail(adapter, invocation, exc)
            raise
        finally:
            _IN_CALL.reset(in_call)
            _detach(token)  # type: ignore[arg-type]
        return _result(telemetry, adapter, invocation, result, SyncStreamProxy)

    return wrapper


def async_wrapper(telemetry: GenAITelemetry, adapter: Adapter) -> Callable[..., Any]:
    """A wrapt wrapper for a coroutine client method."""

    async def call(
        wrapped: Callable[..., Awaitable[Any]], instance: Any, args: Any, kwargs: Any
    ) -> Any:
        current = _current_context()  # read once for the whole call
        if (
            _IN_CALL.get() is not None
            or not telemetry.active
            or (
                (_ASK_ALWAYS or not _SUPPRESSION_KEYS.isdisjoint(current))
                and not is_instrumentation_enabled()
            )
        ):
            return await wrapped(*args, **kwargs)
        started = _start(telemetry, adapter, wrapped, instance, args, kwargs, current)
        if started is None:
            return await wrapped(*args, **kwargs)
        invocation, token = started
        in_call = _IN_CALL.set(invocation)
        try:
            result = await wrapped(*args, **kwargs)
        except BaseException as exc:
            _fail(adapter, invocation, exc)
            raise
        finally:
            _IN_CALL.reset(in_call)
            _detach(token)  # type: ignore[arg-type]
        return _result(telemetry, adapter, invocation, result, AsyncStreamProxy)

    return call
