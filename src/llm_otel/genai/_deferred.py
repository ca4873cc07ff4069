"""Calls whose body the application reads after the call returns.

An SDK's raw-response mode (the Stainless SDKs' ``with_streaming_response``, and
``with_raw_response`` of a stream) hands back the HTTP response before its body is read: the
model call is not over then. Such a call is *deferred*: it ends when the application

- parses the body: a stream is then recorded as any stream is (its proxy is what ``parse()``
  returns, so usage, finish reasons, time to first chunk and per-chunk times are kept), and a
  whole response as a non-streamed call's;
- closes the response without parsing it (it read the raw bytes or lines itself): the call
  ends then, with its request attributes only;
- drops the response unclosed: the garbage collector hands the call to the abandoned-call
  drainer (``_abandoned``), which ends it off the collector's path.

The instrumentation patches the SDK's ``parse`` and ``close`` to call :func:`parsed` and
:func:`closed`; a response that is not deferred passes through them untouched.
"""

from __future__ import annotations

import weakref
from typing import Any

from llm_otel._guard import report_internal_error
from llm_otel.genai._abandoned import hand_off, start_drainer
from llm_otel.genai._adapter import Adapter
from llm_otel.genai._invocation import Invocation
from llm_otel.genai._streams import AsyncStreamProxy, SyncStreamProxy, async_only, make_proxy

__all__ = ["closed", "defer", "parsed", "pending"]


class _Deferred:
    __slots__ = ("adapter", "capture", "finalizer", "invocation")

    def __init__(
        self, invocation: Invocation, adapter: Adapter, capture: bool, finalizer: Any
    ) -> None:
        self.invocation = invocation
        self.adapter = adapter
        self.capture = capture
        self.finalizer = finalizer


# Keyed by the raw response object (weakly: a dropped response leaves no entry behind).
_DEFERRED: weakref.WeakKeyDictionary[Any, _Deferred] = weakref.WeakKeyDictionary()


def defer(result: Any, invocation: Invocation, adapter: Adapter, capture: bool) -> None:
    """``result`` is a response whose body is still to be read: end ``invocation`` when it is."""

    def end_abandoned(at: float, at_ns: int) -> None:
        invocation.finish(None, ended_at=(at, at_ns))

    start_drainer()
    # The finalizer holds the invocation, never the response; it only queues (see _abandoned).
    finalizer = weakref.finalize(result, hand_off, end_abandoned)
    finalizer.atexit = False
    _DEFERRED[result] = _Deferred(invocation, adapter, capture, finalizer)


def pending() -> bool:
    """Whether any call is waiting for its body to be read (cheap: checked on every parse)."""
    return len(_DEFERRED) > 0


def _take(response: Any) -> _Deferred | None:
    try:
        entry = _DEFERRED.pop(response, None)
    except TypeError:  # not weak-referenceable: never deferred
        return None
    if entry is not None:
        entry.finalizer.detach()
    return entry


def parsed(response: Any, value: Any) -> Any:
    """What the app's ``response.parse()`` returns: for a deferred call's stream, the proxy that
    records it; a whole response is recorded and returned as is."""
    if not _DEFERRED:
        return value
    entry = _take(response)
    if entry is None:
        return value
    invocation, adapter = entry.invocation, entry.adapter
    try:
        accumulator = adapter.stream_accumulator(value, entry.capture)
        if accumulator is not None:
            proxy = AsyncStreamProxy if async_only(value) else SyncStreamProxy
            return make_proxy(proxy, value, invocation, accumulator)
        invocation.finish(adapter.response(value, entry.capture))
    except Exception as exc:
        report_internal_error(f"{type(adapter).__name__}.response", exc)
        invocation.finish(None)
    return value


def closed(response: Any) -> None:
    """The app closed a response: a deferred call it never parsed ends now."""
    if not _DEFERRED:
        return
    entry = _take(response)
    if entry is not None:
        entry.invocation.finish(None)
