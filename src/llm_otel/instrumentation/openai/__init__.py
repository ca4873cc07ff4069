"""OpenTelemetry instrumentation for the ``openai`` client library.

Chat Completions (``create``, ``parse`` and the ``stream()`` helper), the Responses API and
embeddings, sync and async, streamed or not; OpenAI, Azure OpenAI and OpenAI-compatible servers.

    from llm_otel.instrumentation.openai import OpenAIInstrumentor
    OpenAIInstrumentor().instrument()
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import wrapt
from opentelemetry.instrumentation.instrumentor import (  # type: ignore[attr-defined]
    BaseInstrumentor,
)

from llm_otel.instrumentation._support import retire, supported, telemetry_for
from llm_otel.instrumentation.openai.package import _instruments

__all__ = ["OpenAIInstrumentor"]


class OpenAIInstrumentor(BaseInstrumentor):  # type: ignore[misc]
    """Records one GenAI span and the GenAI client metrics for every OpenAI call."""

    # BaseInstrumentor is a singleton whose __init__ runs on every construction, so the list of
    # patched methods lives on the class, not in __init__.
    _patched: list[tuple[Any, str, Any]] = []  # noqa: RUF012

    def instrumentation_dependencies(self) -> Collection[str]:
        return _instruments

    def _instrument(self, **kwargs: Any) -> None:
        if not supported(self.instrumentation_dependencies(), "openai"):
            return
        from llm_otel.instrumentation.openai._wrappers import present_targets

        telemetry = telemetry_for("openai", kwargs)
        for cls, method, wrapper in present_targets(telemetry):
            wrapt.wrap_function_wrapper(cls, method, wrapper)
            OpenAIInstrumentor._patched.append((cls, method, cls.__dict__[method]))

    def _uninstrument(self, **kwargs: Any) -> None:
        retire("openai")
        while OpenAIInstrumentor._patched:
            cls, method, installed = OpenAIInstrumentor._patched.pop()
            # Only remove our own wrapper: one installed later by someone else stays on top.
            if cls.__dict__.get(method) is installed:
                setattr(cls, method, installed.__wrapped__)
