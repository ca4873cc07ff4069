"""One benchmark process: one instrumentation variant, every scenario, per-call times as JSON.

Run by bench/run.py inside the variant's own virtualenv (the peers pin conflicting versions):

    python bench/worker.py VARIANT --content off|on --calls N

The OpenAI client talks to an in-process transport (no network, no server), so the figure is
the cost of the client plus the instrumentation. Spans go through a BatchSpanProcessor to an
exporter that drops them; metrics to an in-memory reader.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

CHUNKS = 20
USAGE = {"prompt_tokens": 12, "completion_tokens": 20, "total_tokens": 32}
MESSAGES = [
    {"role": "system", "content": "You are a helpful assistant."},
    {"role": "user", "content": "Write one short sentence about observability."},
]


def _completion() -> bytes:
    return json.dumps(
        {
            "id": "chatcmpl-bench",
            "object": "chat.completion",
            "created": 1,
            "model": "gpt-4o-mini-2024-07-18",
            "system_fingerprint": "fp",
            "choices": [
                {
                    "index": 0,
                    "finish_reason": "stop",
                    "message": {"role": "assistant", "content": "Observability is x " * 5},
                }
            ],
            "usage": USAGE,
        }
    ).encode()


def _stream() -> bytes:
    base = {
        "id": "chatcmpl-bench",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "gpt-4o-mini-2024-07-18",
    }
    frames = [
        {
            **base,
            "choices": [
                {"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}
            ],
        }
    ]
    frames += [
        {**base, "choices": [{"index": 0, "delta": {"content": f"tok{i} "}, "finish_reason": None}]}
        for i in range(CHUNKS - 2)
    ]
    frames.append(
        {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}], "usage": USAGE}
    )
    body = "".join(f"data: {json.dumps(f)}\n\n" for f in frames) + "data: [DONE]\n\n"
    return body.encode()


def _http_module() -> Any:
    """The HTTP library the installed openai uses (httpx2 from openai 3, httpx before)."""
    import importlib
    import importlib.util

    uses_httpx2 = importlib.util.find_spec("openai._httpx2") is not None
    return importlib.import_module("httpx2" if uses_httpx2 else "httpx")


def make_clients() -> tuple[Any, Any]:
    import openai

    http = _http_module()
    completion, stream = _completion(), _stream()

    def handler(request: Any) -> Any:
        wants_stream = b'"stream":true' in request.content.replace(b" ", b"")
        if wants_stream:
            return http.Response(200, headers={"content-type": "text/event-stream"}, content=stream)
        return http.Response(200, headers={"content-type": "application/json"}, content=completion)

    async def ahandler(request: Any) -> Any:
        return handler(request)

    client = openai.OpenAI(
        api_key="k",
        base_url="http://bench.invalid/v1",
        max_retries=0,
        http_client=http.Client(transport=http.MockTransport(handler)),
    )
    aclient = openai.AsyncOpenAI(
        api_key="k",
        base_url="http://bench.invalid/v1",
        max_retries=0,
        http_client=http.AsyncClient(transport=http.MockTransport(ahandler)),
    )
    return client, aclient


def providers() -> tuple[Any, Any, Any]:
    from opentelemetry import metrics, trace
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

    class Drop(SpanExporter):
        exported = 0

        def export(self, spans: Sequence[Any]) -> SpanExportResult:
            Drop.exported += len(spans)
            return SpanExportResult.SUCCESS

    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(BatchSpanProcessor(Drop(), max_queue_size=100_000))
    meter_provider = MeterProvider(metric_readers=[InMemoryMetricReader()])
    tracer_provider.drop_exporter = Drop  # type: ignore[attr-defined]
    trace.set_tracer_provider(tracer_provider)
    metrics.set_meter_provider(meter_provider)
    logger_provider = None
    try:
        from opentelemetry._logs import set_logger_provider
        from opentelemetry.sdk._logs import LoggerProvider

        logger_provider = LoggerProvider()
        set_logger_provider(logger_provider)
    except ImportError:
        pass
    return tracer_provider, meter_provider, logger_provider


def content_env(variant: str, on: bool) -> None:
    """Each library's own switch for recording prompts and responses."""
    os.environ["OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"] = (
        "SPAN_ONLY" if on else "NO_CONTENT"
    )
    os.environ["TRACELOOP_TRACE_CONTENT"] = "true" if on else "false"  # OpenLLMetry
    for name in (
        "OPENINFERENCE_HIDE_INPUTS",
        "OPENINFERENCE_HIDE_OUTPUTS",
        "OPENINFERENCE_HIDE_INPUT_MESSAGES",
        "OPENINFERENCE_HIDE_OUTPUT_MESSAGES",
    ):
        os.environ[name] = "false" if on else "true"
    if variant == "otel-official":
        os.environ["OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"] = "true" if on else "false"


def instrument(variant: str, content: bool, tp: Any, mp: Any, lp: Any) -> Callable[..., Any] | None:
    """Install the variant; returns a wrapper for the hand-written variant, else None."""
    if variant == "baseline":
        return None
    if variant == "llm_otel":
        from llm_otel.instrumentation.openai import OpenAIInstrumentor

        OpenAIInstrumentor().instrument(tracer_provider=tp, meter_provider=mp, logger_provider=lp)
    elif variant == "openllmetry":
        from opentelemetry.instrumentation.openai import OpenAIInstrumentor as OL

        OL().instrument(tracer_provider=tp, meter_provider=mp)
    elif variant == "openinference":
        from openinference.instrumentation.openai import OpenAIInstrumentor as OI

        OI().instrument(tracer_provider=tp)
    elif variant == "otel-official":
        from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor as V2

        V2().instrument(tracer_provider=tp, meter_provider=mp, logger_provider=lp)
    elif variant == "openlit":
        import openlit

        # openlit reuses the SDK providers set above; "none" keeps it from adding exporters.
        for signal in ("TRACES", "METRICS", "LOGS"):
            os.environ[f"OTEL_{signal}_EXPORTER"] = "none"
        openlit.init(
            capture_message_content=content,
            disable_batch=False,
            collect_gpu_stats=False,
            disable_metrics=False,
        )
    elif variant == "manual":
        return manual_wrapper(tp, mp)
    else:
        raise SystemExit(f"unknown variant {variant}")
    return None


def manual_wrapper(tp: Any, mp: Any) -> Callable[..., Any]:
    """A hand-written minimal span with the same attributes and the same metric records."""
    from opentelemetry.trace import SpanKind

    tracer = tp.get_tracer("manual")
    meter = mp.get_meter("manual")
    duration = meter.create_histogram("gen_ai.client.operation.duration", unit="s")
    tokens = meter.create_histogram("gen_ai.client.token.usage", unit="{token}")
    ttfc = meter.create_histogram("gen_ai.client.operation.time_to_first_chunk", unit="s")
    per_chunk = meter.create_histogram("gen_ai.client.operation.time_per_output_chunk", unit="s")

    def call(fn: Callable[..., Any], stream: bool) -> Any:
        attrs = {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "openai",
            "gen_ai.request.model": "gpt-4o-mini",
            "server.address": "bench.invalid",
            "server.port": 80,
        }
        start = time.perf_counter()
        with tracer.start_as_current_span(
            "chat gpt-4o-mini", kind=SpanKind.CLIENT, attributes=attrs
        ) as span:
            result = fn()
            usage = None
            if stream:
                first = last = None
                gaps = []
                for chunk in result:
                    now = time.perf_counter()
                    if first is None:
                        first = now
                    else:
                        gaps.append(now - last)
                    last = now
                    usage = chunk.usage or usage
            else:
                usage = result.usage
            span.set_attributes(
                {
                    "gen_ai.response.id": "chatcmpl-bench",
                    "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
                    "gen_ai.response.finish_reasons": ["stop"],
                    "gen_ai.usage.input_tokens": usage.prompt_tokens,
                    "gen_ai.usage.output_tokens": usage.completion_tokens,
                }
            )
        attrs = {**attrs, "gen_ai.response.model": "gpt-4o-mini-2024-07-18"}
        duration.record(time.perf_counter() - start, attrs)
        if stream:
            ttfc.record((first or start) - start, attrs)
            for gap in gaps:
                per_chunk.record(gap, attrs)
        tokens.record(usage.prompt_tokens, {**attrs, "gen_ai.token.type": "input"})
        tokens.record(usage.completion_tokens, {**attrs, "gen_ai.token.type": "output"})
        return result

    return call


def run(variant: str, content: bool, calls: int, scenario: str | None = None) -> dict[str, float]:
    content_env(variant, content)
    tp, mp, lp = providers()
    manual = instrument(variant, content, tp, mp, lp)
    client, aclient = make_clients()
    create = client.chat.completions.create
    acreate = aclient.chat.completions.create

    def chat() -> None:
        if manual:
            manual(lambda: create(model="gpt-4o-mini", messages=MESSAGES), False)
        else:
            create(model="gpt-4o-mini", messages=MESSAGES)

    def stream() -> None:
        def go() -> Any:
            return create(
                model="gpt-4o-mini",
                messages=MESSAGES,
                stream=True,
                stream_options={"include_usage": True},
            )

        if manual:
            manual(go, True)
        else:
            for _ in go():
                pass

    async def achat() -> None:
        await acreate(model="gpt-4o-mini", messages=MESSAGES)

    async def astream() -> None:
        s = await acreate(
            model="gpt-4o-mini",
            messages=MESSAGES,
            stream=True,
            stream_options={"include_usage": True},
        )
        async for _ in s:
            pass

    def timed(fn: Callable[[], None]) -> float:
        for _ in range(max(calls // 10, 20)):
            fn()  # warm-up
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        return (time.perf_counter() - start) / calls * 1e6

    def atimed(fn: Callable[[], Any]) -> float:
        async def loop(n: int) -> None:
            for _ in range(n):
                await fn()

        asyncio.run(loop(max(calls // 10, 20)))
        start = time.perf_counter()
        asyncio.run(loop(calls))
        return (time.perf_counter() - start) / calls * 1e6

    runs: dict[str, Callable[[], float]] = {
        "chat sync": lambda: timed(chat),
        "stream sync": lambda: timed(stream),
    }
    if not manual:  # the hand-written span is written for the sync client only
        runs["chat async"] = lambda: atimed(achat)
        runs["stream async"] = lambda: atimed(astream)
    if scenario is not None:  # one scenario alone (bench/icount.py counts instructions per run)
        runs = {scenario: runs[scenario]} if scenario in runs else {}
    results = {name: measure() for name, measure in runs.items()}
    tp.shutdown()
    # Proof that the variant really instrumented the client: spans per call made.
    made = sum(max(calls // 10, 20) + calls for _ in results)
    results["spans per call"] = tp.drop_exporter.exported / made
    return results


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("variant")
    parser.add_argument("--content", choices=["off", "on"], default="off")
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument(
        "--scenario", choices=["chat sync", "stream sync", "chat async", "stream async"]
    )
    args = parser.parse_args()
    results = run(args.variant, args.content == "on", args.calls, args.scenario)
    print(json.dumps({"variant": args.variant, "content": args.content, "us_per_call": results}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
