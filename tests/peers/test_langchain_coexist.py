"""Another vendor's LangChain instrumentation installed next to ours: one model span per HTTP
request, and our metrics count each call once.

Runs only in .venv-peers (scripts/test.sh builds it), with OpenLLMetry's
``opentelemetry-instrumentation-langchain`` and OpenInference's
``openinference-instrumentation-langchain``, each instrumented before and after ours. Both add
their own chain spans (a workflow shows up twice: docs/frameworks.md says to use one LangChain
instrumentation per process); what must hold is the model call: one span, counted once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import openai
import pytest
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_openai import ChatOpenAI
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from tests.peers._scenario import assert_once_per_request, in_fresh_process
from tests.servers.openai_server import TEXT, USAGE, OpenAITestServer

from llm_otel.genai import ContentPolicy
from llm_otel.instrumentation.langchain import LangChainInstrumentor
from llm_otel.instrumentation.openai import OpenAIInstrumentor


def _openllmetry() -> Any:
    from opentelemetry.instrumentation.langchain import LangchainInstrumentor as Peer

    return Peer()


def _openinference() -> Any:
    from openinference.instrumentation.langchain import LangChainInstrumentor as Peer

    return Peer()


PEERS: dict[str, Callable[[], Any]] = {"openllmetry": _openllmetry, "openinference": _openinference}


class Setup:
    def __init__(self, peer: Any, ours_first: bool) -> None:
        self.spans = InMemorySpanExporter()
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.spans))
        self.reader = InMemoryMetricReader()
        self.meter_provider = MeterProvider(metric_readers=[self.reader])
        providers = {"tracer_provider": self.tracer_provider, "meter_provider": self.meter_provider}
        ours = [
            lambda: OpenAIInstrumentor().instrument(**providers, content_policy=ContentPolicy()),
            lambda: LangChainInstrumentor().instrument(**providers, content_policy=ContentPolicy()),
        ]
        theirs = [lambda: peer.instrument(**providers)]
        for step in [*ours, *theirs] if ours_first else [*theirs, *ours]:
            step()

    def ours(self, name: str) -> list[Any]:
        data = self.reader.get_metrics_data()
        return [
            point
            for rm in (data.resource_metrics if data else ())
            for sm in rm.scope_metrics
            if sm.scope.name == "llm_otel"
            for metric in sm.metrics
            if metric.name == name
            for point in metric.data.data_points
        ]


def _describes_a_model_call(span: ReadableSpan) -> bool:
    attributes = span.attributes or {}
    return (
        attributes.get("gen_ai.operation.name") == "chat"
        or "llm.request.type" in attributes  # OpenLLMetry
        or attributes.get("openinference.span.kind") == "LLM"
    )


def scenario(peer_name: str, ours_first: bool, base_url: str) -> dict[str, Any]:
    """One chain call and three concurrent async ones; what each side recorded."""
    setup = Setup(PEERS[peer_name](), ours_first)
    model = ChatOpenAI(model="gpt-test", base_url=base_url, api_key="k", max_retries=0,
                       http_async_client=openai.DefaultAsyncHttpxClient())  # fmt: skip
    chain = ChatPromptTemplate.from_messages([("user", "{q}")]) | model | StrOutputParser()
    answers = [chain.invoke({"q": "where is my parcel?"})]

    async def concurrently() -> list[str]:
        return await asyncio.gather(*(chain.ainvoke({"q": f"question {i}"}) for i in range(3)))

    answers += asyncio.run(concurrently())
    model_spans = [s for s in setup.spans.get_finished_spans() if _describes_a_model_call(s)]
    usage = setup.ours("gen_ai.client.token.usage")
    return {
        "answers": answers,
        "model_spans": [(s.name, s.instrumentation_scope.name) for s in model_spans],
        "our_calls": sum(p.count for p in setup.ours("gen_ai.client.operation.duration")),
        "our_tokens": {p.attributes["gen_ai.token.type"]: p.sum for p in usage},
    }


@pytest.mark.parametrize("ours_first", [True, False], ids=["ours-first", "theirs-first"])
@pytest.mark.parametrize("peer_name", sorted(PEERS))
def test_one_model_span_per_request_and_tokens_counted_once(
    peer_name: str, ours_first: bool, server: OpenAITestServer
) -> None:
    # Each set-up in a fresh process: OpenLLMetry's LangChain instrumentation does not record
    # again after an uninstrument() in the same process.
    server.requests.clear()
    seen = in_fresh_process(
        "tests.peers.test_langchain_coexist", peer_name, ours_first, server.base_url
    )
    assert seen["answers"] == [TEXT] * 4
    requests = sum(1 for path, _ in server.requests if path.endswith("/chat/completions"))
    assert requests == 4
    assert_once_per_request(seen, requests, "model_spans",
                            (USAGE["prompt_tokens"], USAGE["completion_tokens"]))  # fmt: skip
