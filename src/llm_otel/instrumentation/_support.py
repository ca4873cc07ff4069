"""Whether the installed client library is one an instrumentation supports."""

from __future__ import annotations

import logging
from collections.abc import Collection
from typing import Any

from opentelemetry.instrumentation.dependencies import get_dependency_conflicts

from llm_otel.genai import GenAITelemetry, policy_from_env

__all__ = ["retire", "supported", "telemetry_for"]

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


_LIVE: dict[str, list[GenAITelemetry]] = {}


def telemetry_for(library: str, kwargs: dict[str, Any]) -> GenAITelemetry:
    """The telemetry an ``instrument(**kwargs)`` call records to (providers, content policy),
    remembered so that :func:`retire` can switch it off."""
    telemetry = GenAITelemetry(
        tracer_provider=kwargs.get("tracer_provider"),
        meter_provider=kwargs.get("meter_provider"),
        logger_provider=kwargs.get("logger_provider"),
        content=kwargs.get("content_policy") or policy_from_env(),
    )
    _LIVE.setdefault(library, []).append(telemetry)
    return telemetry


def retire(library: str) -> None:
    """On uninstrument: wrappers that outlive it (bound into objects the SDK cached) stop
    recording and pass calls through."""
    for telemetry in _LIVE.pop(library, ()):
        telemetry.active = False
