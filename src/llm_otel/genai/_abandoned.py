"""Streams abandoned unfinished, ended off the garbage collector's path.

A stream proxy that is collected unfinished must still end its span, but its ``__del__`` can run
anywhere: inside a foreign lock (the metric SDK's aggregation lock while a reader collects,
an HTTP pool's lock), in the middle of a context-variable change. Recording there can deadlock
the process. So a finalizer only appends the unfinished call, with the time it was abandoned,
to a deque (an atomic, lock-free append), and the calls are ended later from a safe place:
the next instrumented call, a small daemon thread that looks every half second, at exit, or an
explicit :func:`drain_abandoned`.
"""

from __future__ import annotations

import atexit
import os
import threading
import time
from collections import deque
from collections.abc import Callable

from llm_otel._guard import report_internal_error

__all__ = ["PENDING", "drain_abandoned", "hand_off", "start_drainer"]

Ending = Callable[[float, int], None]
"""Ends one abandoned call, given when it was abandoned (perf_counter seconds, epoch ns)."""

PENDING: deque[tuple[Ending, float, int]] = deque()
"""Abandoned calls not yet ended; truthy when there is work (checked on every call)."""

_drain_lock = threading.Lock()
_drainer: threading.Thread | None = None
DRAIN_INTERVAL = 0.5


def hand_off(ending: Ending) -> None:
    """From a finalizer: queue ``ending`` with the current time. Takes no lock, records nothing."""
    PENDING.append((ending, time.perf_counter(), time.time_ns()))


def drain_abandoned(wait: bool = True) -> int:
    """End every abandoned call queued so far (from a normal, lock-free context); returns how
    many this call ended. ``wait=False`` (the instrumented calls' way) leaves the work to a
    drain already under way instead of waiting for it."""
    if not PENDING and not wait:
        return 0
    ended = 0
    # One drainer at a time keeps the order.
    if not _drain_lock.acquire(blocking=wait):
        return 0
    try:
        while True:
            try:
                ending, at, at_ns = PENDING.popleft()
            except IndexError:
                break
            try:
                ending(at, at_ns)
            except Exception as exc:
                report_internal_error("abandoned stream", exc)
            ended += 1
    finally:
        _drain_lock.release()
    return ended


def _drain_forever() -> None:
    while True:
        time.sleep(DRAIN_INTERVAL)
        if PENDING:
            drain_abandoned(wait=False)


def start_drainer() -> None:
    """Start the daemon that ends abandoned calls, once (called when a stream proxy is made,
    never from a finalizer)."""
    global _drainer
    if _drainer is not None:
        return
    with _drain_lock:
        if _drainer is not None:
            return
        thread = threading.Thread(target=_drain_forever, name="llm_otel-abandoned", daemon=True)
        thread.start()
        _drainer = thread


def _after_fork_in_child() -> None:
    global _drainer, _drain_lock
    _drainer = None  # the daemon thread does not survive a fork; the next stream starts one
    _drain_lock = threading.Lock()


atexit.register(drain_abandoned)
os.register_at_fork(after_in_child=_after_fork_in_child)
