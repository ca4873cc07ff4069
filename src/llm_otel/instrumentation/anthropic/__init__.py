"""OpenTelemetry instrumentation for the ``anthropic`` client library.

Messages ``create`` / ``parse`` (sync, async, ``stream=True``) and the ``stream()`` helpers, on
the GA and beta APIs; Anthropic, and Anthropic models on Bedrock and Vertex AI through the
anthropic SDK's clients for them.

    from llm_otel.instrumentation.anthropic import AnthropicInstrumentor
    AnthropicInstrumentor().instrument()
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import wrapt
from opentelemetry.instrumentation.instrumentor import (  # type: ignore[attr-defined]
    BaseInstrumentor,
)

from llm_otel.instrumentation._support import retire, supported, telemetry_for
from llm_otel.instrumentation.anthropic.package import _instruments

__all__ = ["AnthropicInstrumentor"]


class AnthropicInstrumentor(BaseInstrumentor):  # type: ignore[misc]
    """Records one GenAI span and the GenAI client metrics for every Anthropic Messages call."""

    _patched: list[tuple[Any, str, Any]] = []  # noqa: RUF012
    _tracer_property: tuple[Any, Any, Any] | None = None

    def instrumentation_dependencies(self) -> Collection[str]:
        return _instruments

    def _instrument(self, **kwargs: Any) -> None:
        if not supported(self.instrumentation_dependencies(), "anthropic"):
            return
        from llm_otel.instrumentation.anthropic._wrappers import (
            present_targets,
            sdk_tracer_property,
        )

        telemetry = telemetry_for("anthropic", kwargs)
        for cls, method, wrapper in present_targets(telemetry):
            wrapt.wrap_function_wrapper(cls, method, wrapper)
            AnthropicInstrumentor._patched.append((cls, method, cls.__dict__[method]))
        replacement = sdk_tracer_property()
        if replacement is not None:
            base, prop = replacement
            AnthropicInstrumentor._tracer_property = (base, base.__dict__["_tracer"], prop)
            base._tracer = prop

    def _uninstrument(self, **kwargs: Any) -> None:
        retire("anthropic")
        while AnthropicInstrumentor._patched:
            cls, method, installed = AnthropicInstrumentor._patched.pop()
            if cls.__dict__.get(method) is installed:
                setattr(cls, method, installed.__wrapped__)
        if AnthropicInstrumentor._tracer_property is not None:
            base, original, ours = AnthropicInstrumentor._tracer_property
            if base.__dict__.get("_tracer") is ours:
                base._tracer = original
            AnthropicInstrumentor._tracer_property = None
