"""Fixtures: a live OpenAI-compatible server on loopback, in-memory OTel exporters, and the
OpenAI instrumentation installed on them (torn down after every test)."""

from __future__ import annotations

import gc
import importlib.util
import inspect
import json
import os
import shutil
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openai
import pytest
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from llm_otel.genai import ContentMode, ContentPolicy, GenAITelemetry, drain_abandoned
from llm_otel.instrumentation.openai import OpenAIInstrumentor
from llm_otel.manual import _defaults as manual_defaults
from tests.libraries import SERVERS, Env, Library
from tests.servers.openai_server import OpenAITestServer
from tests.servers.otlp_receiver import OTLPReceiver

# tests/peers needs other vendors' instrumentations installed (.venv-peers, see scripts/test.sh).
collect_ignore = [] if os.environ.get("LLM_OTEL_PEER_TESTS") else ["peers"]
# tests/litellm needs litellm, which has its own venv (.venv-litellm, see scripts/test.sh).
if not os.environ.get("LLM_OTEL_LITELLM_TESTS"):
    collect_ignore.append("litellm")
# tests/training needs torch, transformers and lightning, in their own venv (.venv-training).
if not os.environ.get("LLM_OTEL_TRAINING_TESTS"):
    collect_ignore.append("training")
# LlamaIndex's OpenAI classes need openai < 3: their own venv, .venv-llamaindex (scripts/test.sh).
if not os.environ.get("LLM_OTEL_LLAMA_INDEX_TESTS"):
    collect_ignore.append("llama_index")


@pytest.fixture(scope="session")
def server() -> Iterator[OpenAITestServer]:
    srv = OpenAITestServer().start()
    yield srv
    srv.stop()


@pytest.fixture
def receiver() -> Iterator[OTLPReceiver]:
    """A local OTLP/HTTP receiver that keeps what exporters send it."""
    r = OTLPReceiver().start()
    yield r
    r.stop()


def installed_command(name: str) -> str:
    """Path of a console script installed next to the running interpreter."""
    found = shutil.which(name, path=str(Path(sys.executable).parent))
    assert found, f"{name} is installed with the package"
    return found


@dataclass
class Telemetry:
    """In-memory view of everything the instrumentation exported."""

    spans_exporter: InMemorySpanExporter
    metric_reader: InMemoryMetricReader
    logs_exporter: InMemoryLogRecordExporter
    tracer_provider: TracerProvider
    meter_provider: MeterProvider | None = None
    logger_provider: LoggerProvider | None = None

    @property
    def providers(self) -> dict[str, Any]:
        """The providers as instrument() keyword arguments."""
        return {
            "tracer_provider": self.tracer_provider,
            "meter_provider": self.meter_provider,
            "logger_provider": self.logger_provider,
        }

    def spans(self) -> list[ReadableSpan]:
        # Streams abandoned to the garbage collector are ended off its path, a moment later.
        drain_abandoned()
        return list(self.spans_exporter.get_finished_spans())

    def only_span(self) -> ReadableSpan:
        spans = self.spans()
        assert len(spans) == 1, [s.name for s in spans]
        return spans[0]

    def span_named(self, name: str) -> ReadableSpan:
        """The one finished span called ``name``."""
        spans = [s for s in self.spans() if s.name == name]
        assert len(spans) == 1, (name, [s.name for s in self.spans()])
        return spans[0]

    def recorded_text(self) -> str:
        """Everything recorded that could hold text: span attributes, event attributes, status
        descriptions and log records (for checks that content stays out)."""
        out = []
        for span in self.spans():
            out.append(json.dumps(dict(span.attributes or {}), default=str))
            out.extend(json.dumps(dict(e.attributes or {}), default=str) for e in span.events)
            out.append(span.status.description or "")
        out.extend(json.dumps(dict(r.attributes or {}), default=str) for r in self.logs())
        return "\n".join(out)

    def points(self, name: str) -> list[Any]:
        drain_abandoned()
        data = self.metric_reader.get_metrics_data()
        found: list[Any] = []
        for resource_metrics in data.resource_metrics if data else ():
            for scope_metrics in resource_metrics.scope_metrics:
                for metric in scope_metrics.metrics:
                    if metric.name == name:
                        found.extend(metric.data.data_points)
        return found

    def metric(self, name: str) -> Any:
        drain_abandoned()
        data = self.metric_reader.get_metrics_data()
        for resource_metrics in data.resource_metrics if data else ():
            for scope_metrics in resource_metrics.scope_metrics:
                for metric in scope_metrics.metrics:
                    if metric.name == name:
                        return metric
        raise AssertionError(f"no metric {name}")

    def logs(self) -> list[Any]:
        return [r.log_record for r in self.logs_exporter.get_finished_logs()]


def make_telemetry(policy: ContentPolicy, *, instrument_openai: bool = True) -> Telemetry:
    """Fresh in-memory providers, the manual API recording to them and, unless told otherwise,
    the OpenAI instrumentation applied to them."""
    spans = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    logs = InMemoryLogRecordExporter()
    logger_provider = LoggerProvider()
    logger_provider.add_log_record_processor(SimpleLogRecordProcessor(logs))
    if instrument_openai:
        OpenAIInstrumentor().instrument(
            tracer_provider=tracer_provider,
            meter_provider=meter_provider,
            logger_provider=logger_provider,
            content_policy=policy,
        )
    # The manual API (llm_otel.workflow, llm_call, ...) records to the same providers.
    manual_defaults._telemetry = GenAITelemetry(
        tracer_provider=tracer_provider,
        meter_provider=meter_provider,
        logger_provider=logger_provider,
        content=policy,
    )
    return Telemetry(spans, reader, logs, tracer_provider, meter_provider, logger_provider)


def framework_telemetry(
    instrumentor: Any, policy: ContentPolicy, client: bool, then: Any = None
) -> Iterator[Telemetry]:
    """A framework ``instrumentor`` (LangChain, the Agents SDK, LlamaIndex) on fresh in-memory
    providers, with (``client``: the usual set-up) or without the openai instrumentation, ``then``
    called after; all undone at the end. For a fixture to ``yield from``."""
    result = make_telemetry(policy, instrument_openai=client)
    instrumentor.instrument(**result.providers, content_policy=policy)
    if then is not None:
        then()
    yield result
    instrumentor.uninstrument()
    OpenAIInstrumentor().uninstrument()
    manual_defaults.set_content_policy(None)
    gc.collect()


class OpenSpans(SpanProcessor):
    """Tracks spans started and not yet ended."""

    def __init__(self) -> None:
        self.started = 0
        self._open: set[int] = set()
        self._lock = threading.Lock()

    def on_start(self, span: Span, parent_context: Any = None) -> None:
        with self._lock:
            self.started += 1
            self._open.add(span.context.span_id)

    def on_end(self, span: ReadableSpan) -> None:
        with self._lock:
            self._open.discard(span.context.span_id)  # type: ignore[union-attr]

    @property
    def open(self) -> int:
        return len(self._open)


def boom(*args: Any, **kwargs: Any) -> Any:
    """Stands in for a step of recording, to inject a fault."""
    raise RuntimeError("injected fault")


@pytest.fixture
def content_policy() -> ContentPolicy:
    """Override in a test module (or parametrize) to turn content capture on."""
    return ContentPolicy(ContentMode.NO_CONTENT)


@pytest.fixture
def telemetry(content_policy: ContentPolicy) -> Iterator[Telemetry]:
    result = make_telemetry(content_policy)
    yield result
    OpenAIInstrumentor().uninstrument()
    manual_defaults.set_content_policy(None)
    gc.collect()


def telemetry_with(instrumentor: Any, policy: ContentPolicy) -> Iterator[Telemetry]:
    """For a library's own ``telemetry`` fixture: fresh providers with only ``instrumentor``
    (a class) applied, removed afterwards.

        @pytest.fixture
        def telemetry(content_policy): yield from telemetry_with(GroqInstrumentor, content_policy)
    """
    result = make_telemetry(policy, instrument_openai=False)
    instrumentor().instrument(**result.providers, content_policy=policy)
    yield result
    instrumentor().uninstrument()
    manual_defaults.set_content_policy(None)
    gc.collect()


@pytest.fixture
def client(server: OpenAITestServer, telemetry: Telemetry) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=server.base_url, api_key="test-key", max_retries=0) as c:
        yield c


@pytest.fixture
async def aclient(server: OpenAITestServer, telemetry: Telemetry) -> Any:
    async with openai.AsyncOpenAI(base_url=server.base_url, api_key="test-key", max_retries=0) as c:
        yield c


USER = [{"role": "user", "content": "Say hello"}]

# The oldest supported SDK (1.40) predates the Responses API and chat.completions.parse.
HAS_RESPONSES = importlib.util.find_spec("openai.resources.responses") is not None
requires_responses = pytest.mark.skipif(not HAS_RESPONSES, reason="openai without Responses API")


def accepts(target: str, parameter: str) -> bool:
    """Whether ``module:Class.method`` of the installed SDK takes ``parameter``."""
    module_name, _, qualname = target.partition(":")
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError:
        return False
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return parameter in inspect.signature(obj).parameters


def chat_stream_helper(client: Any) -> Any:
    """``chat.completions.stream`` (newer SDKs) or ``beta.chat.completions.stream`` (older)."""
    completions = client.chat.completions
    return (
        completions.stream
        if hasattr(completions, "stream")
        else client.beta.chat.completions.stream
    )


@pytest.fixture(scope="session", autouse=True)
def _stop_shared_servers() -> Iterator[None]:
    yield
    for shared in SERVERS.values():
        shared.stop()
    SERVERS.clear()


@pytest.fixture
def env(request: pytest.FixtureRequest, content_policy: ContentPolicy) -> Iterator[Env]:
    """``@pytest.mark.parametrize("env", library_params(), indirect=True)``: each library
    instrumented, alone, onto fresh in-memory providers."""
    library: Library = request.param
    for telemetry in telemetry_with(library.instrumentor_class(), content_policy):
        yield Env(library, telemetry)
