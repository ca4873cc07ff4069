"""Keeps telemetry failures out of the host application.

Every piece of telemetry work that could fail runs inside ``try/except Exception`` and reports
here: the first failure at each site is logged with its traceback at WARNING, repeats are counted
and logged at DEBUG, so a broken extractor cannot flood the host's logs.
"""

from __future__ import annotations

import logging
import threading

__all__ = ["internal_error_count", "report_internal_error"]

_logger = logging.getLogger("llm_otel")
_lock = threading.Lock()
_seen: dict[str, int] = {}


def report_internal_error(where: str, exc: BaseException) -> None:
    """Log an exception raised inside llm_otel's own code; never raises."""
    try:
        with _lock:
            count = _seen.get(where, 0) + 1
            _seen[where] = count
        if count == 1:
            _logger.warning(
                "llm_otel: telemetry error in %s (the instrumented call is unaffected): %r",
                where,
                exc,
                exc_info=exc,
            )
        else:
            _logger.debug("llm_otel: telemetry error in %s (#%d): %r", where, count, exc)
    except Exception:  # pragma: no cover - logging itself failed; nothing sane is left to do
        pass


def internal_error_count(where: str | None = None) -> int:
    """How many internal errors were reported, at one site or in total (used by tests)."""
    with _lock:
        if where is not None:
            return _seen.get(where, 0)
        return sum(_seen.values())
