"""What the framework benchmarks (bench/langchain.py, bench/openai_agents.py,
bench/llamaindex_rag.py) share: a span exporter that only counts, one measured variant, and the
command line that times each variant, interleaved per round, against the baseline."""

from __future__ import annotations

import argparse
import gc
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

Timed = Callable[[str, int], tuple[float, float]]
"""``timed(variant, calls)``: microseconds per run, and spans exported per run."""


class Counting(SpanExporter):
    def __init__(self) -> None:
        self.count = 0

    def export(self, spans: Any) -> SpanExportResult:
        self.count += len(spans)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        return None


def main(description: str, variants: Sequence[str], timed: Timed, calls: int) -> None:
    """``--only VARIANT`` runs one variant once (for callgrind); else every variant, ``--rounds``
    times, printing the median per run, the spread, the overhead over ``variants[0]`` (the
    baseline) and spans per run."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--calls", type=int, default=calls)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--only", choices=variants, help="one variant, once (for callgrind)")
    args = parser.parse_args()
    if args.only:
        micros, per_run = timed(args.only, args.calls)
        print(f"{args.only}: {micros:.0f} µs/run, {per_run:.1f} spans/run")
        return
    times: dict[str, list[float]] = {v: [] for v in variants}
    spans: dict[str, float] = {}
    for _ in range(args.rounds):
        for variant in variants:
            micros, per_run = timed(variant, args.calls)
            times[variant].append(micros)
            spans[variant] = per_run
    base = statistics.median(times[variants[0]])
    print(f"{'variant':<20} {'µs/run':>8} {'min..max':>15} {'overhead':>9} {'spans/run':>10}")
    for variant in variants:
        median = statistics.median(times[variant])
        spread = f"{min(times[variant]):.0f}..{max(times[variant]):.0f}"
        overhead = "" if variant == variants[0] else f"{median - base:+.0f}"
        print(f"{variant:<20} {median:>8.0f} {spread:>15} {overhead:>9} {spans[variant]:>10.1f}")


def measure(
    variant: str,
    framework: Any,
    make: Callable[[], Callable[[], Any]],
    calls: int,
    *,
    freeze: bool = False,
) -> tuple[float, float]:
    """Microseconds per run and spans exported per run of ``make()``'s callable, under
    ``variant``: ``baseline``, ``openai only``, ``X + openai`` or ``X only``, where X is what
    ``framework`` (an instrumentor class) instruments. ``make`` is called after instrumenting,
    as an app builds its objects after start-up. ``freeze``: ``gc.freeze()`` after the warm-up
    (a large heap otherwise puts full collections on whichever run triggers one)."""
    from llm_otel.instrumentation.openai import OpenAIInstrumentor

    exporter = Counting()
    tracer_provider = TracerProvider()
    processor = BatchSpanProcessor(exporter)
    tracer_provider.add_span_processor(processor)
    meter_provider = MeterProvider(metric_readers=[InMemoryMetricReader()])
    providers = {"tracer_provider": tracer_provider, "meter_provider": meter_provider}
    with_openai = variant == "openai only" or variant.endswith(" + openai")
    with_framework = variant.endswith(" + openai") or (
        variant.endswith(" only") and variant != "openai only"
    )
    if with_openai:
        OpenAIInstrumentor().instrument(**providers)
    if with_framework:
        framework().instrument(**providers)
    try:
        run = make()
        for _ in range(20):  # warm-up
            run()
        if freeze:
            gc.collect()
            gc.freeze()
        processor.force_flush()
        exporter.count = 0
        start = time.perf_counter()
        for _ in range(calls):
            run()
        elapsed = time.perf_counter() - start
        processor.force_flush()
    finally:
        if freeze:
            gc.unfreeze()
        if with_openai:
            OpenAIInstrumentor().uninstrument()
        if with_framework:
            framework().uninstrument()
        tracer_provider.shutdown()
    return elapsed / calls * 1e6, exporter.count / calls
