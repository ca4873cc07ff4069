"""Keeps telemetry failures out of the host application.

Every piece of telemetry work that could fail runs inside ``try/except Exception`` and reports
here: the first failure at each site is logged at WARNING, repeats are counted and logged at
DEBUG, so a broken extractor cannot flood the host's logs. What is logged is the exception's
type, where it happened and the stack's frames, never the exception's message: that may quote
the content being recorded (a redactor's error echoing its input, a parse error quoting a
response), and content must not reach the app's logs.
"""

from __future__ import annotations

import logging
import threading
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

__all__ = [
    "call_guarded",
    "exception_type",
    "guarded",
    "internal_error_count",
    "report_internal_error",
]

_logger = logging.getLogger("llm_otel")
_lock = threading.Lock()
_seen: dict[str, int] = {}


def exception_type(exc: BaseException) -> str:
    """The exception's class as OTel's ``exception.type`` writes it (module-qualified)."""
    cls = type(exc)
    module = cls.__module__
    return f"{module}.{cls.__qualname__}" if module and module != "builtins" else cls.__qualname__


def report_internal_error(where: str, exc: BaseException) -> None:
    """Log an exception raised inside llm_otel's own code; never raises."""
    try:
        with _lock:
            count = _seen.get(where, 0) + 1
            _seen[where] = count
        kind = exception_type(exc)
        if count == 1:
            frames = "".join(traceback.format_tb(exc.__traceback__)).rstrip()
            _logger.warning(
                "telemetry error in %s (the instrumented call is unaffected): %s\n%s",
                where,
                kind,
                frames,
            )
        else:
            _logger.debug("telemetry error in %s (#%d): %s", where, count, kind)
    except Exception:  # pragma: no cover - logging itself failed; nothing sane is left to do
        pass


@contextmanager
def guarded(where: str) -> Iterator[None]:
    """Run a block of telemetry work whose failure must not reach the app: an exception is
    reported (:func:`report_internal_error`) and the block is left; the code after it runs."""
    try:
        yield
    except Exception as exc:
        report_internal_error(where, exc)


def call_guarded(where: str, fn: Callable[..., object], *args: Any) -> None:
    """``fn(*args)`` as telemetry work (a framework's callback into us): an exception is
    reported (:func:`report_internal_error`) and not raised."""
    try:
        fn(*args)
    except Exception as exc:
        report_internal_error(where, exc)


def internal_error_count(where: str | None = None) -> int:
    """How many internal errors were reported, at one site or in total (used by tests)."""
    with _lock:
        if where is not None:
            return _seen.get(where, 0)
        return sum(_seen.values())
