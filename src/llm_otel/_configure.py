"""``llm_otel.configure()``: providers, OTLP exporters and instrumentation in one call."""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from opentelemetry import metrics, trace
from opentelemetry._logs import get_logger_provider, set_logger_provider
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import (
    BatchLogRecordProcessor,
    ConsoleLogRecordExporter,
    LogRecordExporter,
    SimpleLogRecordProcessor,
)
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    ConsoleMetricExporter,
    MetricReader,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.resources import HOST_NAME, SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
    SpanExporter,
)
from opentelemetry.semconv.attributes.deployment_attributes import DEPLOYMENT_ENVIRONMENT_NAME

from llm_otel import _exit
from llm_otel._guard import guarded
from llm_otel.genai import (
    ContentMode,
    ContentPolicy,
    Redactor,
    default_policy,
    policy_from_env,
    set_default_policy,
)
from llm_otel.genai._abandoned import drain_abandoned
from llm_otel.genai._chunks import set_chunk_timing
from llm_otel.genai._scope import ScopeSpanProcessor
from llm_otel.manual._defaults import set_content_policy

if TYPE_CHECKING:
    from llm_otel.gpu import GPUMetrics

__all__ = ["Configuration", "configure", "flush", "shutdown"]

_logger = logging.getLogger("llm_otel")
_lock = threading.Lock()
_current: Configuration | None = None
_first_setup: dict[str, Any] = {}  # the first call's provider settings, to compare later calls

_SIGNALS = {"traces": "TRACES", "metrics": "METRICS", "logs": "LOGS"}
_HTTP_PATHS = {"traces": "v1/traces", "metrics": "v1/metrics", "logs": "v1/logs"}
DEFAULT_PROTOCOL = "http/protobuf"
GPU_ENTRY_POINT = "llm_otel_gpu"


@dataclass
class Configuration:
    """What :func:`configure` set up; :meth:`shutdown` flushes and stops it."""

    tracer_provider: TracerProvider | None
    meter_provider: MeterProvider | None
    logger_provider: LoggerProvider | None
    instrumented: list[str] = field(default_factory=list)
    gpu: GPUMetrics | None = None
    """The NVML GPU metrics, when they were started."""

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Export everything recorded so far (spans, metrics, log records, and the calls of
        streams abandoned unfinished); False when a provider did not finish in time."""
        drain_abandoned()
        flushed = True
        for provider in (self.tracer_provider, self.meter_provider, self.logger_provider):
            if provider is not None:
                flushed = provider.force_flush(timeout_millis) is not False and flushed
        return flushed

    def shutdown(self, timeout: float | None = None) -> bool:
        """Flush and shut the providers down, then stop NVML; instrumentations stay in place.
        Waits at most ``timeout`` seconds in all (default: ``configure(shutdown_timeout=)``,
        ``LLM_OTEL_SHUTDOWN_TIMEOUT``, 3 s); False when something did not finish in time."""
        providers = [self.tracer_provider, self.meter_provider, self.logger_provider]
        owned = [p for p in providers if p is not None]
        after = [self.gpu.shutdown] if self.gpu is not None else []
        _exit.forget_at_exit(owned, after)
        return _exit.shutdown_within(owned, after, timeout)


_SDK_SELF_METRICS = "OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED"


def with_host_name(resource: Resource) -> Resource:
    """``resource`` with ``host.name`` when it lacks one (set it in OTEL_RESOURCE_ATTRIBUTES to
    override). Without it a host's series are told apart in Prometheus only by
    ``service.instance.id``, a random id that changes at every restart."""
    if HOST_NAME in resource.attributes:
        return resource
    try:
        name = socket.gethostname()
    except OSError:
        return resource
    return Resource({HOST_NAME: name}).merge(resource) if name else resource


def configure(
    *,
    service_name: str | None = None,
    endpoint: str | None = None,
    protocol: str | None = None,
    headers: Mapping[str, str] | None = None,
    resource_attributes: Mapping[str, str] | None = None,
    environment: str | None = None,
    batch: bool = True,
    capture_content: ContentMode | str | bool | None = None,
    content_max_length: int | str | None = None,
    content_redactor: Redactor | None = None,
    instrument: bool | str | Iterable[str] = True,
    gpu: bool | None = None,
    span_exporter: SpanExporter | None = None,
    metric_reader: MetricReader | None = None,
    log_exporter: LogRecordExporter | None = None,
    shutdown_timeout: float | None = None,
    chunk_timing: int | str | bool | None = None,
    evaluators: Any = None,
    evaluation_sample_rate: float | str | None = None,
    drift: Any = None,
) -> Configuration:
    """Set up tracing, metrics and logs with OTLP export and instrument installed LLM clients.

    Every argument left out falls back to the standard ``OTEL_*`` environment variables
    (``OTEL_SERVICE_NAME``, ``OTEL_RESOURCE_ATTRIBUTES``, ``OTEL_EXPORTER_OTLP_ENDPOINT``,
    ``OTEL_EXPORTER_OTLP_PROTOCOL``, ``OTEL_EXPORTER_OTLP_HEADERS``, ``OTEL_{TRACES,METRICS,LOGS}
    _EXPORTER`` = otlp | console | none, ``OTEL_TRACES_SAMPLER``, ...) and then to OTLP over
    HTTP to localhost:4318. ``instrument`` is True (every llm_otel instrumentation whose library
    is installed), False, or entry-point names such as ``["llm_otel_openai"]``. ``gpu`` turns
    the NVML GPU metrics on or off; left out, ``LLM_OTEL_GPU_METRICS`` decides (default on when
    the ``gpu`` extra is installed).

    The batch processors it builds report the SDK's self-metrics to the same meter provider:
    ``otel.sdk.processor.span.processed`` / ``.log.processed`` (with ``error.type=queue_full``
    for what was dropped because the exporter could not keep up) and the queue size and
    capacity. ``OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED=false`` turns them off.

    ``environment`` sets ``deployment.environment.name`` on the resource. ``batch=False``
    exports each span and log record as it ends instead of in batches: for scripts, notebooks
    and tests that must see their telemetry at once (it makes every call wait for the export).
    At exit the providers are shut down (what is left exported) in at most ``shutdown_timeout``
    seconds in all: default ``LLM_OTEL_SHUTDOWN_TIMEOUT``, else 3; the app exits then even if
    the Collector is down or never answers.

    ``chunk_timing`` says how many of a stream's chunk gaps become
    ``gen_ai.client.operation.time_per_output_chunk`` points: 1 (the default, as the conventions
    say) every gap, N one in N (for high-throughput gateways: the same distribution at 1/N of the
    cost), 0 none; left out, ``LLM_OTEL_CHUNK_TIMING`` decides. It holds for every stream that
    ends after the call.

    ``evaluators`` turns on online evaluation (docs/quality.md): a list of evaluators
    (``llm_otel.quality`` objects, functions, built-in names, or ``"default"`` for every
    built-in) run on ``evaluation_sample_rate`` of the finished calls (0.1 by default), off the
    request path; ``[]`` turns it off. Left out, ``LLM_OTEL_EVALUATORS`` and
    ``LLM_OTEL_EVALUATION_SAMPLE_RATE`` decide on the first call, and a later call keeps what
    is set. ``drift`` (True, or ``llm_otel.quality.Drift(window=, min_samples=, baseline=,
    embed=)``) compares the distributions of the evaluated calls' features over the last window
    with a baseline, per model (``llm_otel.drift.divergence``); False turns it off; left out,
    ``LLM_OTEL_DRIFT`` and ``LLM_OTEL_DRIFT_BASELINE`` decide on the first call.

    The content settings (``capture_content``, ``content_max_length``, ``content_redactor``)
    hold for every call recorded after this one, however the instrumentation was applied
    (``opentelemetry-instrument`` included) and on every later ``configure()`` too. The provider
    settings (service name, endpoint, exporters, ...) take effect once: OpenTelemetry's global
    providers can be set only once per process, so a later call, or a call made after
    ``opentelemetry-instrument`` installed its providers, keeps those and logs one warning that
    names each setting it could not apply. A later call still applies ``instrument`` and
    ``gpu`` (instrumenting what was not yet) and returns the first call's configuration.
    """
    global _current
    setup = {
        "service_name": service_name,
        "endpoint": endpoint,
        "protocol": protocol,
        "headers": dict(headers) if headers is not None else None,
        "resource_attributes": dict(resource_attributes) if resource_attributes else None,
        "environment": environment,
        "batch": None if batch else False,
        "span_exporter": span_exporter,
        "metric_reader": metric_reader,
        "log_exporter": log_exporter,
    }
    with _lock:
        _exit.set_timeout(shutdown_timeout)
        set_chunk_timing(chunk_timing)
        _configure_evaluation(evaluators, evaluation_sample_rate, drift)
        set_default_policy(
            _content_policy(default_policy(), capture_content, content_max_length, content_redactor)
        )
        names = _instrument_names(instrument, gpu)
        if _current is not None:
            return _reconfigure(_current, setup, names, gpu)
        _first_setup.update(setup)
        set_content_policy(None)  # the manual API: the default policy, the new providers
        attributes: dict[str, Any] = dict(resource_attributes or {})
        if service_name:
            attributes[SERVICE_NAME] = service_name
        if environment:
            attributes[DEPLOYMENT_ENVIRONMENT_NAME] = environment
        resource = with_host_name(Resource.create(attributes))
        settings = _ExportSettings(endpoint, protocol, headers)

        # The SDK's self-metrics count spans and log records its batch processors drop when the
        # queue is full (an exporter down or slow): on unless the user turned them off.
        os.environ.setdefault(_SDK_SELF_METRICS, "true")
        # Providers someone already installed (opentelemetry-instrument, the app itself) are
        # kept: OTel allows one global provider per signal, and a second set of exporters
        # would run without ever receiving data.
        _warn_preinstalled(setup)
        configuration, owned = _install_providers(
            resource, settings, batch, span_exporter, metric_reader, log_exporter
        )
        configuration.instrumented = _instrument_all(names, gpu=gpu)
        if GPU_ENTRY_POINT in configuration.instrumented:
            from llm_otel.gpu import GPUInstrumentor

            configuration.gpu = GPUInstrumentor._metrics
        gpu_stop = [configuration.gpu.shutdown] if configuration.gpu is not None else []
        _exit.shutdown_at_exit(owned, gpu_stop)
        _current = configuration
        return configuration


def _configure_evaluation(evaluators: Any, sample_rate: Any, drift: Any = None) -> None:
    from llm_otel.quality import configure_evaluation  # only when configure() runs

    with guarded("configure evaluation"):
        configure_evaluation(evaluators, sample_rate, drift)


def _install_providers(
    resource: Resource,
    settings: _ExportSettings,
    batch: bool,
    span_exporter: SpanExporter | None,
    metric_reader: MetricReader | None,
    log_exporter: LogRecordExporter | None,
) -> tuple[Configuration, list[Any]]:
    """The global providers: those already installed are kept, the others made and installed.
    Returns them and the ones made here (shut down at exit by llm-otel, within the budget)."""
    owned: list[Any] = []  # providers made here: configure() shuts them down at exit
    meter_provider = _existing(metrics.get_meter_provider(), MeterProvider)
    if meter_provider is None:
        reader = metric_reader
        if reader is None:
            metric_exp = settings.exporter("metrics")
            if metric_exp is not None:
                reader = PeriodicExportingMetricReader(metric_exp)
        if reader is not None:
            meter_provider = MeterProvider(
                resource=resource, metric_readers=[reader], shutdown_on_exit=False
            )
            owned.append(meter_provider)
            metrics.set_meter_provider(meter_provider)

    tracer_provider = _existing(trace.get_tracer_provider(), TracerProvider)
    if tracer_provider is None:
        span_exp = span_exporter or settings.exporter("traces")
        if span_exp is not None:
            tracer_provider = TracerProvider(resource=resource, shutdown_on_exit=False)
            owned.append(tracer_provider)
            # Before the exporter's processor, so llm_otel.context() ids are on every span.
            tracer_provider.add_span_processor(ScopeSpanProcessor())
            tracer_provider.add_span_processor(
                BatchSpanProcessor(span_exp, meter_provider=meter_provider)
                if batch
                else SimpleSpanProcessor(span_exp)
            )
            trace.set_tracer_provider(tracer_provider)

    logger_provider = _existing(get_logger_provider(), LoggerProvider)
    if logger_provider is None:
        log_exp = log_exporter or settings.exporter("logs")
        if log_exp is not None:
            logger_provider = LoggerProvider(resource=resource, shutdown_on_exit=False)
            owned.append(logger_provider)
            logger_provider.add_log_record_processor(
                BatchLogRecordProcessor(log_exp, meter_provider=meter_provider)
                if batch
                else SimpleLogRecordProcessor(log_exp)
            )
            set_logger_provider(logger_provider)

    return Configuration(tracer_provider, meter_provider, logger_provider), owned


def _providers() -> list[Any]:
    """The SDK providers to flush: configure()'s, else whatever SDK providers are installed
    (``opentelemetry-instrument``'s)."""
    if _current is not None:
        candidates: tuple[Any, ...] = (
            _current.tracer_provider,
            _current.meter_provider,
            _current.logger_provider,
        )
    else:
        candidates = (trace.get_tracer_provider(), metrics.get_meter_provider(),
                      get_logger_provider())  # fmt: skip
    return [p for p in candidates if isinstance(p, TracerProvider | MeterProvider | LoggerProvider)]


def flush(timeout_millis: int = 30_000) -> bool:
    """Export everything recorded so far, now: for scripts, notebooks and tests that end before
    the batch exporters' next round. Returns False when something did not finish in time."""
    drain_abandoned()
    flushed = True
    for provider in _providers():
        flushed = provider.force_flush(timeout_millis) is not False and flushed
    return flushed


def shutdown(timeout: float | None = None) -> bool:
    """Flush and stop the providers (and NVML): nothing is recorded afterwards. Waits at most
    ``timeout`` seconds in all (default: ``configure(shutdown_timeout=)``,
    ``LLM_OTEL_SHUTDOWN_TIMEOUT``, 3 s); False when something did not finish in time."""
    if _current is not None:
        return _current.shutdown(timeout)
    providers = _providers()
    _exit.forget_at_exit(providers)
    return _exit.shutdown_within(providers, (), timeout)


def _reconfigure(
    current: Configuration, setup: dict[str, Any], names: set[str] | None, gpu: bool | None
) -> Configuration:
    """A later configure(): provider settings that differ from the first call's are named in
    one warning; instrument= and gpu= instrument what was not yet."""
    changed = [k for k, v in setup.items() if v is not None and v != _first_setup.get(k)]
    if changed:
        _logger.warning(
            "llm_otel.configure() was already called: %s cannot change once the providers are "
            "set up and %s ignored (content settings and instrument= were applied)",
            ", ".join(changed),
            "was" if len(changed) == 1 else "were",
        )
    for name in _instrument_all(names, gpu=gpu):
        if name not in current.instrumented:
            current.instrumented.append(name)
    return current


def _warn_preinstalled(setup: dict[str, Any]) -> None:
    """One warning when providers someone else installed will not get this call's settings."""
    providers = (metrics.get_meter_provider(), trace.get_tracer_provider(), get_logger_provider())
    installed = [
        type(p).__name__
        for p in providers
        if isinstance(p, MeterProvider | TracerProvider | LoggerProvider)
    ]
    unapplied = [k for k, v in setup.items() if v is not None]
    if installed and unapplied:
        _logger.warning(
            "the OpenTelemetry SDK was set up before llm_otel.configure() (%s already installed, "
            "e.g. by opentelemetry-instrument): %s not applied to it; set them through the "
            "OTEL_* variables (OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES, "
            "OTEL_EXPORTER_OTLP_ENDPOINT, ...) instead",
            ", ".join(installed),
            ", ".join(unapplied),
        )


def _content_policy(
    base: ContentPolicy,
    mode: ContentMode | str | bool | None,
    max_length: int | str | None,
    redactor: Redactor | None,
) -> ContentPolicy:
    """``base`` with what this call says about content; what it leaves out stays as it was."""
    if mode is None and max_length is None and redactor is None:
        return base
    given = policy_from_env(mode, max_length, redactor)
    return ContentPolicy(
        mode=given.mode if mode is not None else base.mode,
        max_length=given.max_length if max_length is not None else base.max_length,
        redactor=redactor if redactor is not None else base.redactor,
    )


def _instrument_names(instrument: bool | str | Iterable[str], gpu: bool | None) -> set[str] | None:
    """The entry points ``instrument=`` and ``gpu=`` ask for (None: every one of ours). Library
    names ("openai", "google-genai") and entry-point names ("llm_otel_openai") are both
    accepted; an unknown one is named in a warning with the valid names."""
    names: set[str] | None = None
    if instrument is not True:
        wanted = [instrument] if isinstance(instrument, str) else list(instrument or ())
        known = _llm_otel_entry_points()
        names = set()
        for name in wanted:
            entry = name if name in known else f"llm_otel_{str(name).replace('-', '_')}"
            if entry in known:
                names.add(entry)
            else:
                valid = sorted(n.removeprefix("llm_otel_") for n in known)
                _logger.warning(
                    "configure(instrument=...): %r is not an llm_otel instrumentation; "
                    "valid names: %s",
                    name,
                    ", ".join(valid),
                )
    if gpu is False:
        names = (_llm_otel_entry_points() if names is None else names) - {GPU_ENTRY_POINT}
    elif gpu is True and names is not None:
        names.add(GPU_ENTRY_POINT)
    return names


_P = TypeVar("_P")


def _existing(provider: object, sdk_type: type[_P]) -> _P | None:
    """The globally installed SDK provider, if one is already set."""
    if isinstance(provider, sdk_type):
        _logger.info("using the %s that is already installed", sdk_type.__name__)
        return provider
    return None


def _active(name: str, instrumentor: Any) -> bool:
    """Whether an instrumentor that ran really instruments something: instrument() marks it done
    even when its library is missing or of an unsupported version (it then patches nothing)."""
    if name != GPU_ENTRY_POINT:
        # A framework instrumentor patches when the app imports the framework: pending counts.
        return bool(instrumentor._patches) or bool(getattr(instrumentor, "pending", False))
    from llm_otel.gpu import GPUInstrumentor

    metrics = GPUInstrumentor._metrics
    return metrics is not None and metrics.session is not None


class _ExportSettings:
    """Picks each signal's exporter from the arguments and the OTEL_* variables."""

    def __init__(
        self, endpoint: str | None, protocol: str | None, headers: Mapping[str, str] | None
    ) -> None:
        self.endpoint = endpoint
        self.protocol = protocol
        self.headers = dict(headers) if headers else None

    def exporter(self, signal: str) -> Any:
        env = _SIGNALS[signal]
        name = os.environ.get(f"OTEL_{env}_EXPORTER", "otlp").strip().lower()
        if name == "none":
            return None
        if name == "console":
            return {"traces": ConsoleSpanExporter, "metrics": ConsoleMetricExporter}.get(
                signal, ConsoleLogRecordExporter
            )()
        if name != "otlp":
            _logger.warning("OTEL_%s_EXPORTER=%r is not supported; using otlp", env, name)
        protocol = (
            self.protocol
            or os.environ.get(f"OTEL_EXPORTER_OTLP_{env}_PROTOCOL")
            or os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL")
            or DEFAULT_PROTOCOL
        ).strip()
        kwargs: dict[str, Any] = {}
        if self.headers:
            kwargs["headers"] = self.headers
        if protocol == "grpc":
            if self.endpoint:
                kwargs["endpoint"] = self.endpoint
            return _grpc_exporter(signal)(**kwargs)
        if protocol not in ("http/protobuf", "http"):
            _logger.warning("OTLP protocol %r is not supported; using http", protocol)
        if self.endpoint:
            kwargs["endpoint"] = f"{self.endpoint.rstrip('/')}/{_HTTP_PATHS[signal]}"
        return _http_exporter(signal)(**kwargs)


def _grpc_exporter(signal: str) -> Any:
    if signal == "traces":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter
    if signal == "metrics":
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter

        return OTLPMetricExporter
    from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter

    return OTLPLogExporter


def _http_exporter(signal: str) -> Any:
    if signal == "traces":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
            OTLPSpanExporter as HTTPSpanExporter,
        )

        return HTTPSpanExporter
    if signal == "metrics":
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import (
            OTLPMetricExporter as HTTPMetricExporter,
        )

        return HTTPMetricExporter
    from opentelemetry.exporter.otlp.proto.http._log_exporter import (
        OTLPLogExporter as HTTPLogExporter,
    )

    return HTTPLogExporter


def _entry_points() -> Any:
    # importlib.metadata costs ~25 ms to import: only configure() needs it, not `import llm_otel`.
    from importlib.metadata import entry_points

    return entry_points(group="opentelemetry_instrumentor")


def _llm_otel_entry_points() -> set[str]:
    return {ep.name for ep in _entry_points() if ep.value.startswith("llm_otel.")}


def _instrument_all(names: set[str] | None, **kwargs: Any) -> list[str]:
    """Instrument every llm_otel instrumentor (or those named), honouring
    ``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS``; returns the names instrumented."""
    disabled = {
        n.strip() for n in os.environ.get("OTEL_PYTHON_DISABLED_INSTRUMENTATIONS", "").split(",")
    }
    done: list[str] = []
    for entry_point in _entry_points():
        if not entry_point.value.startswith("llm_otel."):
            continue
        if entry_point.name in disabled or "*" in disabled:
            continue
        if names is not None and entry_point.name not in names:
            continue
        try:
            instrumentor = entry_point.load()()
            if not instrumentor.is_instrumented_by_opentelemetry:
                instrumentor.instrument(skip_dep_check=True, **kwargs)
            if instrumentor.is_instrumented_by_opentelemetry and _active(
                entry_point.name, instrumentor
            ):
                done.append(entry_point.name)
        except Exception as exc:
            _logger.warning("could not instrument %s: %r", entry_point.name, exc)
    return done
