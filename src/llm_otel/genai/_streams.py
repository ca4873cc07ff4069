"""Stream proxies that end an invocation exactly once, however the stream ends.

A stream ends when it is exhausted, raises, is closed (on the stream or on its HTTP response,
which is what the client libraries' own stream helpers close), leaves a ``with`` block, or is
garbage collected unfinished. The proxy keeps the wrapped stream's type checks, attributes and
behaviour; every ending funnels into ``_self_finalize``.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any, Protocol

import wrapt

from llm_otel._guard import report_internal_error
from llm_otel.genai._incall import IN_CALL
from llm_otel.genai._invocation import Invocation
from llm_otel.genai._types import LLMResponse

__all__ = ["AsyncStreamProxy", "IterableStreamProxy", "StreamAccumulator", "SyncStreamProxy"]

# wrapt 2 types ObjectProxy as generic; wrapt 1 cannot be subscripted at run time.
if TYPE_CHECKING:
    _Proxy = wrapt.ObjectProxy[Any]
else:
    _Proxy = wrapt.ObjectProxy


class StreamAccumulator(Protocol):
    """Folds a provider's stream items into one response."""

    error_type: str | None
    """Set when the stream itself reported a failure (an error event) without raising."""

    def add(self, item: Any) -> None: ...

    def response(self) -> LLMResponse: ...


def _finalize(
    invocation: Invocation, accumulator: StreamAccumulator, exc: BaseException | None
) -> None:
    if invocation.done:
        return
    response: LLMResponse | None = None
    try:
        response = accumulator.response()
    except Exception as internal:
        report_internal_error("stream response", internal)
    error_type = getattr(accumulator, "error_type", None)
    if exc is not None or error_type is not None:
        invocation.fail(exc, response, error_type)
    else:
        invocation.finish(response)


def _observer(invocation: Invocation, accumulator: StreamAccumulator) -> Any:
    """One bound function per stream for the per-chunk work (it runs for every chunk)."""
    on_chunk = invocation.on_chunk
    add = accumulator.add

    def observe(item: Any) -> None:
        try:
            on_chunk()
            add(item)
        except Exception as internal:
            report_internal_error("stream chunk", internal)

    return observe


class _ClosingResponse(_Proxy):
    """The stream's HTTP response; closing it ends the invocation too."""

    def __init__(self, wrapped: Any, stream: Any) -> None:
        super().__init__(wrapped)
        self._self_stream = stream

    def close(self) -> Any:
        try:
            return self.__wrapped__.close()
        finally:
            self._self_stream._self_finalize(None)

    async def aclose(self) -> Any:
        try:
            return await self.__wrapped__.aclose()
        finally:
            self._self_stream._self_finalize(None)


class _StreamProxyBase(_Proxy):
    def __init__(self, wrapped: Any, invocation: Invocation, accumulator: StreamAccumulator):
        super().__init__(wrapped)
        self._self_invocation = invocation
        self._self_accumulator = accumulator
        self._self_observe = _observer(invocation, accumulator)
        self._self_response: Any = None

    def _self_finalize(self, exc: BaseException | None) -> None:
        _finalize(self._self_invocation, self._self_accumulator, exc)

    @property
    def response(self) -> Any:
        if self._self_response is None:
            self._self_response = _ClosingResponse(self.__wrapped__.response, self)
        return self._self_response

    def close(self) -> Any:
        try:
            result = self.__wrapped__.close()
        except BaseException as exc:
            self._self_finalize(exc)
            raise
        if inspect.isawaitable(result):
            return self._self_await_close(result)
        self._self_finalize(None)
        return result

    async def _self_await_close(self, pending: Awaitable[Any]) -> Any:
        try:
            return await pending
        finally:
            self._self_finalize(None)

    def __del__(self) -> None:
        # An abandoned stream: end the span with what arrived so far.
        try:
            invocation = self._self_invocation
        except Exception:
            return
        if not invocation.done:
            self._self_finalize(None)

    def __copy__(self) -> Any:  # pragma: no cover - streams are not copyable
        raise TypeError("streams cannot be copied")

    def __reduce_ex__(self, protocol: Any) -> Any:  # pragma: no cover
        raise TypeError("streams cannot be pickled")


class SyncStreamProxy(_StreamProxyBase):
    """Proxy for a synchronous stream (an iterator and context manager)."""

    def __iter__(self) -> SyncStreamProxy:
        return self

    def __next__(self) -> Any:
        in_call = IN_CALL.set(True)  # a request the library sends lazily is part of this call
        try:
            item = self._self_pull()
        except StopIteration:
            self._self_finalize(None)
            raise
        except BaseException as exc:
            self._self_finalize(exc)
            raise
        finally:
            IN_CALL.reset(in_call)
        self._self_observe(item)
        return item

    def _self_pull(self) -> Any:
        return self.__wrapped__.__next__()

    def __enter__(self) -> SyncStreamProxy:
        self.__wrapped__.__enter__()
        return self

    def __exit__(self, *exc_info: Any) -> Any:
        try:
            return self.__wrapped__.__exit__(*exc_info)
        finally:
            self._self_finalize(None)


class IterableStreamProxy(SyncStreamProxy):
    """Proxy for a stream that is iterable but not an iterator (botocore's ``EventStream``,
    whose ``__iter__`` is a generator): iterating the proxy iterates the stream once."""

    def __init__(self, wrapped: Any, invocation: Invocation, accumulator: StreamAccumulator):
        super().__init__(wrapped, invocation, accumulator)
        self._self_iterator: Any = None

    def _self_pull(self) -> Any:
        iterator = self._self_iterator
        if iterator is None:
            iterator = self._self_iterator = iter(self.__wrapped__)
        return next(iterator)


class AsyncStreamProxy(_StreamProxyBase):
    """Proxy for an asynchronous stream (an async iterator and async context manager)."""

    def __aiter__(self) -> AsyncStreamProxy:
        return self

    async def __anext__(self) -> Any:
        in_call = IN_CALL.set(True)
        try:
            item = await self.__wrapped__.__anext__()
        except StopAsyncIteration:
            self._self_finalize(None)
            raise
        except BaseException as exc:
            self._self_finalize(exc)
            raise
        finally:
            IN_CALL.reset(in_call)
        self._self_observe(item)
        return item

    async def __aenter__(self) -> AsyncStreamProxy:
        await self.__wrapped__.__aenter__()
        return self

    async def __aexit__(self, *exc_info: Any) -> Any:
        try:
            return await self.__wrapped__.__aexit__(*exc_info)
        finally:
            self._self_finalize(None)
