"""Another vendor's OpenAI instrumentation installed next to ours: still one span per call.

Runs only in .venv-peers (scripts/test.sh builds it), where OpenLLMetry, OpenInference and the
official OTel ``openai-v2`` instrumentation are installed next to llm-otel; the main suite
ignores this directory. Each peer is installed before and after ours (wrapt stacks the later
wrapper outermost), and the calls are made plain, streamed and async.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import openai
import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from tests.conftest import USER
from tests.servers.openai_server import OpenAITestServer

from llm_otel.genai import ContentPolicy
from llm_otel.instrumentation.openai import OpenAIInstrumentor


def _openllmetry() -> Any:
    from opentelemetry.instrumentation.openai import OpenAIInstrumentor as Peer

    return Peer()


def _openinference() -> Any:
    from openinference.instrumentation.openai import OpenAIInstrumentor as Peer

    return Peer()


def _official() -> Any:
    from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor as Peer

    return Peer()


PEERS: dict[str, Callable[[], Any]] = {
    "openllmetry": _openllmetry,
    "openinference": _openinference,
    "otel-openai-v2": _official,
}


class Setup:
    def __init__(self, peer: Any, ours_first: bool) -> None:
        self.spans = InMemorySpanExporter()
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.spans))
        self.reader = InMemoryMetricReader()
        self.meter_provider = MeterProvider(metric_readers=[self.reader])
        self.peer = peer
        self.peer_name = type(peer).__module__
        self.ours_first = ours_first
        steps = [self._ours, self._theirs] if ours_first else [self._theirs, self._ours]
        for step in steps:
            step()

    def _ours(self) -> None:
        OpenAIInstrumentor().instrument(
            tracer_provider=self.tracer_provider,
            meter_provider=self.meter_provider,
            content_policy=ContentPolicy(),
        )

    def _theirs(self) -> None:
        self.peer.instrument(
            tracer_provider=self.tracer_provider, meter_provider=self.meter_provider
        )

    def teardown(self) -> None:
        self.peer.uninstrument()
        OpenAIInstrumentor().uninstrument()

    def our_call_count(self) -> int:
        data = self.reader.get_metrics_data()
        total = 0
        for rm in data.resource_metrics if data else ():
            for sm in rm.scope_metrics:
                if sm.scope.name != "llm_otel":
                    continue
                for metric in sm.metrics:
                    if metric.name == "gen_ai.client.operation.duration":
                        total += sum(p.count for p in metric.data.data_points)
        return total


@pytest.fixture(params=sorted(PEERS))
def peer_name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(params=[True, False], ids=["ours-first", "theirs-first"])
def setup(peer_name: str, request: pytest.FixtureRequest) -> Iterator[Setup]:
    s = Setup(PEERS[peer_name](), ours_first=bool(request.param))
    yield s
    s.teardown()


def test_one_span_per_call(setup: Setup, server: OpenAITestServer) -> None:
    client = openai.OpenAI(base_url=server.base_url, api_key="k", max_retries=0)
    result = client.chat.completions.create(model="gpt-test", messages=USER)
    assert result.choices[0].message.content == "Hello from the test server"
    streamed = "".join(
        c.choices[0].delta.content or ""
        for c in client.chat.completions.create(model="gpt-test", messages=USER, stream=True)
        if c.choices
    )
    assert streamed == "Hello from the test server"

    async def run_async() -> str:
        aclient = openai.AsyncOpenAI(base_url=server.base_url, api_key="k", max_retries=0)
        answer = await aclient.chat.completions.create(model="gpt-test", messages=USER)
        await aclient.close()
        return str(answer.choices[0].message.content)

    assert asyncio.run(run_async()) == "Hello from the test server"

    spans = setup.spans.get_finished_spans()
    assert len(spans) == 3, [(s.name, s.instrumentation_scope.name) for s in spans]
    if setup.peer_name == "opentelemetry.instrumentation.openai" and setup.ours_first is False:
        # OpenLLMetry beneath us honours the suppress key: the span kept is ours.
        assert {s.instrumentation_scope.name for s in spans} == {"llm_otel"}
    # Our metrics are recorded whichever span survives.
    assert setup.our_call_count() == 3
