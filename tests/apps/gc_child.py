"""Child process for the finalizer tests: abandons streams held in reference cycles while the
garbage collector runs inside the metric SDK's locks, and prints what happened as JSON.

    python -m tests.apps.gc_child LIBRARY sync|async [baseline]

Run in a subprocess with a time limit, so that a deadlock fails the test instead of hanging it.
"""

from __future__ import annotations

import asyncio
import gc
import json
import sys
import time
from typing import Any

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics._internal import aggregation
from opentelemetry.sdk.metrics.export import (
    InMemoryMetricReader,
    MetricExporter,
    MetricExportResult,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from llm_otel.genai import ContentMode, ContentPolicy
from tests.libraries import LIBRARIES

try:
    from llm_otel.genai import drain_abandoned
except ImportError:  # llm_otel before the hand-off existed (to measure the "before")

    def drain_abandoned(wait: bool = True) -> int:
        return 0


class _Discard(MetricExporter):
    def __init__(self) -> None:
        super().__init__()

    def export(self, metrics_data: Any, timeout_millis: float = 10_000, **kwargs: Any) -> Any:
        return MetricExportResult.SUCCESS

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return True

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        pass


def _cycle(stream: Any) -> None:
    """Keep ``stream`` alive only through a reference cycle: only the collector frees it."""
    holder: dict[str, Any] = {"stream": stream}
    holder["self"] = holder


async def _open_async(library: Any, client: Any, model: str) -> Any:
    stream = await library.astream(client, model, "hello")
    await stream.__anext__()
    return stream


def main() -> None:
    name, mode = sys.argv[1], sys.argv[2]
    library = next(lib for lib in LIBRARIES if lib.name == name)
    server = library.server_class()().start()
    spans = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    reader = InMemoryMetricReader()
    periodic = PeriodicExportingMetricReader(_Discard(), export_interval_millis=1)
    meter_provider = MeterProvider(metric_readers=[reader, periodic], shutdown_on_exit=False)
    baseline = len(sys.argv) > 3 and sys.argv[3] == "baseline"  # the same load, uninstrumented
    instrument = (lambda **kw: None) if baseline else library.instrumentor_class()().instrument
    instrument(
        tracer_provider=tracer_provider,
        meter_provider=meter_provider,
        content_policy=ContentPolicy(ContentMode.SPAN_ONLY),
    )
    client = (library.aclient if mode == "async" else library.client)(server)
    loop = asyncio.new_event_loop()

    def abandon(model: str) -> None:
        if mode == "async":
            stream = loop.run_until_complete(_open_async(library, client, model))
        else:
            stream = library.stream(client, model, "hello")
            next(iter(stream))
        getattr(stream, "response", None)  # the SDK helpers' way into a cycle
        if mode == "sync" and (library.gc_unsafe_transport or "httpx2" not in sys.modules):
            # Close the HTTP response underneath (not through the proxy, which stays
            # unfinished): what is left to the collector is ours, not httpcore's.
            wrapped = getattr(stream, "__wrapped__", stream)  # google-genai: the SDK generator
            close = getattr(wrapped, "close", None) or wrapped.response.close
            close()
        _cycle(stream)

    # 1. Deterministic: the collector runs while collect() holds a histogram's lock. A
    # finalizer that records a new attribute set (another model) into that histogram waits on
    # a lock its own thread holds.
    original = aggregation._ExplicitBucketHistogramAggregation.collect

    def collect_with_gc(self: Any, *args: Any, **kwargs: Any) -> Any:
        gc.collect()
        return original(self, *args, **kwargs)

    sync_client = library.client(server)
    library.chat(sync_client, library.model, "hello")  # the histograms have points to collect
    gc.disable()
    opened_at = time.time_ns()
    abandon("long-stream")
    aggregation._ExplicitBucketHistogramAggregation.collect = collect_with_gc  # type: ignore[method-assign]
    reader.get_metrics_data()  # the stream is collected, so abandoned, in here
    collected_at = time.time_ns()
    aggregation._ExplicitBucketHistogramAggregation.collect = original  # type: ignore[method-assign]
    gc.enable()
    time.sleep(0.3)
    drain_abandoned()
    ended = [s for s in spans.get_finished_spans() if s.attributes.get("gen_ai.request.stream")]
    result: dict[str, Any] = {"deterministic_spans": len(ended)}
    if ended:
        # The span's end is when the collector abandoned the stream, not the drain 0.3 s later.
        result["ended_in_collection"] = opened_at <= ended[0].end_time <= collected_at
        result["ended_after_open_s"] = (ended[0].end_time - opened_at) / 1e9

    # 2. Under pressure: a tight collector threshold, a 1 ms reader, streams abandoned in cycles.
    gc.set_threshold(50)
    deadline = time.monotonic() + 1.5
    calls = 0
    while time.monotonic() < deadline:
        abandon("long-stream")
        calls += 1
    gc.set_threshold(700)
    meter_provider.shutdown()  # the 1 ms reader's thread stops collecting garbage of its own
    # gc.collect() does nothing while another thread (the drainer) is mid-collection: settle
    # until every abandoned stream has ended, for at most 5 s.
    settle_until = time.monotonic() + 5
    while True:
        gc.collect()
        drain_abandoned()
        streamed = [
            s for s in spans.get_finished_spans() if s.attributes.get("gen_ai.request.stream")
        ]
        if len(streamed) - len(ended) >= calls or time.monotonic() > settle_until:
            break
        time.sleep(0.05)
    result.update(stress_calls=calls, stress_spans=len(streamed) - len(ended))
    print(json.dumps(result), flush=True)
    server.stop()


if __name__ == "__main__":
    main()
