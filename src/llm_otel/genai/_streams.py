"""Stream proxies that end an invocation exactly once, however the stream ends.

A stream ends when it is exhausted, raises, is closed (on the stream or on its HTTP response,
which is what the client libraries' own stream helpers close), leaves a ``with`` block, or is
garbage collected unfinished (handed to :mod:`._abandoned`, never ended inside the collector).

The proxy is the stream to the app: it answers ``hasattr`` as the stream does (a name the stream
lacks is absent from the proxy too, dunder methods included), and copies and pickles as the
stream does. ``iter(proxy)`` is the proxy exactly when ``iter(stream)`` is the stream; otherwise
it is a generator of ours over the stream's own iterator (likewise ``async for``). Each proxy
class is made once per wrapped stream type (:func:`proxy_class`) with the optional parts
(``close``, ``response``, the context-manager methods, ...) only where the wrapped type has
them. Every ending funnels into ``_self_finalize``.
"""

from __future__ import annotations

import copy
import inspect
import time
from array import array
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Protocol

import wrapt

from llm_otel._guard import report_internal_error
from llm_otel.genai._abandoned import hand_off, start_drainer
from llm_otel.genai._incall import IN_CALL
from llm_otel.genai._invocation import Invocation
from llm_otel.genai._types import LLMResponse

__all__ = [
    "AsyncStreamProxy",
    "IterableStreamProxy",
    "StreamAccumulator",
    "SyncStreamProxy",
    "async_only",
    "make_proxy",
]

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


INCOMPLETE_STREAM = "incomplete_stream"
"""``error.type`` of a stream that ran out before the provider said it was complete (the
server closed the connection early): the accumulator's ``complete()`` answered False."""


def _finalize(
    invocation: Invocation,
    accumulator: StreamAccumulator,
    times: array[float],
    exc: BaseException | None,
    *,
    exhausted: bool = False,
    ended_at: tuple[float, int] | None = None,
) -> None:
    if invocation.done:
        return
    try:
        invocation.on_chunks(times)
    except Exception as internal:
        report_internal_error("stream chunk timing", internal)
    response: LLMResponse | None = None
    try:
        response = accumulator.response()
    except Exception as internal:
        report_internal_error("stream response", internal)
    error_type = getattr(accumulator, "error_type", None)
    if exhausted and exc is None and error_type is None:
        complete = getattr(accumulator, "complete", None)
        try:
            if complete is not None and not complete():
                error_type = INCOMPLETE_STREAM
        except Exception as internal:
            report_internal_error("stream completeness", internal)
    if exc is not None or error_type is not None:
        invocation.fail(exc, response, error_type, ended_at=ended_at)
    else:
        invocation.finish(response, ended_at=ended_at)


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


class _Absent:
    """A name the wrapped stream does not have: the proxy does not have it either (wrapt's
    ObjectProxy defines ``__enter__``, ``__iter__``, ... for every object)."""

    def __init__(self, name: str) -> None:
        self._name = name

    def __get__(self, instance: Any, owner: Any = None) -> Any:
        raise AttributeError(self._name)


class _StreamProxyBase(_Proxy):
    """Reading an attribute of a wrapt proxy costs about nine plain ones (the lookup goes through
    its ``__getattribute__`` slot wrapper), so the per-chunk path reads one: ``_self_hot``."""

    _self_optional: tuple[str, ...] = ()
    """Names this proxy defines only when the wrapped stream has them."""

    def __init__(
        self,
        wrapped: Any,
        invocation: Invocation,
        accumulator: StreamAccumulator,
        _owners: list[int] | None = None,
        _times: array[float] | None = None,
    ):
        super().__init__(wrapped)
        self._self_invocation = invocation
        self._self_accumulator = accumulator
        # When each chunk arrived (perf_counter seconds), handed to the call when it ends: an
        # append per chunk instead of a call into the invocation. 8 bytes a chunk.
        self._self_times = _times if _times is not None else array("d")
        # (next item, note its time, fold it into the response), set at the first pull: the
        # per-chunk work, read with one attribute lookup and run without a frame of ours
        # besides the accumulator's. None before the first pull.
        self._self_hot: (
            tuple[Callable[[], Any], Callable[[float], None], Callable[[Any], None]] | None
        ) = None
        self._self_response: Any = None
        # Copies share the call; it is abandoned when the last of them is collected.
        self._self_owners = _owners if _owners is not None else [0]
        self._self_owners[0] += 1
        start_drainer()

    def _self_finalize(self, exc: BaseException | None, exhausted: bool = False) -> None:
        _finalize(
            self._self_invocation, self._self_accumulator, self._self_times, exc,
            exhausted=exhausted,
        )  # fmt: skip

    def _self_heat(self, puller: Callable[[], Callable[[], Any]]) -> None:
        """Set the per-chunk work at the first pull; ``puller`` gives the wrapped stream's own
        next-item callable (never a method of this proxy, which keeps it: a reference to itself
        would leave its collection to the cycle collector). A stream that cannot be pulled
        ends the call, as a failing pull does."""
        try:
            pull = puller()
        except BaseException as exc:
            self._self_finalize(exc)
            raise
        self._self_hot = (pull, self._self_times.append, self._self_accumulator.add)

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

    async def aclose(self) -> Any:
        try:
            return await self.__wrapped__.aclose()
        finally:
            self._self_finalize(None)

    async def _self_await_close(self, pending: Awaitable[Any]) -> Any:
        try:
            return await pending
        finally:
            self._self_finalize(None)

    def __del__(self) -> None:
        # Runs inside the garbage collector, possibly while this thread holds a lock that
        # recording needs: hand the unfinished call over, record nothing here.
        try:
            owners = self._self_owners
            owners[0] -= 1
            if owners[0] > 0 or self._self_invocation.done:
                return
            invocation, accumulator = self._self_invocation, self._self_accumulator
            times = self._self_times
        except Exception:
            return

        def end_abandoned(at: float, at_ns: int) -> None:
            _finalize(invocation, accumulator, times, None, ended_at=(at, at_ns))

        hand_off(end_abandoned)

    def _self_iterate(self, method: str, begin: Callable[[Any], Any]) -> Any:
        """What ``iter()`` (``aiter()``) of the proxy answers: the proxy where the stream's own
        ``method`` returns the stream (or the stream lacks it), else ``_self_chunks`` over the
        iterator ``begin`` gets from the stream. A stream that cannot be iterated ends the call."""
        wrapped = self.__wrapped__
        if getattr(type(wrapped), method, None) is None:
            return self  # an iterator lacking the method: iterable through the proxy, as before
        try:
            iterator = begin(wrapped)
        except BaseException as exc:
            self._self_finalize(exc)
            raise
        if iterator is wrapped:
            return self
        return self._self_chunks(iterator)

    def _self_twin(self, wrapped: Any) -> Any:
        return type(self)(
            wrapped, self._self_invocation, self._self_accumulator, self._self_owners,
            self._self_times,
        )  # fmt: skip

    def __copy__(self) -> Any:
        return self._self_twin(copy.copy(self.__wrapped__))

    def __deepcopy__(self, memo: dict[int, Any]) -> Any:
        return self._self_twin(copy.deepcopy(self.__wrapped__, memo))

    def __reduce__(self) -> Any:
        return self.__wrapped__.__reduce__()

    def __reduce_ex__(self, protocol: Any) -> Any:
        return self.__wrapped__.__reduce_ex__(protocol)


class SyncStreamProxy(_StreamProxyBase):
    """Proxy for a synchronous stream (an iterator, often a context manager)."""

    _self_optional: tuple[str, ...] = (
        "close",
        "aclose",
        "response",
        "__enter__",
        "__exit__",
        "__aenter__",
        "__aexit__",
    )

    def __iter__(self) -> Any:
        # Iterating the proxy does what iterating the stream does: a stream whose __iter__
        # returns itself (LiteLLM's) gets the proxy back; one whose __iter__ is a generator over
        # its chunks (the Stainless SDKs': openai, anthropic) gets a generator of ours over that
        # generator, which a for loop resumes per chunk without the proxy's __next__ slot (a
        # method looked up on the type, a frame, an attribute read through wrapt): ~2,100
        # instructions a chunk fewer (docs/performance.md).
        return self._self_iterate("__iter__", iter)

    def _self_chunks(self, iterator: Any) -> Any:
        """The chunks of ``iterator`` (the stream's own), each noted as ``__next__`` notes it.
        Nothing is recorded when the generator is closed or collected unfinished: the
        proxy's ``__del__`` hands the call over as for an abandoned stream."""
        pull = iterator.__next__
        if self._self_hot is None:
            try:
                yield self._self_first_next(lambda: pull)
            except StopIteration:  # the stream was empty; the call has ended
                return
        stamp, add = self._self_hot[1:]  # type: ignore[index]
        clock = time.perf_counter
        # A for loop over the stream's iterator rather than a call of its __next__ per chunk
        # (a method-wrapper, called through tp_call, and a StopIteration raised and caught at
        # the end): ~320 instructions a chunk fewer. The try spans our yield, so what is thrown
        # in there (GeneratorExit when the app closes or drops the generator) is told apart
        # from the stream's own failure by ``paused`` and passes through untouched.
        paused = False
        try:
            for item in iterator:
                try:
                    stamp(clock())
                    add(item)
                except Exception as internal:
                    report_internal_error("stream chunk", internal)
                paused = True
                yield item
                paused = False
        except BaseException as exc:
            if not paused:
                self._self_finalize(exc)
            raise
        self._self_finalize(None, exhausted=True)

    def __next__(self) -> Any:
        # Hot path (once per chunk): one frame of ours besides the accumulator's.
        hot = self._self_hot
        if hot is None:
            return self._self_first_next()
        pull, stamp, add = hot
        try:
            item = pull()
        except StopIteration:
            self._self_finalize(None, exhausted=True)
            raise
        except BaseException as exc:
            self._self_finalize(exc)
            raise
        try:
            stamp(time.perf_counter())
            add(item)
        except Exception as internal:
            report_internal_error("stream chunk", internal)
        return item

    def _self_first_next(self, puller: Callable[[], Callable[[], Any]] | None = None) -> Any:
        # A request the library sends lazily, on the first pull (LiteLLM's streams), is part of
        # this call; later pulls read a response already under way.
        in_call = IN_CALL.set(self._self_invocation)
        try:
            self._self_heat(puller or self._self_puller)
            return SyncStreamProxy.__next__(self)  # (an IterableStreamProxy has no __next__)
        finally:
            IN_CALL.reset(in_call)

    def _self_puller(self) -> Callable[[], Any]:
        return self.__wrapped__.__next__  # type: ignore[no-any-return]

    def __enter__(self) -> SyncStreamProxy:
        self.__wrapped__.__enter__()
        return self

    def __exit__(self, *exc_info: Any) -> Any:
        try:
            return self.__wrapped__.__exit__(*exc_info)
        finally:
            self._self_finalize(None)


class _Pull:
    """The iterator of an :class:`IterableStreamProxy` (the stream itself has no ``__next__``)."""

    __slots__ = ("_proxy",)

    def __init__(self, proxy: IterableStreamProxy) -> None:
        self._proxy = proxy

    def __iter__(self) -> _Pull:
        return self

    def __next__(self) -> Any:
        return SyncStreamProxy.__next__(self._proxy)


class IterableStreamProxy(SyncStreamProxy):
    """Proxy for a stream that is iterable but not an iterator (botocore's ``EventStream``,
    whose ``__iter__`` is a generator): iterating the proxy iterates the stream once."""

    _self_optional = (*SyncStreamProxy._self_optional, "__next__")

    def __iter__(self) -> Any:
        return _Pull(self)

    def _self_puller(self) -> Callable[[], Any]:
        return iter(self.__wrapped__).__next__  # type: ignore[no-any-return]


class AsyncStreamProxy(_StreamProxyBase):
    """Proxy for an asynchronous stream (an async iterator, often an async context manager)."""

    _self_optional = (
        "close",
        "aclose",
        "response",
        "__aenter__",
        "__aexit__",
        "__enter__",
        "__exit__",
        "__iter__",
    )

    def __aiter__(self) -> Any:
        # As SyncStreamProxy.__iter__, through an async generator of ours: a coroutine fewer
        # per chunk.
        return self._self_iterate("__aiter__", aiter)

    async def _self_chunks(self, iterator: Any) -> Any:
        """The chunks of ``iterator``, each noted as ``__anext__`` notes it; nothing is recorded
        when the generator is closed unfinished (the event loop closes an abandoned one)."""
        pull = iterator.__anext__
        if self._self_hot is None:
            try:
                yield await self._self_first_anext(lambda: pull)
            except StopAsyncIteration:  # the stream was empty; the call has ended
                return
        stamp, add = self._self_hot[1:]  # type: ignore[index]
        clock = time.perf_counter
        # As in SyncStreamProxy._self_chunks: an async for loop rather than an awaited call
        # of the iterator's __anext__ per chunk (~315 instructions a chunk fewer); ``paused``
        # tells what the app throws in at our yield (athrow(), aclose()) from the stream's own
        # failure, a cancellation while awaiting a chunk included.
        paused = False
        try:
            async for item in iterator:
                try:
                    stamp(clock())
                    add(item)
                except Exception as internal:
                    report_internal_error("stream chunk", internal)
                paused = True
                yield item
                paused = False
        except BaseException as exc:
            if not paused:
                self._self_finalize(exc)
            raise
        self._self_finalize(None, exhausted=True)

    async def __anext__(self) -> Any:
        hot = self._self_hot
        if hot is None:
            return await self._self_first_anext()
        pull, stamp, add = hot
        try:
            item = await pull()
        except StopAsyncIteration:
            self._self_finalize(None, exhausted=True)
            raise
        except BaseException as exc:
            self._self_finalize(exc)
            raise
        try:
            stamp(time.perf_counter())
            add(item)
        except Exception as internal:
            report_internal_error("stream chunk", internal)
        return item

    async def _self_first_anext(self, puller: Callable[[], Callable[[], Any]] | None = None) -> Any:
        # A request the library sends lazily, on the first pull (LiteLLM's async streams), is
        # part of this call; later pulls read a response already under way.
        in_call = IN_CALL.set(self._self_invocation)
        try:
            self._self_heat(puller or (lambda: self.__wrapped__.__anext__))
            return await AsyncStreamProxy.__anext__(self)
        finally:
            IN_CALL.reset(in_call)

    async def __aenter__(self) -> AsyncStreamProxy:
        await self.__wrapped__.__aenter__()
        return self

    async def __aexit__(self, *exc_info: Any) -> Any:
        try:
            return await self.__wrapped__.__aexit__(*exc_info)
        finally:
            self._self_finalize(None)


_CLASSES: dict[tuple[type, type], type] = {}


def async_only(stream: Any) -> bool:
    """An async iterator that is not also a sync one (LiteLLM's stream wrapper is both)."""
    return hasattr(stream, "__anext__") and not hasattr(stream, "__next__")


def proxy_class(base: type[_StreamProxyBase], wrapped: Any) -> type[_StreamProxyBase]:
    """``base`` with the optional names the wrapped stream lacks made absent; one class per
    (base, stream type)."""
    key = (base, type(wrapped))
    cls = _CLASSES.get(key)
    if cls is None:
        missing = {
            name: _Absent(name) for name in base._self_optional if not hasattr(wrapped, name)
        }
        cls = (
            type(base.__name__, (base,), {"__module__": base.__module__, **missing})
            if missing
            else base
        )
        _CLASSES[key] = cls
    return cls


def make_proxy(
    base: type[_StreamProxyBase],
    wrapped: Any,
    invocation: Invocation,
    accumulator: StreamAccumulator,
) -> Any:
    """Wrap ``wrapped`` in the proxy class that matches it."""
    return proxy_class(base, wrapped)(wrapped, invocation, accumulator)
