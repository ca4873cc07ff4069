"""On/off environment variables read the same way everywhere, with one warning for a value that
is neither (a typo must not silently mean "on"); :func:`warn_once` for every setting's bad value."""

from __future__ import annotations

import logging
import os
from typing import Any

__all__ = ["env_flag", "warn_once", "whole_number"]

_logger = logging.getLogger("llm_otel")
_TRUE = ("true", "1", "yes", "on")
_FALSE = ("false", "0", "no", "off")
_warned: set[tuple[str, str]] = set()


def whole_number(value: Any, what: str, of: str = "") -> int | None:
    """A count argument (``total=``, ``done=``, ``total_steps=``, ...): None stays None, a whole
    number 0 or more is returned, anything else (a bool, a float, a negative) is rejected with
    a ValueError naming it (``of``: what it counts, for the message)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        counted = f" of {of}" if of else ""
        raise ValueError(f"{what} must be a whole number{counted}, 0 or more, not {value!r}")
    return value


def env_flag(name: str, default: bool) -> bool:
    """``name`` as a boolean: true/1/yes/on or false/0/no/off (any case); unset or empty gives
    ``default``, anything else gives ``default`` too, with one warning naming the variable."""
    raw = os.environ.get(name, "").strip()
    value = raw.lower()
    if not value:
        return default
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    warn_once(
        name,
        raw,
        "%s=%r is not one of true, false, 1, 0, yes, no, on, off; using the default (%s)",
        "on" if default else "off",
    )
    return default


def warn_once(source: str, value: Any, message: str, *args: Any) -> None:
    """Log ``message % (source, value, *args)`` the first time ``source`` has this ``value``:
    a bad setting read on every call must not flood the log."""
    key = (source, repr(value))
    if key in _warned:
        return
    _warned.add(key)
    _logger.warning(message, source, value, *args)
