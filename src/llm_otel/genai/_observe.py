"""A seam for work on completed calls that must stay off the request path (online evaluation,
``llm_otel.quality``). Before a call starts the wrapper asks the observer whether it wants the
call; if so the adapter builds the call's content in memory even with capture off (it is still
recorded only as the content policy says), and the finished call is handed over. Both methods
are O(1) and never block: the observer queues and works elsewhere."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from opentelemetry.trace import SpanContext

from llm_otel.genai._types import LLMRequest, LLMResponse

__all__ = [
    "CallObserver",
    "CompletedCall",
    "call_observer",
    "close_call_observer",
    "current_call_observer",
    "set_call_observer",
]


@dataclass(frozen=True, slots=True)
class CompletedCall:
    """One finished LLM call as an observer receives it (content present even with capture off)."""

    request: LLMRequest
    response: LLMResponse | None
    error_type: str | None
    span_context: SpanContext


class CallObserver(Protocol):
    def wants(self) -> bool:
        """Whether the call about to start is to be handed over (e.g. sampled)."""

    def completed(self, call: CompletedCall) -> None:
        """Take a call it wanted, finished; must not block or raise."""

    def close(self, timeout: float) -> None:
        """Take no more calls; finish what was taken within ``timeout`` seconds if it can."""


_observer: CallObserver | None = None


def set_call_observer(observer: CallObserver | None) -> CallObserver | None:
    """Observe every call that starts from now on (None: stop); returns the one it replaces."""
    global _observer
    previous, _observer = _observer, observer
    return previous


def current_call_observer() -> CallObserver | None:
    return _observer


def close_call_observer(timeout: float) -> None:
    """At shutdown, before the providers: let the observer finish (and record) what it holds."""
    observer = _observer
    if observer is not None:
        observer.close(timeout)


def call_observer() -> CallObserver | None:
    """The observer to ask about a call that starts now, if it wants it."""
    observer = _observer
    if observer is not None and observer.wants():
        return observer
    return None
