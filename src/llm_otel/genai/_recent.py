"""Recently finished calls by response id, so feedback can be attached to a past call."""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

from opentelemetry.trace import SpanContext

__all__ = ["RecentCall", "forget_all", "lookup", "remember"]

CAPACITY = 10_000


@dataclass(frozen=True, slots=True)
class RecentCall:
    span_context: SpanContext
    provider: str
    model: str | None


_lock = threading.Lock()
_calls: OrderedDict[str, RecentCall] = OrderedDict()


def remember(response_id: str, call: RecentCall) -> None:
    with _lock:
        _calls[response_id] = call
        if len(_calls) > CAPACITY:
            _calls.popitem(last=False)


def lookup(response_id: str) -> RecentCall | None:
    with _lock:
        return _calls.get(response_id)


def forget_all() -> None:
    with _lock:
        _calls.clear()
