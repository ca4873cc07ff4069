"""The telemetry handle the manual API records through (global providers, content policy)."""

from __future__ import annotations

import threading

from llm_otel.genai import ContentPolicy, GenAITelemetry

__all__ = ["default_telemetry", "set_content_policy"]

_lock = threading.Lock()
_telemetry: GenAITelemetry | None = None
_policy: ContentPolicy | None = None


def default_telemetry() -> GenAITelemetry:
    """Created on first use from the global providers; ``configure()`` sets its policy."""
    global _telemetry
    telemetry = _telemetry
    if telemetry is None:
        with _lock:
            if _telemetry is None:
                _telemetry = GenAITelemetry(content=_policy)
            telemetry = _telemetry
    return telemetry


def set_content_policy(policy: ContentPolicy | None) -> None:
    """Use ``policy`` (None: the environment's) from now on; rebuilds the handle lazily."""
    global _telemetry, _policy
    with _lock:
        _policy = policy
        _telemetry = None
