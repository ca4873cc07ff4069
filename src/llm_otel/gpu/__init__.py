"""GPU metrics from NVML as OpenTelemetry metrics.

    from llm_otel.gpu import GPUMetrics
    gpu = GPUMetrics()          # registers the instruments on the global MeterProvider
    ...
    gpu.shutdown()              # nvmlShutdown; the instruments then report nothing

Also reached through ``llm_otel.configure(gpu=True)``, ``opentelemetry-instrument`` (entry point
``llm_otel_gpu``) and the ``llm-otel gpu`` command. Needs the ``pynvml`` module from
``nvidia-ml-py`` (``pip install "llm-otel[gpu]"``); without it, or without a GPU, it logs one line
and records nothing.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Collection
from typing import Any

from opentelemetry import metrics
from opentelemetry.instrumentation.instrumentor import (  # type: ignore[attr-defined]
    BaseInstrumentor,
)
from opentelemetry.metrics import MeterProvider

from llm_otel._env import env_flag
from llm_otel._version import __version__
from llm_otel.gpu._metrics import register_instruments
from llm_otel.gpu._nvml import Device, NVMLSession, load_nvml

__all__ = ["GPU_METRICS_ENV", "GPUInstrumentor", "GPUMetrics", "gpu_metrics_enabled"]

_logger = logging.getLogger("llm_otel")
GPU_METRICS_ENV = "LLM_OTEL_GPU_METRICS"
SCOPE_NAME = "llm_otel.gpu"


def gpu_metrics_enabled(explicit: bool | None = None) -> bool:
    """``explicit`` if given, else ``LLM_OTEL_GPU_METRICS`` (default true: installing the
    ``gpu`` extra is the opt-in)."""
    if explicit is not None:
        return explicit
    return env_flag(GPU_METRICS_ENV, True)


class GPUMetrics:
    """NVML readings registered as observable instruments on one meter."""

    def __init__(self, meter_provider: MeterProvider | None = None, *, nvml: Any = None) -> None:
        module = nvml if nvml is not None else load_nvml()
        self.session: NVMLSession | None = None
        self.instruments: list[str] = []
        if module is None:
            _logger.warning(
                'no GPU metrics: the pynvml module is not installed (pip install "llm-otel[gpu]")'
            )
            return
        session = NVMLSession(module)
        if not session.start():
            return
        self.session = session
        meter = metrics.get_meter(SCOPE_NAME, __version__, meter_provider)
        self.instruments = register_instruments(meter, session)

    @property
    def devices(self) -> list[Device]:
        """The GPUs (and MIG instances) being reported."""
        return self.session.devices() if self.session else []

    def shutdown(self) -> None:
        """Stop NVML; the instruments report nothing from then on."""
        if self.session is not None:
            self.session.shutdown()


class GPUInstrumentor(BaseInstrumentor):  # type: ignore[misc]
    """Entry point for ``opentelemetry-instrument``: GPU metrics on the configured meter."""

    _lock = threading.Lock()
    _metrics: GPUMetrics | None = None

    def instrumentation_dependencies(self) -> Collection[str]:
        return ()  # the pynvml module may come from nvidia-ml-py or an older pynvml

    def _instrument(self, **kwargs: Any) -> None:
        if not gpu_metrics_enabled(kwargs.get("gpu")):
            _logger.debug("GPU metrics are turned off (%s)", GPU_METRICS_ENV)
            return
        nvml = kwargs.get("nvml")
        if nvml is None and kwargs.get("gpu") is not True and load_nvml() is None:
            _logger.debug("pynvml is not installed; no GPU metrics")
            return
        with GPUInstrumentor._lock:
            if GPUInstrumentor._metrics is None:
                GPUInstrumentor._metrics = GPUMetrics(kwargs.get("meter_provider"), nvml=nvml)

    def _uninstrument(self, **kwargs: Any) -> None:
        with GPUInstrumentor._lock:
            if GPUInstrumentor._metrics is not None:
                GPUInstrumentor._metrics.shutdown()
                GPUInstrumentor._metrics = None
