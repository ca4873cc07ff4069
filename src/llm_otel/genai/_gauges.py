"""Gauges whose values are computed when the metrics are collected, from sources that come and
go (the drift monitor, running batch jobs). Each gauge's callback is one module-level function
per metric name, so every GenAITelemetry on a meter shares one instrument and one callback (OTel
keeps the first callback of an instrument registered twice); what it reports is whatever source
is set for that name now."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.util.types import AttributeValue

from llm_otel._guard import guarded

__all__ = ["Reading", "Source", "gauge_callback", "set_gauge_source"]

Reading = tuple[float, Mapping[str, AttributeValue]]
Source = Callable[[], Iterable[Reading]]

_sources: dict[str, Source] = {}
_callbacks: dict[str, Callable[[CallbackOptions], Iterable[Observation]]] = {}


def set_gauge_source(metric: str, source: Source | None) -> Source | None:
    """Report ``source()`` as ``metric`` from now on (None: nothing); returns the one replaced."""
    previous = _sources.pop(metric, None)
    if source is not None:
        _sources[metric] = source
    return previous


def gauge_callback(metric: str) -> Callable[[CallbackOptions], Iterable[Observation]]:
    """The one callback of ``metric``'s observable gauge."""
    callback = _callbacks.get(metric)
    if callback is None:

        def callback(options: CallbackOptions) -> Iterable[Observation]:
            source = _sources.get(metric)
            if source is None:
                return ()
            with guarded(f"gauge {metric}"):
                return [Observation(value, dict(attrs)) for value, attrs in source()]
            return ()

        callback = _callbacks.setdefault(metric, callback)
    return callback
