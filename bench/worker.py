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
import gc
import importlib.util
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

SHIFT_VARIABLE = "LLM_OTEL_BENCH_TYPE_SHIFT"


def _shift_type_versions(count: int) -> list[type]:
    """``count`` classes, each given its version tag (CPython hands them out in order, at a
    class's first attribute lookup): every class imported after this gets a tag ``count``
    higher. The method cache keys a slot on (tag XOR the name's address), so this moves which
    (class, attribute) pairs share a slot, and evict each other on every lookup, without
    changing what runs. bench/icount.py ``--shifts`` measures over several."""
    classes = [type(f"_Shift{i}", (), {}) for i in range(count)]
    for cls in classes:
        getattr(cls, "shifted", None)
    return classes


# Before anything of the client's, the SDK's or ours is imported.
_SHIFTED = _shift_type_versions(int(os.environ.get(SHIFT_VARIABLE) or 0))

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from scenarios import BUILDERS, EXTRA_SCENARIOS, http_library  # noqa: E402 (after the shift)

CHUNKS = 20
USAGE = {"prompt_tokens": 12, "completion_tokens": 20, "total_tokens": 32}
PROMPT = "Write one short sentence about observability."
MESSAGES = [
    {"role": "system", "content": "You are a helpful assistant."},
    {"role": "user", "content": PROMPT},
]


# What the in-process server answers. The hand-written span reads every recorded value from the
# response, as llm-otel does; tests/test_bench_tools.py changes these to prove it (a yardstick
# that wrote the server's values in as constants would not be doing llm-otel's work).
SERVED: dict[str, Any] = {
    "id": "chatcmpl-bench",
    "model": "gpt-4o-mini-2024-07-18",
    "finish_reason": "stop",
    "usage": USAGE,
    "completion_fields": {"system_fingerprint": "fp"},  # besides id and model, in a completion
    "chunk_fields": {},  # besides id and model, in every chunk of a stream
}


def _completion() -> bytes:
    return json.dumps(
        {
            "id": SERVED["id"],
            "object": "chat.completion",
            "created": 1,
            "model": SERVED["model"],
            **SERVED["completion_fields"],
            "choices": [
                {
                    "index": 0,
                    "finish_reason": SERVED["finish_reason"],
                    "message": {"role": "assistant", "content": "Observability is x " * 5},
                }
            ],
            "usage": SERVED["usage"],
        }
    ).encode()


def _stream() -> bytes:
    base = {
        "id": SERVED["id"],
        "object": "chat.completion.chunk",
        "created": 1,
        "model": SERVED["model"],
        **SERVED["chunk_fields"],
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
        {
            **base,
            "choices": [{"index": 0, "delta": {}, "finish_reason": SERVED["finish_reason"]}],
            "usage": SERVED["usage"],
        }
    )
    body = "".join(f"data: {json.dumps(f)}\n\n" for f in frames) + "data: [DONE]\n\n"
    return body.encode()


def make_clients() -> tuple[Any, Any]:
    import openai

    http = http_library("openai")
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
        content_seen = False  # a span carried the prompt (content capture really on)

        def export(self, spans: Sequence[Any]) -> SpanExportResult:
            Drop.exported += len(spans)
            if not Drop.content_seen:
                Drop.content_seen = any(_carries_prompt(span) for span in spans)
            return SpanExportResult.SUCCESS

    tracer_provider = TracerProvider()
    # No timed export while measuring: the batch is exported when it is full (512 spans) and at
    # shutdown, so every run does the same work (a 5 s timer would fire a number of times that
    # depends on how long the run took, which moved instruction counts by ~±70k per call).
    tracer_provider.add_span_processor(
        BatchSpanProcessor(Drop(), max_queue_size=100_000, schedule_delay_millis=3_600_000)
    )
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    tracer_provider.drop_exporter = Drop  # type: ignore[attr-defined]
    meter_provider.bench_reader = reader  # type: ignore[attr-defined]
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


def _carries_prompt(span: Any) -> bool:
    """Whether the prompt's text is in a span's attributes or events (any library's layout)."""
    values = [*(span.attributes or {}).values()]
    for event in span.events or ():
        values.extend((event.attributes or {}).values())
    return any(PROMPT in str(value) for value in values)


def content_env(variant: str, on: bool) -> None:
    """Each library's own switch for recording prompts and responses. (openai-v2 2.4b0 with
    util-genai 1.1 always takes the latest conventions' path, which reads SPAN_ONLY and takes
    "true" for an invalid value: no content. Each run proves its content setting took.)"""
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


def _llm_otel_instrumentors() -> list[Any]:
    from llm_otel.instrumentation.openai import OpenAIInstrumentor

    instrumentors: list[Any] = [OpenAIInstrumentor()]
    if importlib.util.find_spec("anthropic") is not None:
        from llm_otel.instrumentation.anthropic import AnthropicInstrumentor

        instrumentors.append(AnthropicInstrumentor())
    return instrumentors


def preload_ours() -> None:
    """Instrument with llm-otel, make a chat call and a stream, and uninstrument, for an
    uninstrumented or hand-written run that is to carry what an llm-otel run carries
    (bench/icount.py ``--preload-ours``): the same modules imported (instrumenting imports ~36
    more than importing the instrumentors; a first call, a few more) and the same data loaded
    (the price table, at the first priced call), nothing left wrapped. Its telemetry goes to
    providers of its own, which record nothing. With llm-otel's modules imported and nothing
    else changed, the hand-written span's 20-chunk stream counted +41k instructions (+1.8k a
    chunk, all of it in the allocator's frees; the same number of allocations): the heap's
    state, not work. docs/performance.md, ninth pass."""
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.trace import TracerProvider

    tracer_provider, meter_provider = TracerProvider(), MeterProvider()
    instrumentors = _llm_otel_instrumentors()
    for each in instrumentors:
        each.instrument(tracer_provider=tracer_provider, meter_provider=meter_provider)
    client, _ = make_clients()
    create = client.chat.completions.create
    create(model="gpt-4o-mini", messages=MESSAGES)
    for _ in create(
        model="gpt-4o-mini", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    ):
        pass
    for each in instrumentors:
        each.uninstrument()


def instrument(
    variant: str, content: bool, tp: Any, mp: Any, lp: Any, preload: bool = False
) -> Callable[..., Any] | None:
    """Install the variant; returns a wrapper for the hand-written variant, else None.
    ``preload``: :func:`preload_ours` first (baseline and manual only)."""
    if preload:
        if variant not in ("baseline", "manual"):
            raise SystemExit(f"--preload-ours is for baseline and manual, not {variant}")
        preload_ours()
    if variant == "baseline":
        return None
    if variant == "llm_otel":
        for each in _llm_otel_instrumentors():
            each.instrument(tracer_provider=tp, meter_provider=mp, logger_provider=lp)
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
        return manual_wrapper(tp, mp, content)
    else:
        raise SystemExit(f"unknown variant {variant}")
    return None


def _consume(
    result: Any, stream: bool, content: bool
) -> tuple[Any, Any, list[str], list[str], float | None, list[float]]:
    """The hand-written span's reading of a result: where its identity is (the completion, or a
    stream's first chunk), its usage, each choice's finish reason, the output texts (with
    ``content``), and for a stream the first chunk's time and the gaps between chunks."""
    first = last = None
    gaps: list[float] = []
    texts: list[str] = []
    if not stream:
        reasons = [choice.finish_reason for choice in result.choices]
        if content:
            texts.append(result.choices[0].message.content)
        return result, result.usage, reasons, texts, first, gaps
    head = usage = None
    reasons = []
    for chunk in result:
        now = time.perf_counter()
        if first is None:
            first = now
            head = chunk
        else:
            gaps.append(now - last)
        last = now
        usage = chunk.usage or usage
        for choice in chunk.choices:
            if choice.finish_reason:
                reasons.append(choice.finish_reason)
            if content and choice.delta.content:
                texts.append(choice.delta.content)
    return head, usage, reasons, texts, first, gaps


def manual_wrapper(tp: Any, mp: Any, content: bool) -> Callable[..., Any]:
    """A hand-written minimal span with the same attributes and the same metric records: the
    conventions' duration, two token-usage points (and for streams time to first chunk and one
    time-per-output-chunk point per chunk after the first), and llm-otel's cost counter with the
    price looked up in a dict; with ``content``, the input and output messages in the
    conventions' parts layout as JSON span attributes. Every value the server decides (id,
    model, finish reasons, fingerprint, service tier, tokens) is read from the response, as an
    app's own span would have to: the request's side (model, server) is the app's own choice,
    written in. The equal-work yardstick for llm-otel's own overhead."""
    from opentelemetry.trace import SpanKind

    tracer = tp.get_tracer("manual")
    meter = mp.get_meter("manual")
    duration = meter.create_histogram("gen_ai.client.operation.duration", unit="s")
    tokens = meter.create_histogram("gen_ai.client.token.usage", unit="{token}")
    ttfc = meter.create_histogram("gen_ai.client.operation.time_to_first_chunk", unit="s")
    per_chunk = meter.create_histogram("gen_ai.client.operation.time_per_output_chunk", unit="s")
    cost = meter.create_counter("llm_otel.client.cost", unit="{USD}")
    prices = {"gpt-4o-mini-2024-07-18": (0.15, 0.6)}

    def call(fn: Callable[..., Any], stream: bool) -> Any:
        attrs = {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "openai",
            "gen_ai.request.model": "gpt-4o-mini",
            "server.address": "bench.invalid",
            "server.port": 80,
        }
        start_attrs = {**attrs, "gen_ai.request.stream": True} if stream else attrs
        start = time.perf_counter()
        with tracer.start_as_current_span(
            "chat gpt-4o-mini", kind=SpanKind.CLIENT, attributes=start_attrs
        ) as span:
            result = fn()
            head, usage, reasons, texts, first, gaps = _consume(result, stream, content)
            model = head.model
            price = prices.get(model)
            usd = None
            if price is not None:
                usd = (usage.prompt_tokens * price[0] + usage.completion_tokens * price[1]) / 1e6
            response_attrs = {
                "gen_ai.response.id": head.id,
                "gen_ai.response.model": model,
                "gen_ai.response.finish_reasons": reasons,
                "gen_ai.usage.input_tokens": usage.prompt_tokens,
                "gen_ai.usage.output_tokens": usage.completion_tokens,
            }
            if head.system_fingerprint:
                response_attrs["openai.response.system_fingerprint"] = head.system_fingerprint
            if head.service_tier:
                response_attrs["openai.response.service_tier"] = head.service_tier
            if usd is not None:
                response_attrs["llm_otel.usage.cost"] = usd
            if stream:
                response_attrs["gen_ai.response.time_to_first_chunk"] = (first or start) - start
            if content:
                response_attrs["gen_ai.input.messages"] = json.dumps([
                    {"role": m["role"], "parts": [{"type": "text", "content": m["content"]}]}
                    for m in MESSAGES
                ])  # fmt: skip
                response_attrs["gen_ai.output.messages"] = json.dumps([{
                    "role": "assistant", "parts": [{"type": "text", "content": "".join(texts)}],
                    "finish_reason": reasons[0],
                }])  # fmt: skip
            span.set_attributes(response_attrs)
        attrs = {**attrs, "gen_ai.response.model": model}
        duration.record(time.perf_counter() - start, attrs)
        if stream:
            ttfc.record((first or start) - start, attrs)
            for gap in gaps:
                per_chunk.record(gap, attrs)
        tokens.record(usage.prompt_tokens, {**attrs, "gen_ai.token.type": "input"})
        tokens.record(usage.completion_tokens, {**attrs, "gen_ai.token.type": "output"})
        if usd is not None:
            cost.add(usd, attrs)
        return result

    return call


def settle(collect: bool = True) -> None:
    """After the warm-up: what start-up left on the heap is frozen out of the garbage collector's
    reach, so the measured calls pay for collecting what they allocate, not for a full
    collection of the whole heap that would fall into one run's window and not another's (it
    moved instruction counts by ~±25k per call between identical runs). ``collect=False``:
    no collection at all from here on (``--gc off``)."""
    gc.collect()
    gc.freeze()
    if not collect:
        gc.disable()


def window(fn: Callable[[], object], times: int) -> None:
    """Calls ``fn`` ``times`` times inside ``sys.call_tracing``, a C function nothing else on
    these paths calls, so that callgrind can count the measured calls alone
    (``--collect-atstart=no --toggle-collect=sys_call_tracing``, bench/icount.py): start-up,
    imports, the warm-up and shutdown stay out of the count. With no tracer or profiler set,
    ``sys.call_tracing`` calls as a plain call would."""
    sys.call_tracing(_repeat, (fn, times))


def _repeat(fn: Callable[[], object], times: int) -> None:
    for _ in range(times):
        fn()


def run(
    variant: str,
    content: bool,
    calls: int,
    scenario: str | None = None,
    collect: bool = True,
    preload: bool = False,
) -> dict[str, float]:
    """Each scenario's µs per call (and spans per call made, whether content was seen).
    ``collect=False``: the garbage collector off from the end of the warm-up (bench/icount.py
    ``--gc off``). ``preload``: llm-otel instrumented and uninstrumented first
    (:func:`preload_ours`), for the baseline and the hand-written span only."""
    content_env(variant, content)
    tp, mp, lp = providers()
    manual = instrument(variant, content, tp, mp, lp, preload)
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
        settle(collect)
        start = time.perf_counter()
        window(fn, calls)
        return (time.perf_counter() - start) / calls * 1e6

    def atimed(fn: Callable[[], Any]) -> float:
        async def loop(n: int) -> None:
            for _ in range(n):
                await fn()

        asyncio.run(loop(max(calls // 10, 20)))
        settle(collect)
        start = time.perf_counter()
        window(lambda: asyncio.run(loop(calls)), 1)
        return (time.perf_counter() - start) / calls * 1e6

    runs: dict[str, Callable[[], float]] = {
        "chat sync": lambda: timed(chat),
        "stream sync": lambda: timed(stream),
    }
    if not manual:  # the hand-written span is written for the sync client only
        runs["chat async"] = lambda: atimed(achat)
        runs["stream async"] = lambda: atimed(astream)
    if scenario in EXTRA_SCENARIOS and not manual:  # asked for by name only (bench/icount.py)
        call = BUILDERS[scenario]()
        if call is not None:
            runs[scenario] = lambda: timed(call)
    if scenario is not None:  # one scenario alone (bench/icount.py counts instructions per run)
        runs = {scenario: runs[scenario]} if scenario in runs else {}
    results = {name: measure() for name, measure in runs.items()}
    tp.shutdown()
    # Proof that the variant really instrumented the client: spans per call made.
    made = sum(max(calls // 10, 20) + calls for _ in results)
    results["spans per call"] = tp.drop_exporter.exported / made if made else 0.0
    results["content seen"] = float(tp.drop_exporter.content_seen)
    return results


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("variant")
    parser.add_argument("--content", choices=["off", "on"], default="off")
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument(
        "--scenario",
        choices=["chat sync", "stream sync", "chat async", "stream async", *EXTRA_SCENARIOS],
    )
    parser.add_argument(
        "--gc", choices=["on", "off"], default="on",
        help="off: no garbage collection after the warm-up (instruction counts without where "
        "a collection happens to fall)",
    )  # fmt: skip
    parser.add_argument(
        "--preload-ours", action="store_true",
        help="baseline and manual: instrument with llm-otel and uninstrument first, so the run "
        "carries llm-otel's modules and objects as an llm-otel run does",
    )  # fmt: skip
    args = parser.parse_args()
    results = run(
        args.variant, args.content == "on", args.calls, args.scenario, args.gc == "on",
        args.preload_ours,
    )  # fmt: skip
    print(json.dumps({"variant": args.variant, "content": args.content, "us_per_call": results}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
