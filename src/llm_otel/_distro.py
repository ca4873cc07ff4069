"""Entry points for ``opentelemetry-instrument``: zero-code setup with OTLP export."""

from __future__ import annotations

import logging
import os
from typing import Any

from opentelemetry.environment_variables import (
    OTEL_LOGS_EXPORTER,
    OTEL_METRICS_EXPORTER,
    OTEL_TRACES_EXPORTER,
)
from opentelemetry.instrumentation.distro import BaseDistro  # type: ignore[attr-defined]
from opentelemetry.instrumentation.environment_variables import OTEL_PYTHON_CONFIGURATOR
from opentelemetry.sdk._configuration import _OTelSDKConfigurator
from opentelemetry.sdk.environment_variables import (
    OTEL_EXPERIMENTAL_RESOURCE_DETECTORS,
    OTEL_EXPORTER_OTLP_PROTOCOL,
)

__all__ = ["LLMOtelConfigurator", "LLMOtelDistro"]


class LLMOtelDistro(BaseDistro):  # type: ignore[misc]
    """Defaults every signal to OTLP over HTTP, adds ``host.name`` to the resource (the SDK's
    ``host`` detector) and turns the SDK's self-metrics on; explicit ``OTEL_*`` variables win.
    With ``OTEL_PYTHON_CONFIGURATOR=llm_otel`` the loader's notices that other configurators
    were not loaded (opentelemetry-distro's) are silenced: that was the user's choice."""

    def _configure(self, **kwargs: Any) -> None:
        os.environ.setdefault(OTEL_TRACES_EXPORTER, "otlp")
        os.environ.setdefault(OTEL_METRICS_EXPORTER, "otlp")
        os.environ.setdefault(OTEL_LOGS_EXPORTER, "otlp")
        os.environ.setdefault(OTEL_EXPORTER_OTLP_PROTOCOL, "http/protobuf")
        # Without host.name a host's series differ only by service.instance.id, a random id that
        # changes at every restart; the GPU alerts and dashboard read host_name.
        os.environ.setdefault(OTEL_EXPERIMENTAL_RESOURCE_DETECTORS, "host")
        # The SDK's self-metrics count the spans its batch processor drops when the exporter
        # cannot keep up (the LLMTelemetryDropped alert), as configure() turns them on.
        os.environ.setdefault("OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED", "true")
        if os.environ.get(OTEL_PYTHON_CONFIGURATOR, "").strip() == _NAME:
            logging.getLogger(_LOADER_LOGGER).addFilter(_chosen_configurator_notice)


_NAME = "llm_otel"
_LOADER_LOGGER = "opentelemetry.instrumentation.auto_instrumentation._load"


def _chosen_configurator_notice(record: logging.LogRecord) -> bool:
    """Drop the loader's "Configuration of <other> not loaded" warnings once the user chose
    llm_otel's configurator with OTEL_PYTHON_CONFIGURATOR: it fires for every other configurator
    installed (opentelemetry-distro's), at every start, about the very choice they made."""
    skipped = record.args[0] if isinstance(record.args, tuple) and record.args else None
    return not (
        isinstance(record.msg, str)
        and record.msg.startswith("Configuration of %s not loaded")
        and skipped != _NAME
    )


class LLMOtelConfigurator(_OTelSDKConfigurator):
    """The SDK's own configurator: providers and exporters from the ``OTEL_*`` variables, shut
    down at exit within ``LLM_OTEL_SHUTDOWN_TIMEOUT`` seconds (default 3) instead of the SDK's
    unbounded wait on an unreachable Collector."""

    def _configure(self, **kwargs: Any) -> None:
        super()._configure(**kwargs)  # type: ignore[no-untyped-call]
        from llm_otel._configure import _providers
        from llm_otel._exit import shutdown_at_exit

        shutdown_at_exit(_providers())
        from llm_otel._configure import _configure_evaluation

        _configure_evaluation(None, None)  # LLM_OTEL_EVALUATORS / LLM_OTEL_DRIFT, if set
