"""MCP, with the real ``mcp`` package: this process is the client, and the server is a separate
process (``tests/apps/mcp_weather.py``, set up with ``llm_otel.configure()``) over stdio that
exports to a local OTLP receiver.

Checked: one span per request on each side, named and attributed per the MCP conventions; the
server's spans in the client's trace, under the client's request span (context carried in
``params._meta``); the duration metrics on both sides; error text only with content capture on;
an OpenAI Agents SDK agent using the MCP server's tool; uninstrument.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("mcp")  # the mcp extra (and openai-agents' dependency), in .venv

from mcp import Client, StdioServerParameters
from opentelemetry.trace import SpanKind, StatusCode

from llm_otel.genai import ContentPolicy
from llm_otel.instrumentation.mcp import MCPInstrumentor
from llm_otel.instrumentation.openai import OpenAIInstrumentor
from tests.conftest import Telemetry, telemetry_with
from tests.servers.openai_server import TEXT, OpenAITestServer
from tests.servers.otlp_receiver import OTLPReceiver

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture
def telemetry(content_policy: ContentPolicy) -> Iterator[Telemetry]:
    yield from telemetry_with(MCPInstrumentor, content_policy)


def _server_env(receiver: OTLPReceiver, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "LLM_OTEL_"))}
    env.update(OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint, PYTHONPATH=ROOT,
               LLM_OTEL_GPU_METRICS="false", **extra)  # fmt: skip
    return env


def _params(receiver: OTLPReceiver, **extra: str) -> StdioServerParameters:
    return StdioServerParameters(command=sys.executable, args=["-m", "tests.apps.mcp_weather"],
                                 env=_server_env(receiver, **extra))  # fmt: skip


def _ask(receiver: OTLPReceiver, **extra: str) -> list[Any]:
    async def session() -> list[Any]:
        async with Client(_params(receiver, **extra)) as client:
            return [
                await client.list_tools(),
                await client.call_tool("get_weather", {"city": "Paris"}),
                await client.call_tool("broken", {"city": "Paris"}),
            ]

    return asyncio.run(session())


def _server_spans(receiver: OTLPReceiver, count: int) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 15  # the server process exports at its shutdown
    while time.monotonic() < deadline and len(receiver.spans) < count:
        time.sleep(0.1)
    return list(receiver.spans)


def _id(value: str | None) -> int | None:
    return int.from_bytes(base64.b64decode(value), "big") if value else None


def test_a_tool_call_is_one_trace_across_the_stdio_transport(
    telemetry: Telemetry, receiver: OTLPReceiver
) -> None:
    listed, answer, broken = _ask(receiver)
    assert [t.name for t in listed.tools] == ["get_weather", "broken"]
    assert answer.content[0].text == "Sunny in Paris" and broken.is_error

    client = telemetry.spans()
    assert not [s.name for s in client if s.name.startswith("MCP send")]  # one span, ours
    call = telemetry.span_named("tools/call get_weather")
    assert call.kind is SpanKind.CLIENT and call.instrumentation_scope.name == "llm_otel"
    assert call.attributes["mcp.method.name"] == "tools/call"
    assert call.attributes["gen_ai.operation.name"] == "execute_tool"
    assert call.attributes["gen_ai.tool.name"] == "get_weather"
    assert call.attributes["jsonrpc.request.id"]

    served = _server_spans(receiver, 6)
    (server_call,) = [s for s in served if s["name"] == "tools/call get_weather"]
    assert server_call["kind"] == "SPAN_KIND_SERVER" and server_call["scope"] == "llm_otel"
    assert _id(server_call["trace_id"]) == call.context.trace_id  # carried in params._meta
    assert _id(server_call["parent_span_id"]) == call.context.span_id
    assert server_call["attributes"]["mcp.protocol.version"]
    (lookup,) = [s for s in served if s["name"] == "task lookup"]  # the tool's own work
    assert lookup["parent_span_id"] == server_call["span_id"]
    (server_broken,) = [s for s in served if s["name"] == "tools/call broken"]
    assert server_broken["attributes"]["error.type"] == "tool_error"
    assert server_broken["status"].get("code") == "STATUS_CODE_ERROR"

    durations = {(p.attributes["mcp.method.name"], p.attributes.get("gen_ai.tool.name")): p
                 for p in telemetry.points("mcp.client.operation.duration")}  # fmt: skip
    assert set(durations) >= {("tools/list", None), ("tools/call", "get_weather"),
                              ("tools/call", "broken")}  # fmt: skip
    assert all(p.count == 1 for p in durations.values())
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and "mcp.server.operation.duration" not in receiver.metrics:
        time.sleep(0.1)
    server_points = receiver.metrics["mcp.server.operation.duration"]
    assert {p["unit"] for p in server_points} == {"s"}
    calls = [p["attributes"] for p in server_points
             if p["attributes"]["mcp.method.name"] == "tools/call"]  # fmt: skip
    tools = {(a.get("gen_ai.tool.name"), a.get("error.type")) for a in calls}
    assert tools == {("get_weather", None), ("broken", "tool_error")}
    assert all("jsonrpc.request.id" not in p["attributes"] for p in server_points)


def test_content_off_keeps_error_text_out_on_both_sides(
    telemetry: Telemetry, receiver: OTLPReceiver
) -> None:
    async def unknown_and_broken() -> None:
        async with Client(_params(receiver)) as client:
            await client.call_tool("broken", {"city": "Lisbon"})
            with pytest.raises(Exception):
                await client.read_resource("weather://Lisbon")

    asyncio.run(unknown_and_broken())
    served = _server_spans(receiver, 3)
    recorded = json.dumps(served) + telemetry.recorded_text()
    assert "Lisbon" not in recorded and "weather service down" not in recorded
    failed = [s for s in telemetry.spans() if s.status.status_code is StatusCode.ERROR]
    assert failed and all(s.attributes.get("error.type") for s in failed)


def test_an_agent_uses_the_mcp_servers_tool_in_one_trace(
    telemetry: Telemetry, receiver: OTLPReceiver, server: OpenAITestServer
) -> None:
    """The OpenAI Agents SDK calling the MCP server's tool: agent, tool, MCP request, the
    server's handling and the tool's work, one trace across the two processes."""
    agents = pytest.importorskip("agents")
    import openai
    from agents.mcp import MCPServerStdio

    from llm_otel.instrumentation.openai_agents import OpenAIAgentsInstrumentor

    OpenAIAgentsInstrumentor().instrument(**telemetry.providers)
    OpenAIInstrumentor().instrument(**telemetry.providers)
    agents.set_trace_processors([])
    try:

        async def run() -> Any:
            params: dict[str, Any] = {"command": sys.executable,
                                      "args": ["-m", "tests.apps.mcp_weather"],
                                      "env": _server_env(receiver)}  # fmt: skip
            async with MCPServerStdio(params=params, name="weather") as weather:
                client = openai.AsyncOpenAI(base_url=server.base_url, api_key="k", max_retries=0)
                model = agents.OpenAIResponsesModel("agent-model", client)
                agent = agents.Agent(name="Forecaster", mcp_servers=[weather], model=model)
                return await agents.Runner.run(agent, "weather in Paris?")

        assert asyncio.run(run()).final_output == TEXT
    finally:
        OpenAIAgentsInstrumentor().uninstrument()
        OpenAIInstrumentor().uninstrument()
    tool = telemetry.span_named("execute_tool get_weather")
    assert tool.attributes["gen_ai.tool.type"] == "extension"
    call = telemetry.span_named("tools/call get_weather")
    assert call.parent is not None and call.parent.span_id == tool.context.span_id
    served = _server_spans(receiver, 5)
    (server_call,) = [s for s in served if s["name"] == "tools/call get_weather"]
    assert _id(server_call["parent_span_id"]) == call.context.span_id
    workflow = telemetry.span_named("invoke_workflow Agent workflow")
    assert _id(server_call["trace_id"]) == workflow.context.trace_id


def test_uninstrument_gives_the_sdk_its_own_spans_back(telemetry: Telemetry) -> None:
    import mcp.server._otel as server_otel
    import mcp.shared._otel as shared_otel
    import mcp.shared.jsonrpc_dispatcher as dispatcher

    assert dispatcher.otel_span is not shared_otel.otel_span  # ours while instrumented
    MCPInstrumentor().uninstrument()
    assert dispatcher.otel_span is shared_otel.otel_span
    assert server_otel.otel_span is shared_otel.otel_span


def test_metrics_keep_the_outcome_when_the_span_is_sampled_out() -> None:
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.sampling import ALWAYS_OFF

    from llm_otel.genai import GenAITelemetry
    from llm_otel.instrumentation.mcp import _span_helper

    reader = InMemoryMetricReader()
    telemetry = GenAITelemetry(tracer_provider=TracerProvider(sampler=ALWAYS_OFF),
                               meter_provider=MeterProvider(metric_readers=[reader]))  # fmt: skip
    otel_span = _span_helper(telemetry)
    with otel_span("MCP send tools/call get_weather", kind=SpanKind.CLIENT,
                   attributes={"mcp.method.name": "tools/call"}) as span:  # fmt: skip
        span.set_attributes({"error.type": "-32602", "rpc.response.status_code": "-32602"})
        span.set_status(StatusCode.ERROR, "Unknown tool: get_weather for Paris")
    data = reader.get_metrics_data()
    (point,) = [p for rm in data.resource_metrics for sm in rm.scope_metrics
                for m in sm.metrics for p in m.data.data_points]  # fmt: skip
    assert point.attributes == {"mcp.method.name": "tools/call", "gen_ai.tool.name": "get_weather",
                                "gen_ai.operation.name": "execute_tool", "error.type": "-32602",
                                "rpc.response.status_code": "-32602"}  # fmt: skip
