"""Running a peers scenario in a fresh process: instrumentors are process singletons, and some
vendors' do not record again after an uninstrument() in the same process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def in_fresh_process(module: str, *args: Any) -> dict[str, Any]:
    """``module.scenario(*args)`` run in a new interpreter; what it returned (JSON)."""
    code = f"import json; from {module} import scenario; print(json.dumps(scenario(*{args!r})))"
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                            text=True, timeout=120, check=False)  # fmt: skip
    assert result.returncode == 0, result.stderr
    seen: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return seen


def our_calls_and_tokens(reader: Any, operation: str | None = None) -> dict[str, Any]:
    """What llm-otel's metrics in ``reader`` (an InMemoryMetricReader) counted: calls, and tokens
    by type; only ``operation``'s when given."""
    data = reader.get_metrics_data()
    points = [
        (metric.name, point)
        for rm in (data.resource_metrics if data else ())
        for sm in rm.scope_metrics
        if sm.scope.name == "llm_otel"
        for metric in sm.metrics
        for point in metric.data.data_points
        if operation is None or point.attributes.get("gen_ai.operation.name") == operation
    ]
    tokens = {p.attributes["gen_ai.token.type"]: p.sum for n, p in points
              if n == "gen_ai.client.token.usage"}  # fmt: skip
    calls = sum(p.count for n, p in points if n == "gen_ai.client.operation.duration")
    return {"our_calls": calls, "our_tokens": tokens}


def assert_once_per_request(
    seen: dict[str, Any], requests: int, spans_key: str, usage: tuple[int, int]
) -> None:
    """One model span per HTTP request to the model, and llm-otel's metrics counting each call
    once: ``usage`` is the server's (input, output) tokens per request."""
    assert len(seen[spans_key]) == requests, seen[spans_key]
    assert seen["our_calls"] == requests
    assert seen["our_tokens"] == {"input": requests * usage[0], "output": requests * usage[1]}


def side_by_side(framework: Any, peer: Any, ours_first: bool, client: bool) -> tuple[Any, Any]:
    """Fresh providers with ``framework`` (our instrumentor class) and, with ``client``, our
    openai instrumentation on them, and another vendor's ``peer`` instrumentor, ours first or
    theirs; returns the span exporter and the metric reader."""
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from llm_otel.genai import ContentPolicy
    from llm_otel.instrumentation.openai import OpenAIInstrumentor

    spans = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    reader = InMemoryMetricReader()
    providers = {"tracer_provider": tracer_provider,
                 "meter_provider": MeterProvider(metric_readers=[reader])}  # fmt: skip
    ours = [framework(), *([OpenAIInstrumentor()] if client else [])]
    order = [*ours, peer] if ours_first else [peer, *ours]
    for instrumentor in order:
        if instrumentor is peer:
            peer.instrument(**providers)
        else:
            instrumentor.instrument(**providers, content_policy=ContentPolicy())
    return spans, reader
