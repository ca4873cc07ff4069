"""Recently finished calls by response id, so feedback can be attached to a past call.

Bounded in entries and in bytes: ids longer than :data:`MAX_ID_LENGTH` are not kept (a server
returning huge unique ids would otherwise grow the table by megabytes), and the oldest entries
go once the table holds :data:`CAPACITY` entries or :data:`MAX_BYTES` bytes.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from sys import getsizeof
from typing import NamedTuple

from opentelemetry.trace import SpanContext

__all__ = [
    "CAPACITY",
    "MAX_BYTES",
    "MAX_ID_LENGTH",
    "RecentCall",
    "forget_all",
    "lookup",
    "remember",
    "size_bytes",
]

CAPACITY = 10_000
MAX_ID_LENGTH = 256
"""Longest response id kept here or exported as ``gen_ai.response.id`` (longer ones are cut)."""
MAX_BYTES = 4 * 1024 * 1024

# What an entry costs beyond its key and model name: its tuple, the SpanContext, the
# OrderedDict node.
_ENTRY_OVERHEAD = 400
# What sys.getsizeof says of a str holding only ASCII characters is this plus its length
# (CPython's compact ASCII layout): read once, not asked per call (two getsizeof calls were
# ~1,700 instructions of every recorded call).
_ASCII_BASE = getsizeof("")


class RecentCall(NamedTuple):
    """What a later ``record_evaluation(response_id)`` needs of the call."""

    span_context: SpanContext
    provider: str
    model: str | None


_lock = threading.Lock()
# response id -> (span context, provider, model, the entry's accounted size in bytes): a plain
# tuple, made on every call (a RecentCall is made only for the lookups that find one).
_calls: OrderedDict[str, tuple[SpanContext, str, str | None, int]] = OrderedDict()
_bytes = 0


def remember(response_id: str, span_context: SpanContext, provider: str, model: str | None) -> None:
    """O(1): an id seen again moves to the newest end; the oldest go when the table is full."""
    global _bytes
    length = len(response_id)
    if length > MAX_ID_LENGTH:
        return
    # The same count for the id and the model, written out twice: a helper's two frames cost
    # ~730 instructions a call, a quarter of what skipping getsizeof saves (both are checked
    # against getsizeof by test_the_recent_call_table_counts_what_getsizeof_says_ascii_or_not).
    cost = _ENTRY_OVERHEAD + (
        _ASCII_BASE + length
        if type(response_id) is str and response_id.isascii()
        else getsizeof(response_id)
    )
    if model:
        cost += (
            _ASCII_BASE + len(model) if type(model) is str and model.isascii() else getsizeof(model)
        )
    entry = (span_context, provider, model, cost)
    # acquire/release rather than `with`: the with statement looks both methods up as special
    # methods and binds them (~600 instructions a call).
    _lock.acquire()
    try:
        # get (and move_to_end for an id seen again) rather than pop: OrderedDict.pop parses
        # its arguments the slow way (~600 instructions).
        previous = _calls.get(response_id)
        _calls[response_id] = entry
        if previous is not None:
            _bytes -= previous[3]
            _calls.move_to_end(response_id)
        _bytes += cost
        if _bytes > MAX_BYTES or len(_calls) > CAPACITY:
            _evict()
    finally:
        _lock.release()


def _evict() -> None:
    """Drop the oldest entries until the table is within both bounds (the lock is held)."""
    global _bytes
    while len(_calls) > CAPACITY or _bytes > MAX_BYTES:
        _bytes -= _calls.popitem(last=False)[1][3]


def lookup(response_id: str) -> RecentCall | None:
    with _lock:
        entry = _calls.get(response_id)
    return RecentCall(*entry[:3]) if entry is not None else None


def size_bytes() -> int:
    """The table's accounted size in bytes."""
    with _lock:
        return _bytes


def forget_all() -> None:
    global _bytes
    with _lock:
        _calls.clear()
        _bytes = 0
