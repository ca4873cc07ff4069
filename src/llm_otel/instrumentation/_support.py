"""Whether the installed client library is one an instrumentation supports."""

from __future__ import annotations

import logging
from collections.abc import Collection

from opentelemetry.instrumentation.dependencies import get_dependency_conflicts

__all__ = ["supported"]

_logger = logging.getLogger("llm_otel")


def supported(requirements: Collection[str], library: str) -> bool:
    """True when ``requirements`` are met; a missing library is skipped silently, an
    unsupported version with one warning naming the supported range."""
    conflict = get_dependency_conflicts(requirements)
    if conflict is None:
        return True
    if conflict.found is None:
        _logger.debug("llm_otel: %s is not installed; not instrumenting it", library)
    else:
        _logger.warning(
            "llm_otel: %s is installed as %s but llm_otel supports %s; not instrumenting it",
            library,
            conflict.found,
            conflict.required,
        )
    return False
