"""What the LangChain instrumentation adds to a chain run (the repo .venv has LangChain).

    python bench/langchain.py [--calls 300] [--rounds 7]

A three-step chain (prompt | ChatOpenAI | parser) over the openai SDK with an in-process
transport (no network, no server), against the SDK's real TracerProvider with a
BatchSpanProcessor and an in-memory metric reader. Variants, interleaved per round:

- ``baseline``: nothing instrumented;
- ``openai only``: llm-otel's openai instrumentation (the model span, no chain spans);
- ``langchain + openai``: the usual set-up: chain and step spans, the model call's span from the
  openai instrumentation (the callback records nothing for it);
- ``langchain only``: the openai SDK not instrumented, the model call recorded from LangChain's
  callbacks.

Prints microseconds per chain run (median over rounds, min..max), the overhead over the
baseline, and spans per run (a variant that records nothing is not measured as free).

For instruction counts (this machine's wall clock moves by more than the overhead), run one
variant under callgrind at two run counts and divide the difference by the count difference:

    valgrind --tool=callgrind python bench/langchain.py --only "langchain + openai" --calls 5
    valgrind --tool=callgrind python bench/langchain.py --only "langchain + openai" --calls 25
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _frameworks import Counting, main
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_openai import ChatOpenAI
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
)
from worker import _completion, _http_module

from llm_otel.instrumentation.langchain import LangChainInstrumentor
from llm_otel.instrumentation.openai import OpenAIInstrumentor

VARIANTS = ("baseline", "openai only", "langchain + openai", "langchain only")


def make_chain() -> Any:
    http = _http_module()
    body = _completion()

    def handler(request: Any) -> Any:
        return http.Response(200, content=body, headers={"content-type": "application/json"})

    model = ChatOpenAI(
        model="gpt-4o-mini",
        api_key="k",  # type: ignore[arg-type]
        base_url="http://bench.invalid/v1",
        max_retries=0,
        http_client=http.Client(transport=http.MockTransport(handler)),
    )
    prompt = ChatPromptTemplate.from_messages([("system", "be brief"), ("user", "{q}")])
    return prompt | model | StrOutputParser()


def instrument(variant: str, tracer_provider: Any, meter_provider: Any) -> None:
    providers = {"tracer_provider": tracer_provider, "meter_provider": meter_provider}
    if variant in ("openai only", "langchain + openai"):
        OpenAIInstrumentor().instrument(**providers)
    if variant in ("langchain + openai", "langchain only"):
        LangChainInstrumentor().instrument(**providers)


def uninstrument(variant: str) -> None:
    if variant in ("openai only", "langchain + openai"):
        OpenAIInstrumentor().uninstrument()
    if variant in ("langchain + openai", "langchain only"):
        LangChainInstrumentor().uninstrument()


def timed(variant: str, calls: int) -> tuple[float, float]:
    """Microseconds per run, and spans exported per run."""
    exporter = Counting()
    tracer_provider = TracerProvider()
    processor = BatchSpanProcessor(exporter)
    tracer_provider.add_span_processor(processor)
    meter_provider = MeterProvider(metric_readers=[InMemoryMetricReader()])
    instrument(variant, tracer_provider, meter_provider)
    # Made after instrumenting, as in an app: the openai SDK binds its raw-response methods
    # (which langchain-openai calls) when first used.
    chain = make_chain()
    try:
        run: Callable[[], Any] = lambda: chain.invoke({"q": "where is my parcel?"})  # noqa: E731
        for _ in range(20):  # warm-up
            run()
        processor.force_flush()
        exporter.count = 0
        start = time.perf_counter()
        for _ in range(calls):
            run()
        elapsed = time.perf_counter() - start
        processor.force_flush()
    finally:
        uninstrument(variant)
        tracer_provider.shutdown()
    return elapsed / calls * 1e6, exporter.count / calls


if __name__ == "__main__":
    main(__doc__.split("\n\n")[0], VARIANTS, timed, calls=300)
