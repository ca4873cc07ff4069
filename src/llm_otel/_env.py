"""On/off environment variables read the same way everywhere, with one warning for a value that
is neither (a typo must not silently mean "on")."""

from __future__ import annotations

import logging
import os

__all__ = ["env_flag"]

_logger = logging.getLogger("llm_otel")
_TRUE = ("true", "1", "yes", "on")
_FALSE = ("false", "0", "no", "off")
_warned: set[tuple[str, str]] = set()


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
    if (name, raw) not in _warned:
        _warned.add((name, raw))
        _logger.warning(
            "%s=%r is not one of true, false, 1, 0, yes, no, on, off; using the default (%s)",
            name,
            raw,
            "on" if default else "off",
        )
    return default
