"""Manual tracing: workflow/task/agent/tool/retrieval spans, llm_call, context() ids."""

from __future__ import annotations

import asyncio
import json

import openai
import pytest
from opentelemetry import trace
from opentelemetry.trace import SpanKind, StatusCode

import llm_otel
from llm_otel.genai import ContentMode, ContentPolicy
from tests.conftest import USER, Telemetry

CONTENT_ON = [ContentPolicy(ContentMode.SPAN_ONLY)]


def _by_name(telemetry: Telemetry) -> dict[str, object]:
    return {s.name: s for s in telemetry.spans()}


def test_nested_workflow_agent_tool_and_llm_call(
    client: openai.OpenAI, telemetry: Telemetry
) -> None:
    with llm_otel.workflow("support"), llm_otel.agent("triage", agent_id="a1", model="gpt-test"):
        with llm_otel.tool("lookup_order", call_id="call_9") as t:
            t.set_result({"status": "shipped"})
        client.chat.completions.create(model="gpt-test", messages=USER)
    spans = _by_name(telemetry)
    workflow = spans["invoke_workflow support"]
    agent = spans["invoke_agent triage"]
    tool = spans["execute_tool lookup_order"]
    llm = spans["chat gpt-test"]
    assert workflow.kind is SpanKind.INTERNAL and workflow.parent is None
    assert workflow.attributes["gen_ai.operation.name"] == "invoke_workflow"
    assert workflow.attributes["gen_ai.workflow.name"] == "support"
    assert agent.parent.span_id == workflow.context.span_id
    assert dict(agent.attributes) == {
        "gen_ai.operation.name": "invoke_agent",
        "gen_ai.agent.name": "triage",
        "gen_ai.agent.id": "a1",
        "gen_ai.request.model": "gpt-test",
    }
    assert tool.parent.span_id == agent.context.span_id
    assert tool.attributes["gen_ai.tool.call.id"] == "call_9"
    assert tool.attributes["gen_ai.tool.type"] == "function"
    assert "gen_ai.tool.call.result" not in tool.attributes  # content is off by default
    assert llm.parent.span_id == agent.context.span_id


@llm_otel.tool
def add(a: int, b: int) -> int:
    return a + b


@llm_otel.task("stream-words")
def words(n: int):  # type: ignore[no-untyped-def]
    yield from ("w" * i for i in range(n))


@llm_otel.workflow
async def run_async(x: int) -> int:
    await asyncio.sleep(0)
    return x * 2


@llm_otel.agent("agen")
async def agen(n: int):  # type: ignore[no-untyped-def]
    for i in range(n):
        yield i


async def test_decorators_on_every_kind_of_function(telemetry: Telemetry) -> None:
    assert add(2, 3) == 5
    assert list(words(3)) == ["", "w", "ww"]
    assert await run_async(4) == 8
    assert [i async for i in agen(2)] == [0, 1]
    names = sorted(s.name for s in telemetry.spans())
    assert names == ["execute_tool add", "invoke_agent agen", "invoke_workflow run_async",
                     "task stream-words"]  # fmt: skip
    task = _by_name(telemetry)["task stream-words"]
    assert task.attributes["llm_otel.task.name"] == "stream-words"
    assert add.__name__ == "add"  # functools.wraps keeps the function's identity


@pytest.mark.parametrize("content_policy", CONTENT_ON)
def test_tool_arguments_and_result_with_content_on(telemetry: Telemetry) -> None:
    assert add(2, b=5) == 7
    tool = telemetry.only_span()
    assert json.loads(tool.attributes["gen_ai.tool.call.arguments"]) == {"a": 2, "b": 5}
    assert json.loads(tool.attributes["gen_ai.tool.call.result"]) == 7


@pytest.mark.parametrize("content_policy", CONTENT_ON)
def test_retrieval_query_and_documents(telemetry: Telemetry) -> None:
    with llm_otel.retrieval("kb-index", query="refund policy") as r:
        r.set_documents([{"id": "doc1", "score": 0.9}])
    span = telemetry.only_span()
    assert span.name == "retrieval kb-index"
    assert span.kind is SpanKind.CLIENT
    assert span.attributes["gen_ai.data_source.id"] == "kb-index"
    assert span.attributes["gen_ai.retrieval.query.text"] == "refund policy"
    assert json.loads(span.attributes["gen_ai.retrieval.documents"]) == [
        {"id": "doc1", "score": 0.9}
    ]


def test_exceptions_mark_the_span_and_propagate_unchanged(telemetry: Telemetry) -> None:
    error = KeyError("missing")

    @llm_otel.tool("broken")
    def broken() -> None:
        raise error

    with pytest.raises(KeyError) as caught:
        broken()
    assert caught.value is error
    with pytest.raises(ValueError), llm_otel.workflow("wf"):
        raise ValueError("bad")
    tool, workflow = telemetry.spans()
    for span, kind in ((tool, "KeyError"), (workflow, "ValueError")):
        assert span.status.status_code is StatusCode.ERROR
        assert span.attributes["error.type"] == kind
        assert [e.name for e in span.events] == ["exception"]


def test_context_ids_on_every_span_but_not_on_metrics(
    client: openai.OpenAI, telemetry: Telemetry
) -> None:
    with llm_otel.context(conversation_id="conv-1", user_id="u-7", session_id="s-3"):
        with llm_otel.workflow("chat-turn"):
            client.chat.completions.create(model="gpt-test", messages=USER)
        # nested: the inner value wins
        with llm_otel.context(conversation_id="conv-2"), llm_otel.task("inner"):
            pass
    client.chat.completions.create(model="gpt-test", messages=USER)  # outside: no ids
    spans = _by_name(telemetry)
    for name in ("invoke_workflow chat-turn",):
        attrs = spans[name].attributes
        assert (attrs["gen_ai.conversation.id"], attrs["user.id"], attrs["session.id"]) == (
            "conv-1", "u-7", "s-3")  # fmt: skip
    inside, outside = [s for s in telemetry.spans() if s.name == "chat gpt-test"]
    assert inside.attributes["gen_ai.conversation.id"] == "conv-1"
    assert "gen_ai.conversation.id" not in outside.attributes
    assert spans["task inner"].attributes["gen_ai.conversation.id"] == "conv-2"
    assert spans["task inner"].attributes["user.id"] == "u-7"
    for point in telemetry.points("gen_ai.client.operation.duration"):
        assert "gen_ai.conversation.id" not in point.attributes  # ids would explode cardinality


def test_scope_span_processor_tags_other_spans(telemetry: Telemetry) -> None:
    telemetry.tracer_provider.add_span_processor(llm_otel.ScopeSpanProcessor())
    tracer = telemetry.tracer_provider.get_tracer("web")
    with llm_otel.context(user_id="u-1"), tracer.start_as_current_span("POST /ask"):
        pass
    assert telemetry.only_span().attributes["user.id"] == "u-1"


def test_llm_call_records_like_an_instrumented_call(telemetry: Telemetry) -> None:
    with llm_otel.llm_call(provider="vllm", model="llama-3-8b", server_address="gpu-1",
                           server_port=8000, stream=True) as call:  # fmt: skip
        for _ in range(4):
            call.chunk()
        call.set_response(response_model="llama-3-8b-instruct", input_tokens=30,
                          output_tokens=4, finish_reasons=["stop"], output_text="hi")  # fmt: skip
    span = telemetry.only_span()
    assert span.name == "chat llama-3-8b"
    assert span.kind is SpanKind.CLIENT
    attrs = span.attributes
    assert attrs["gen_ai.provider.name"] == "vllm"
    assert attrs["server.address"] == "gpu-1" and attrs["server.port"] == 8000
    assert attrs["gen_ai.request.stream"] is True
    assert attrs["gen_ai.usage.output_tokens"] == 4
    assert attrs["gen_ai.response.finish_reasons"] == ("stop",)
    assert "gen_ai.output.messages" not in attrs  # content off
    assert attrs["gen_ai.response.time_to_first_chunk"] >= 0
    (per_chunk,) = telemetry.points("gen_ai.client.operation.time_per_output_chunk")
    assert per_chunk.count == 3
    usage = {p.attributes["gen_ai.token.type"]: p.sum
             for p in telemetry.points("gen_ai.client.token.usage")}  # fmt: skip
    assert usage == {"input": 30, "output": 4}


def test_llm_call_inside_a_framework_call_another_tracer_spans(telemetry: Telemetry) -> None:
    """A framework's model that records itself with llm_call(), while another vendor's
    instrumentation of the framework already gives the model call its span: metrics only from
    us (one span per call), and the foreign span stays the parent of what happens beneath."""
    from llm_otel.genai._frameworks import open_framework_call

    foreign = telemetry.tracer_provider.get_tracer("their-framework-tracer")
    with foreign.start_as_current_span("ChatCustom.chat") as theirs:
        framework = open_framework_call(traced_elsewhere=True)
        with llm_otel.llm_call(provider="vllm", model="llama-3-8b") as call:
            call.set_response(input_tokens=30, output_tokens=4)
            inner = trace.get_current_span().get_span_context()
        framework.ended = True
    assert [s.name for s in telemetry.spans()] == ["ChatCustom.chat"]
    assert inner.span_id == theirs.get_span_context().span_id
    assert framework.claimed
    usage = {p.attributes["gen_ai.token.type"]: p.sum
             for p in telemetry.points("gen_ai.client.token.usage")}  # fmt: skip
    assert usage == {"input": 30, "output": 4}
    (duration,) = telemetry.points("gen_ai.client.operation.duration")
    assert duration.count == 1


@pytest.mark.parametrize("content_policy", CONTENT_ON)
def test_llm_call_failure_and_content(telemetry: Telemetry) -> None:
    messages = [{"role": "user", "parts": [{"type": "text", "content": "hello"}]}]
    with (
        pytest.raises(TimeoutError),
        llm_otel.llm_call(provider="in-house", model="m", input_messages=messages),
    ):
        raise TimeoutError("model server timed out")
    span = telemetry.only_span()
    assert span.attributes["error.type"] == "TimeoutError"
    assert json.loads(span.attributes["gen_ai.input.messages"]) == messages
    (point,) = telemetry.points("gen_ai.client.operation.duration")
    assert point.attributes["error.type"] == "TimeoutError"


def test_generator_span_is_current_only_inside_the_generator(telemetry: Telemetry) -> None:
    tracer = telemetry.tracer_provider.get_tracer("app")

    @llm_otel.task("produce")
    def produce():  # type: ignore[no-untyped-def]
        with tracer.start_as_current_span("inside"):
            yield 1
        yield 2

    items = []
    for item in produce():
        with tracer.start_as_current_span(f"consumer {item}"):  # between items
            items.append(item)
    assert items == [1, 2]
    spans = _by_name(telemetry)
    task = spans["task produce"]
    assert spans["inside"].parent.span_id == task.context.span_id
    assert spans["consumer 1"].parent is None  # not a child of the generator's span
    assert spans["consumer 2"].parent is None


def test_abandoned_generator_is_not_a_failure(telemetry: Telemetry) -> None:
    @llm_otel.task("endless")
    def endless():  # type: ignore[no-untyped-def]
        while True:
            yield 0

    stream = endless()
    next(stream)
    stream.close()
    span = telemetry.only_span()
    assert span.status.status_code is StatusCode.UNSET
    assert "error.type" not in span.attributes
