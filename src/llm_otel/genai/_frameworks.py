"""One span per model call when a framework and a client library are both instrumented.

A framework instrumentation (LangChain) learns of a model call from the framework's callbacks,
before the framework calls the client library. It opens a :class:`FrameworkCall` then; a client
library call that llm_otel records while it is open (the framework's own HTTP request through an
instrumented SDK) *claims* it, and the framework records nothing for that call: the client
instrumentation's span and metrics are the call's. A call nobody claimed (a model whose client
llm_otel does not instrument) is recorded by the framework instrumentation when it ends.

The open calls live in a context variable holding a tuple, so they are seen by exactly the code
the framework runs for the call (its thread, and the tasks it starts, which copy the context)
and by nothing running beside it. A value left in a context after the call is inert: ended calls
are dropped whenever the next one opens, so a context holds at most the calls open in it.
"""

from __future__ import annotations

import time
from array import array
from contextvars import ContextVar
from typing import TYPE_CHECKING

from opentelemetry import context as otel_context

if TYPE_CHECKING:
    from llm_otel.genai._invocation import Invocation
    from llm_otel.genai._observe import CallObserver
    from llm_otel.genai._telemetry import GenAITelemetry
    from llm_otel.genai._types import LLMRequest, LLMResponse

__all__ = ["AnnouncedCall", "FrameworkCall", "claim_framework_call", "open_framework_call"]


class FrameworkCall:
    """A model call a framework announced and has not finished yet. ``traced_elsewhere``: another
    vendor's instrumentation of the framework gives it a span already (metrics only from us)."""

    __slots__ = ("claimed", "ended", "traced_elsewhere")

    def __init__(self, traced_elsewhere: bool = False) -> None:
        self.claimed = False
        self.ended = False
        self.traced_elsewhere = traced_elsewhere


_OPEN: ContextVar[tuple[FrameworkCall, ...]] = ContextVar("llm_otel_framework_calls", default=())


def open_framework_call(traced_elsewhere: bool = False) -> FrameworkCall:
    """Announce a model call; set ``ended`` on the result when the framework says it ended."""
    call = FrameworkCall(traced_elsewhere)
    _OPEN.set((*(c for c in _OPEN.get() if not c.ended), call))
    return call


def claim_framework_call() -> FrameworkCall | None:
    """A client library call is being recorded: the oldest open framework call it belongs to
    (if any) is the client instrumentation's to record; returned."""
    for call in _OPEN.get():
        if not call.claimed and not call.ended:
            call.claimed = True
            return call
    return None


class AnnouncedCall:
    """A framework instrumentation's record of a model call it announced: the framework call,
    and what recording the call later needs when nobody claims it (when and where it started,
    its online-evaluation observer)."""

    __slots__ = ("call", "chunks", "observer", "parent", "started")

    def __init__(
        self,
        parent: otel_context.Context,
        observer: CallObserver | None,
        traced_elsewhere: bool,
    ) -> None:
        self.parent = parent
        self.observer = observer
        self.started = (time.perf_counter(), time.time_ns())
        self.call = open_framework_call(traced_elsewhere)
        self.chunks: array[float] | None = None

    def note_chunk(self) -> None:
        """A streamed chunk arrived (kept for time to first chunk and time per chunk, unless a
        client call claimed the call and times its chunks itself)."""
        if not self.call.claimed:
            if self.chunks is None:
                self.chunks = array("d")
            self.chunks.append(time.perf_counter())

    @property
    def unclaimed(self) -> bool:
        """No client library call recorded it: the framework instrumentation records it."""
        return not self.call.claimed

    def record(
        self,
        telemetry: GenAITelemetry | None,
        request: LLMRequest,
        response: LLMResponse | None,
        error: BaseException | None,
    ) -> None:
        """The framework says the call ended: recorded here unless a client call claimed it
        (its span is the call's) or the instrumentation is off (``telemetry`` None)."""
        self.call.ended = True
        if self.call.claimed or telemetry is None:
            return
        if self.chunks:
            request.stream = True
        invocation = self.invocation(telemetry, request)
        for at in self.chunks or ():
            invocation.on_chunk(at)
        if error is not None:
            invocation.fail(error, response)
        else:
            invocation.finish(response)

    def invocation(self, telemetry: GenAITelemetry, request: LLMRequest) -> Invocation:
        """The call, recorded after the fact: from when it started, under its parent, with a span
        of its own unless another vendor's framework tracer gave it one."""
        from llm_otel.genai._invocation import Invocation

        return Invocation(telemetry, request, observer=self.observer, started=self.started,
                          parent=self.parent, own_span=not self.call.traced_elsewhere)  # fmt: skip
