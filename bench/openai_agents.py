"""What the OpenAI Agents SDK instrumentation adds to an agent run (the repo .venv has the SDK).

    python bench/openai_agents.py [--calls 200] [--rounds 7]

One agent, one model call per run (the Responses API, not streamed) over the openai SDK with an
in-process transport (no network, no server), against the OpenTelemetry SDK's real
TracerProvider with a BatchSpanProcessor and an in-memory metric reader. The Agents SDK's own
tracing is on in every variant with no processor of its own (``set_trace_processors([])``, as
an app that does not export to OpenAI's backend has). Variants, interleaved per round:

- ``baseline``: nothing instrumented;
- ``openai only``: llm-otel's openai instrumentation (the model span, no agent spans);
- ``agents + openai``: the usual set-up: workflow and agent spans, the model call's span from the
  openai instrumentation (the processor records nothing for it);
- ``agents only``: the openai SDK not instrumented, the model call recorded from the SDK's
  response span.

Prints microseconds per run (median over rounds, min..max), the overhead over the baseline,
and spans per run.

For instruction counts (this machine's wall clock moves by more than the overhead), run one
variant under callgrind at two run counts and divide the difference by the count difference:

    valgrind --tool=callgrind python bench/openai_agents.py --only "agents + openai" --calls 5
    valgrind --tool=callgrind python bench/openai_agents.py --only "agents + openai" --calls 25
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import openai
from _frameworks import Counting, main
from agents import Agent, OpenAIResponsesModel, Runner, set_trace_processors
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from scenarios import http_library

from llm_otel.instrumentation.openai import OpenAIInstrumentor
from llm_otel.instrumentation.openai_agents import OpenAIAgentsInstrumentor

VARIANTS = ("baseline", "openai only", "agents + openai", "agents only")

RESPONSE = json.dumps(
    {
        "id": "resp_bench",
        "object": "response",
        "created_at": 1,
        "model": "gpt-4o-mini-2024-07-18",
        "status": "completed",
        "output": [
            {
                "type": "message",
                "id": "msg_1",
                "role": "assistant",
                "status": "completed",
                "content": [{"type": "output_text", "text": "Sunny in Paris.", "annotations": []}],
            }
        ],
        "parallel_tool_calls": True,
        "tool_choice": "auto",
        "tools": [],
        "usage": {
            "input_tokens": 40,
            "output_tokens": 5,
            "total_tokens": 45,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens_details": {"reasoning_tokens": 0},
        },
    }
).encode()


def make_agent() -> Agent[Any]:
    http = http_library("openai")

    async def handler(request: Any) -> Any:
        return http.Response(200, content=RESPONSE, headers={"content-type": "application/json"})

    client = openai.AsyncOpenAI(
        api_key="k",
        base_url="http://bench.invalid/v1",
        max_retries=0,
        http_client=http.AsyncClient(transport=http.MockTransport(handler)),
    )
    return Agent(name="Weather agent", instructions="Be brief.",
                 model=OpenAIResponsesModel("gpt-4o-mini", client))  # fmt: skip


def instrument(variant: str, tracer_provider: Any, meter_provider: Any) -> None:
    providers = {"tracer_provider": tracer_provider, "meter_provider": meter_provider}
    if variant in ("openai only", "agents + openai"):
        OpenAIInstrumentor().instrument(**providers)
    if variant in ("agents + openai", "agents only"):
        OpenAIAgentsInstrumentor().instrument(**providers)
    set_trace_processors([])  # no export to OpenAI's backend; ours stays when instrumented


def uninstrument(variant: str) -> None:
    if variant in ("openai only", "agents + openai"):
        OpenAIInstrumentor().uninstrument()
    if variant in ("agents + openai", "agents only"):
        OpenAIAgentsInstrumentor().uninstrument()


def timed(variant: str, calls: int) -> tuple[float, float]:
    """Microseconds per run, and spans exported per run."""
    exporter = Counting()
    tracer_provider = TracerProvider()
    processor = BatchSpanProcessor(exporter)
    tracer_provider.add_span_processor(processor)
    meter_provider = MeterProvider(metric_readers=[InMemoryMetricReader()])
    instrument(variant, tracer_provider, meter_provider)
    agent = make_agent()

    async def runs(count: int) -> float:
        for _ in range(20):  # warm-up
            await Runner.run(agent, "Weather in Paris?")
        processor.force_flush()
        exporter.count = 0
        start = time.perf_counter()
        for _ in range(count):
            await Runner.run(agent, "Weather in Paris?")
        return time.perf_counter() - start

    try:
        elapsed = asyncio.run(runs(calls))
        processor.force_flush()
    finally:
        uninstrument(variant)
        tracer_provider.shutdown()
    return elapsed / calls * 1e6, exporter.count / calls


if __name__ == "__main__":
    main(__doc__.split("\n\n")[0], VARIANTS, timed, calls=200)
