"""A seam for work on completed calls that must stay off the request path (online evaluation,
``llm_otel.quality``). Before a call starts the wrapper asks the observer whether it wants the
call; if so the adapter builds the call's content in memory even with capture off (it is still
recorded only as the content policy says), and the finished call is handed over. Both methods
are O(1) and never block: the observer queues and works elsewhere."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol

from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.trace import SpanContext
from opentelemetry.util.types import AttributeValue

from llm_otel._guard import guarded
from llm_otel.genai._types import LLMRequest, LLMResponse

__all__ = [
    "CallObserver",
    "CompletedCall",
    "DriftSource",
    "call_observer",
    "close_call_observer",
    "current_call_observer",
    "observe_divergence",
    "observe_embedding_distance",
    "set_call_observer",
    "set_drift_source",
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


Reading = tuple[float, Mapping[str, AttributeValue]]


class DriftSource(Protocol):
    """What the drift gauges report at each collection (``llm_otel.quality``'s drift monitor)."""

    def divergences(self) -> Iterable[Reading]:
        """``llm_otel.drift.divergence`` values with their attributes."""

    def embedding_distances(self) -> Iterable[Reading]:
        """``llm_otel.drift.embedding.distance`` values with their attributes."""


# One per process, like the call observer: the gauges' callbacks are these module functions, so
# every GenAITelemetry on a meter shares one instrument and one callback (OTel keeps the first
# callback of an instrument registered twice).
_drift: DriftSource | None = None


def set_drift_source(source: DriftSource | None) -> DriftSource | None:
    """Report ``source``'s drift from now on (None: nothing); returns the one it replaces."""
    global _drift
    previous, _drift = _drift, source
    return previous


def observe_divergence(options: CallbackOptions) -> Iterable[Observation]:
    source = _drift
    if source is None:
        return ()
    with guarded("drift gauge"):
        return [Observation(value, dict(attrs)) for value, attrs in source.divergences()]
    return ()


def observe_embedding_distance(options: CallbackOptions) -> Iterable[Observation]:
    source = _drift
    if source is None:
        return ()
    with guarded("drift gauge"):
        return [Observation(v, dict(attrs)) for v, attrs in source.embedding_distances()]
    return ()
