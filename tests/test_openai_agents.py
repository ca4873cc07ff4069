"""The OpenAI Agents SDK, with the real ``openai-agents`` package against the loopback OpenAI
server (Responses and Chat Completions models).

Checked: the span tree (workflow, agents, handoff, tool, guardrail), exactly one model span per
HTTP request to the model whether or not the openai client is instrumented, token totals equal to
the server's usage, parentage under ``asyncio.gather``, the app's spans around and inside a run,
content only when capture is on, failures, ``set_trace_processors`` and uninstrument.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import openai
import pytest
import wrapt

agents = pytest.importorskip("agents")  # openai-agents, in the dev extra

from agents import (  # noqa: E402
    Agent,
    GuardrailFunctionOutput,
    InputGuardrailTripwireTriggered,
    OpenAIChatCompletionsModel,
    OpenAIResponsesModel,
    Runner,
    function_tool,
    input_guardrail,
    set_trace_processors,
)
from opentelemetry import trace  # noqa: E402
from opentelemetry.sdk.trace import ReadableSpan  # noqa: E402
from opentelemetry.trace import SpanKind, StatusCode  # noqa: E402

import llm_otel  # noqa: E402
from llm_otel.genai import ContentMode, ContentPolicy  # noqa: E402
from llm_otel.instrumentation.openai import OpenAIInstrumentor  # noqa: E402
from llm_otel.instrumentation.openai_agents import (  # noqa: E402
    OpenAIAgentsInstrumentor,
    processor_of_process,
)
from tests.conftest import OpenSpans, Telemetry, framework_telemetry  # noqa: E402
from tests.servers.openai_server import TEXT, OpenAITestServer  # noqa: E402

PROMPT = "what is the weather in Paris today?"
SERVER_INPUT, SERVER_OUTPUT = 11, 6  # the test server's Responses usage, per request


@pytest.fixture(params=["client instrumented", "framework only"])
def telemetry(request: pytest.FixtureRequest, content_policy: ContentPolicy) -> Iterator[Telemetry]:
    """The Agents SDK instrumented, with (the usual set-up) or without the openai
    instrumentation: either way each model call gets one span. The SDK's own exporter to
    OpenAI's backend is removed (no network); ours stays, as it would in an app."""
    client = request.param != "framework only"
    yield from framework_telemetry(
        OpenAIAgentsInstrumentor(), content_policy, client, lambda: set_trace_processors([])
    )


@function_tool
def get_weather(city: str) -> str:
    """The weather in a city."""
    with llm_otel.task("lookup"):  # the app's own span inside a tool
        return f"Sunny in {city}"


def _client(server: OpenAITestServer) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=server.base_url, api_key="k", max_retries=0)


def _agents(server: OpenAITestServer, *, tools: list[Any] | None = None) -> Agent[Any]:
    client = _client(server)
    weather = Agent(name="Weather agent", instructions="Answer about the weather.",
                    tools=tools or [get_weather],
                    model=OpenAIResponsesModel("agent-model", client))  # fmt: skip
    return Agent(name="Triage agent", instructions="Hand weather over.", handoffs=[weather],
                 model=OpenAIResponsesModel("handoff-model", client))  # fmt: skip


def _model_requests(server: OpenAITestServer, path: str = "/responses") -> int:
    return sum(1 for p, _ in server.requests if p.endswith(path))


def _by_id(spans: list[ReadableSpan]) -> dict[int, ReadableSpan]:
    return {s.context.span_id: s for s in spans}


def _parent_name(span: ReadableSpan, spans: list[ReadableSpan]) -> str | None:
    parent = _by_id(spans).get(span.parent.span_id) if span.parent else None
    return parent.name if parent else None


def _chat_spans(spans: list[ReadableSpan]) -> list[ReadableSpan]:
    return [s for s in spans if s.attributes.get("gen_ai.operation.name") == "chat"]


def _tokens(telemetry: Telemetry) -> dict[str, int]:
    totals: dict[str, int] = {}
    for point in telemetry.points("gen_ai.client.token.usage"):
        kind = point.attributes["gen_ai.token.type"]
        totals[kind] = totals.get(kind, 0) + int(point.sum)
    return totals


def test_a_run_with_a_handoff_and_a_tool(server: OpenAITestServer, telemetry: Telemetry) -> None:
    server.requests.clear()
    result = asyncio.run(Runner.run(_agents(server), PROMPT))
    assert result.final_output == TEXT
    spans = telemetry.spans()
    (workflow,) = [s for s in spans if s.name == "invoke_workflow Agent workflow"]
    assert workflow.parent is None
    assert workflow.attributes["gen_ai.workflow.name"] == "Agent workflow"
    triage, weather = sorted((s for s in spans if s.name.startswith("invoke_agent")),
                             key=lambda s: s.start_time)  # fmt: skip
    assert triage.name == "invoke_agent Triage agent"
    assert weather.name == "invoke_agent Weather agent"
    assert weather.attributes["gen_ai.agent.name"] == "Weather agent"
    assert {_parent_name(triage, spans), _parent_name(weather, spans)} == {workflow.name}
    (handoff,) = [s for s in spans if s.name.startswith("handoff")]
    assert handoff.name == "handoff Weather agent"
    assert handoff.attributes["llm_otel.handoff.from_agent"] == "Triage agent"
    assert _parent_name(handoff, spans) == triage.name
    (tool,) = [s for s in spans if s.name == "execute_tool get_weather"]
    assert tool.attributes["gen_ai.tool.type"] == "function"
    assert _parent_name(tool, spans) == weather.name
    (lookup,) = [s for s in spans if s.name == "task lookup"]
    assert _parent_name(lookup, spans) == tool.name  # the tool's own work nests under it

    # One model span per HTTP request to the model, under the agent that made it; tokens once.
    chats = _chat_spans(spans)
    assert len(chats) == _model_requests(server) == 3
    assert all(s.kind is SpanKind.CLIENT for s in chats)
    assert sorted(_parent_name(s, spans) or "" for s in chats) == sorted(
        [triage.name, weather.name, weather.name])  # fmt: skip
    models = {"handoff-model-2024", "agent-model-2024"}
    assert {s.attributes["gen_ai.response.model"] for s in chats} == models
    assert all(s.attributes["gen_ai.response.id"] == "resp_test" for s in chats)
    assert _tokens(telemetry) == {"input": 3 * SERVER_INPUT, "output": 3 * SERVER_OUTPUT}
    assert sum(p.count for p in telemetry.points("gen_ai.client.operation.duration")) == 3
    assert all(s.trace_id == workflow.context.trace_id for s in (s.context for s in spans))


def test_concurrent_runs_keep_their_own_trees(
    server: OpenAITestServer, telemetry: Telemetry
) -> None:
    async def three() -> list[Any]:
        return await asyncio.gather(*(Runner.run(_agents(server), f"{PROMPT} {i}")
                                      for i in range(3)))  # fmt: skip

    assert [r.final_output for r in asyncio.run(three())] == [TEXT] * 3
    spans = telemetry.spans()
    workflows = [s for s in spans if s.name.startswith("invoke_workflow")]
    assert len(workflows) == 3 and len({s.context.trace_id for s in workflows}) == 3
    by_id = _by_id(spans)
    for span in spans:
        if span.parent is None:
            continue
        parent = by_id[span.parent.span_id]
        assert parent.context.trace_id == span.context.trace_id
        if span in _chat_spans(spans) or span.name.startswith("execute_tool"):
            assert parent.name.startswith("invoke_agent")
    assert len(_chat_spans(spans)) == 9
    assert _tokens(telemetry) == {"input": 9 * SERVER_INPUT, "output": 9 * SERVER_OUTPUT}


def test_runs_nest_under_the_apps_span_and_every_span_ends(
    server: OpenAITestServer, telemetry: Telemetry
) -> None:
    opened = OpenSpans()
    telemetry.tracer_provider.add_span_processor(opened)

    async def in_a_request() -> None:
        with llm_otel.workflow("support-ticket"):
            await Runner.run(_agents(server), PROMPT)
        assert not trace.get_current_span().get_span_context().is_valid

    asyncio.run(in_a_request())
    spans = telemetry.spans()
    (agents_workflow,) = [s for s in spans if s.name == "invoke_workflow Agent workflow"]
    assert _parent_name(agents_workflow, spans) == "invoke_workflow support-ticket"
    assert opened.started > 0 and opened.open == 0


def test_the_apps_trace_block_groups_runs_with_its_conversation_id(
    server: OpenAITestServer, telemetry: Telemetry
) -> None:
    async def two_runs() -> None:
        with agents.trace("Support conversation", group_id="conv-42"):
            await Runner.run(_agents(server), PROMPT)
            await Runner.run(_agents(server), "and tomorrow?")

    asyncio.run(two_runs())
    spans = telemetry.spans()
    (workflow,) = [s for s in spans if s.name.startswith("invoke_workflow")]
    assert workflow.name == "invoke_workflow Support conversation"
    assert workflow.attributes["gen_ai.conversation.id"] == "conv-42"
    agent_spans = [s for s in spans if s.name.startswith("invoke_agent")]
    assert len(agent_spans) == 4
    assert {_parent_name(s, spans) for s in agent_spans} == {workflow.name}


def test_a_chat_completions_model(server: OpenAITestServer, telemetry: Telemetry) -> None:
    server.requests.clear()
    agent = Agent(name="Weather agent", tools=[get_weather],
                  model=OpenAIChatCompletionsModel("agent-model", _client(server)))  # fmt: skip
    assert asyncio.run(Runner.run(agent, PROMPT)).final_output == TEXT
    spans = telemetry.spans()
    chats = _chat_spans(spans)
    assert len(chats) == _model_requests(server, "/chat/completions") == 2
    assert {_parent_name(s, spans) for s in chats} == {"invoke_agent Weather agent"}
    assert all(s.attributes["gen_ai.request.model"] == "agent-model" for s in chats)
    assert _tokens(telemetry)["input"] > 0
    assert sum(p.count for p in telemetry.points("gen_ai.client.operation.duration")) == 2


@function_tool
def failing_lookup(city: str) -> str:
    """Looks a city up, and fails."""
    raise RuntimeError(f"weather service down for {city}")


def test_content_off_records_no_prompt_or_tool_text(
    server: OpenAITestServer, telemetry: Telemetry
) -> None:
    asyncio.run(Runner.run(_agents(server), PROMPT))
    asyncio.run(Runner.run(_agents(server, tools=[failing_lookup]), PROMPT))
    recorded = telemetry.recorded_text()
    for secret in (PROMPT, "Paris", TEXT, "Sunny", "weather service down"):
        assert secret not in recorded


@pytest.mark.parametrize(
    "content_policy", [ContentPolicy(ContentMode.SPAN_ONLY)], ids=["content on"]
)
def test_content_on_records_tool_arguments_and_results(
    server: OpenAITestServer, telemetry: Telemetry
) -> None:
    asyncio.run(Runner.run(_agents(server), PROMPT))
    (tool,) = [s for s in telemetry.spans() if s.name == "execute_tool get_weather"]
    assert json.loads(tool.attributes["gen_ai.tool.call.arguments"]) == {"city": "Paris"}
    assert tool.attributes["gen_ai.tool.call.result"] == "Sunny in Paris"
    chats = _chat_spans(telemetry.spans())
    said = [json.loads(s.attributes["gen_ai.output.messages"]) for s in chats
            if "gen_ai.output.messages" in s.attributes]  # fmt: skip
    assert any(m[0]["parts"][0].get("content") == TEXT for m in said)


def test_a_failing_tool_marks_its_span_and_the_run_goes_on(
    server: OpenAITestServer, telemetry: Telemetry
) -> None:
    result = asyncio.run(Runner.run(_agents(server, tools=[failing_lookup]), PROMPT))
    assert result.final_output == TEXT  # the SDK gives the model the error; the model answers
    (tool,) = [s for s in telemetry.spans() if s.name == "execute_tool failing_lookup"]
    assert tool.status.status_code is StatusCode.ERROR
    assert tool.attributes["error.type"] == "Error running tool (non-fatal)"
    assert tool.status.description == "Error running tool (non-fatal)"
    (workflow,) = [s for s in telemetry.spans() if s.name.startswith("invoke_workflow")]
    assert workflow.status.status_code is StatusCode.UNSET


def test_a_triggered_guardrail_is_its_verdict_not_its_failure(
    server: OpenAITestServer, telemetry: Telemetry
) -> None:
    @input_guardrail
    def no_weather(context: Any, agent: Any, text: Any) -> GuardrailFunctionOutput:
        return GuardrailFunctionOutput(output_info=None, tripwire_triggered="weather" in str(text))

    agent = Agent(name="Guarded", input_guardrails=[no_weather],
                  model=OpenAIResponsesModel("gpt-test", _client(server)))  # fmt: skip
    with pytest.raises(InputGuardrailTripwireTriggered):
        asyncio.run(Runner.run(agent, PROMPT))
    assert asyncio.run(Runner.run(agent, "hello")).final_output == TEXT
    guardrails = [s for s in telemetry.spans() if s.name == "guardrail no_weather"]
    assert [s.attributes["llm_otel.guardrail.triggered"] for s in guardrails] == [True, False]
    assert all(s.status.status_code is StatusCode.UNSET for s in guardrails)
    assert all(_parent_name(s, telemetry.spans()) == "invoke_agent Guarded" for s in guardrails)


def test_set_trace_processors_keeps_ours_and_uninstrument_removes_it(
    server: OpenAITestServer, telemetry: Telemetry
) -> None:
    from agents.tracing import get_trace_provider
    from agents.tracing.scope import Scope

    set_trace_processors([])  # as an app does to stop exporting to OpenAI's backend
    asyncio.run(Runner.run(_agents(server), PROMPT))
    assert any(s.name.startswith("invoke_workflow") for s in telemetry.spans())
    OpenAIAgentsInstrumentor().uninstrument()
    OpenAIInstrumentor().uninstrument()
    assert not get_trace_provider()._multi_processor._processors
    assert not isinstance(Scope.__dict__["set_current_span"], wrapt.ObjectProxy)
    telemetry.spans_exporter.clear()
    asyncio.run(Runner.run(_agents(server), PROMPT))
    assert [s.name for s in telemetry.spans()] == ["task lookup"]  # the app's own span only


def test_a_streamed_run(server: OpenAITestServer, telemetry: Telemetry) -> None:
    server.requests.clear()
    agent = Agent(name="Streamer", model=OpenAIResponsesModel("gpt-test", _client(server)))

    async def stream() -> str:
        result = Runner.run_streamed(agent, PROMPT)
        async for _ in result.stream_events():
            pass
        return str(result.final_output)

    assert asyncio.run(stream()) == TEXT
    spans = telemetry.spans()
    (chat,) = _chat_spans(spans)
    assert _model_requests(server) == 1
    assert _parent_name(chat, spans) == "invoke_agent Streamer"
    assert _parent_name(telemetry.span_named("invoke_agent Streamer"), spans) == (
        "invoke_workflow Agent workflow")  # fmt: skip
    assert _tokens(telemetry) == {"input": SERVER_INPUT, "output": SERVER_OUTPUT}


def test_an_agent_used_as_a_tool_nests_under_the_tool(
    server: OpenAITestServer, telemetry: Telemetry
) -> None:
    client = _client(server)
    inner = Agent(name="Forecaster", model=OpenAIResponsesModel("gpt-test", client))
    forecast = inner.as_tool(tool_name="forecast", tool_description="A forecast.")
    outer = Agent(name="Planner", model=OpenAIResponsesModel("agent-model", client),
                  tools=[forecast])  # fmt: skip
    assert asyncio.run(Runner.run(outer, PROMPT)).final_output == TEXT
    spans = telemetry.spans()
    tool = telemetry.span_named("execute_tool forecast")
    assert _parent_name(tool, spans) == "invoke_agent Planner"
    assert _parent_name(telemetry.span_named("invoke_agent Forecaster"), spans) == tool.name
    assert len([s for s in spans if s.name.startswith("invoke_workflow")]) == 1
    assert len(_chat_spans(spans)) == 3
    assert _tokens(telemetry) == {"input": 3 * SERVER_INPUT, "output": 3 * SERVER_OUTPUT}


def test_a_failing_model_call(server: OpenAITestServer, telemetry: Telemetry) -> None:
    agent = Agent(name="Unlucky", model=OpenAIResponsesModel("error-500", _client(server)))
    with pytest.raises(openai.InternalServerError):
        asyncio.run(Runner.run(agent, PROMPT))
    spans = telemetry.spans()
    (chat,) = _chat_spans(spans)
    assert chat.status.status_code is StatusCode.ERROR and chat.attributes["error.type"]
    assert _parent_name(chat, spans) == "invoke_agent Unlucky"
    (duration,) = telemetry.points("gen_ai.client.operation.duration")
    assert duration.count == 1 and duration.attributes["error.type"]
    assert "test error 500" not in telemetry.recorded_text()  # content off: no error text


def test_open_spans_are_bounded(
    server: OpenAITestServer, telemetry: Telemetry, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    from llm_otel.instrumentation.openai_agents import _processor

    monkeypatch.setattr(_processor, "MAX_OPEN", 1)  # the workflow only
    monkeypatch.setattr(processor_of_process(), "_warned", False)  # one per process
    opened = OpenSpans()
    telemetry.tracer_provider.add_span_processor(opened)
    for _ in range(2):
        assert asyncio.run(Runner.run(_agents(server), PROMPT)).final_output == TEXT
    names = sorted({s.name for s in telemetry.spans() if not s.name.startswith("chat")})
    assert names == ["invoke_workflow Agent workflow", "task lookup"]
    assert opened.open == 0
    warnings = [r for r in caplog.records if "OpenAI Agents SDK spans are open" in r.message]
    assert len(warnings) == 1
