"""LlamaIndex, with the real ``llama-index-core`` and its OpenAI LLM and embedding classes against
the loopback OpenAI server.

Runs in .venv-llamaindex (scripts/test.sh): ``llama-index-llms-openai`` requires openai < 3,
which the main venv has.

Checked, each with the openai client instrumented (the usual set-up) and without it: the span
tree of a RAG query (workflow, retrieval, synthesis), of an agent with a tool and of a workflow
of the app's own; exactly one model span per HTTP request to the model; token totals equal to
the server's usage; parentage under ``asyncio.gather``; content only when capture is on;
failures; uninstrument.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("llama_index.core")
pytest.importorskip("llama_index.llms.openai")

from llama_index.core import Document, Settings, VectorStoreIndex
from llama_index.core.agent.workflow import AgentWorkflow, FunctionAgent
from llama_index.core.instrumentation import get_dispatcher
from llama_index.core.tools import FunctionTool
from llama_index.core.workflow import StartEvent, StopEvent, Workflow, step
from llama_index.embeddings.openai import OpenAIEmbedding
from llama_index.llms.openai import OpenAI
from llama_index.llms.openai_like import OpenAILike
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind, StatusCode

import llm_otel
from llm_otel.genai import ContentMode, ContentPolicy
from llm_otel.instrumentation.llama_index import (
    LlamaIndexInstrumentor,
    recorder_of_process,
)
from tests.conftest import OpenSpans, Telemetry, framework_telemetry
from tests.servers.openai_server import TEXT, USAGE, OpenAITestServer

QUESTION = "What is the capital of France?"
SECRET_DOC = "Paris is the capital of France, said the secret memo."
ON = ContentPolicy(ContentMode.SPAN_ONLY)


@pytest.fixture(params=["client instrumented", "framework only"])
def telemetry(request: pytest.FixtureRequest, content_policy: ContentPolicy) -> Iterator[Telemetry]:
    """LlamaIndex instrumented, with (the usual set-up) or without the openai instrumentation:
    either way each model call gets one span."""
    client = request.param != "framework only"
    yield from framework_telemetry(LlamaIndexInstrumentor(), content_policy, client)


@pytest.fixture
def index(server: OpenAITestServer) -> VectorStoreIndex:
    """Two documents, embedded through the test server (before the telemetry is set up)."""
    Settings.llm = OpenAI(model="gpt-4o-mini", api_base=server.base_url, api_key="k",
                          max_retries=0)  # fmt: skip
    Settings.embed_model = OpenAIEmbedding(model_name="text-embedding-3-small",
                                           api_base=server.base_url, api_key="k")  # fmt: skip
    return VectorStoreIndex.from_documents(
        [Document(text=SECRET_DOC), Document(text="Lisbon is in Portugal.")]
    )


def _by_id(spans: list[ReadableSpan]) -> dict[int, ReadableSpan]:
    return {s.context.span_id: s for s in spans}


def _parent(span: ReadableSpan, spans: list[ReadableSpan]) -> ReadableSpan | None:
    return _by_id(spans).get(span.parent.span_id) if span.parent else None


def _parent_name(span: ReadableSpan, spans: list[ReadableSpan]) -> str | None:
    parent = _parent(span, spans)
    return parent.name if parent else None


def _operation(spans: list[ReadableSpan], operation: str) -> list[ReadableSpan]:
    return [s for s in spans if s.attributes.get("gen_ai.operation.name") == operation]


def _requests(server: OpenAITestServer, path: str) -> int:
    return sum(1 for p, _ in server.requests if p.endswith(path))


def _tokens(telemetry: Telemetry, operation: str = "chat") -> dict[str, int]:
    totals: dict[str, int] = {}
    for point in telemetry.points("gen_ai.client.token.usage"):
        if point.attributes["gen_ai.operation.name"] != operation:
            continue
        kind = point.attributes["gen_ai.token.type"]
        totals[kind] = totals.get(kind, 0) + int(point.sum)
    return totals


def _weather(city: str) -> str:
    """The weather in a city."""
    with llm_otel.task("lookup"):  # the app's own span inside a tool
        return f"Sunny in {city}"


def _run(workflow: Workflow, **kwargs: Any) -> Any:
    """A workflow (an agent) run to its end: ``run()`` needs a running event loop."""

    async def main() -> Any:
        return await workflow.run(**kwargs)

    return asyncio.run(main())


def _agent_llm(server: OpenAITestServer) -> OpenAILike:
    # OpenAILike: LlamaIndex's class for OpenAI-compatible servers (vLLM, ...), whose model
    # names its OpenAI class does not know.
    return OpenAILike(model="agent-model", api_base=server.base_url, api_key="k",
                      is_chat_model=True, is_function_calling_model=True, context_window=8000,
                      max_retries=0)  # fmt: skip


def _agent(server: OpenAITestServer, name: str = "weather") -> FunctionAgent:
    tool = FunctionTool.from_defaults(_weather, name="get_weather")
    return FunctionAgent(name=name, description="Answers about the weather.", tools=[tool],
                         llm=_agent_llm(server), system_prompt="Be brief.")  # fmt: skip


def test_a_rag_query(
    server: OpenAITestServer, index: VectorStoreIndex, telemetry: Telemetry
) -> None:
    server.requests.clear()
    answer = index.as_query_engine(similarity_top_k=1).query(QUESTION)
    assert str(answer) == TEXT
    spans = telemetry.spans()
    query = telemetry.span_named("invoke_workflow RetrieverQueryEngine")
    assert query.parent is None
    assert query.attributes["gen_ai.workflow.name"] == "RetrieverQueryEngine"
    retrieval = telemetry.span_named("retrieval VectorIndexRetriever")
    assert retrieval.kind is SpanKind.CLIENT
    assert retrieval.attributes["gen_ai.data_source.id"] == "VectorIndexRetriever"
    assert _parent(retrieval, spans) is query
    synthesis = telemetry.span_named("task CompactAndRefine")
    assert _parent(synthesis, spans) is query

    # One span per HTTP request to the model: the query's embedding under the retrieval, the
    # answer under the synthesis; tokens once.
    (embedding,) = _operation(spans, "embeddings")
    assert _requests(server, "/embeddings") == 1
    assert _parent(embedding, spans) is retrieval
    assert embedding.attributes["gen_ai.request.model"] == "text-embedding-3-small"
    (chat,) = _operation(spans, "chat")
    assert _requests(server, "/chat/completions") == 1
    assert chat.kind is SpanKind.CLIENT
    assert chat.name == "chat gpt-4o-mini"
    assert chat.attributes["gen_ai.provider.name"] == "openai"
    assert chat.attributes["gen_ai.response.model"] == "gpt-4o-mini-2024"
    assert chat.attributes["gen_ai.usage.input_tokens"] == USAGE["prompt_tokens"]
    assert chat.attributes["gen_ai.usage.output_tokens"] == USAGE["completion_tokens"]
    assert chat.attributes["gen_ai.response.finish_reasons"] == ("stop",)
    assert _parent(chat, spans) is not None
    assert query.context.trace_id == chat.context.trace_id
    ancestors = []
    node: ReadableSpan | None = chat
    while node is not None:
        ancestors.append(node.name)
        node = _parent(node, spans)
    assert ancestors == [chat.name, synthesis.name, query.name]
    assert _tokens(telemetry) == {"input": USAGE["prompt_tokens"],
                                  "output": USAGE["completion_tokens"]}  # fmt: skip
    durations = telemetry.points("gen_ai.client.operation.duration")
    assert sum(p.count for p in durations if p.attributes["gen_ai.operation.name"] == "chat") == 1


def test_content_off_keeps_every_text_out(
    server: OpenAITestServer, index: VectorStoreIndex, telemetry: Telemetry
) -> None:
    index.as_query_engine(similarity_top_k=1).query(QUESTION)
    _run(_agent(server), user_msg="weather in Paris?")
    recorded = telemetry.recorded_text()
    for text in (QUESTION, "capital", "secret memo", "Sunny in", "weather in Paris", TEXT):
        assert text not in recorded


@pytest.mark.parametrize("content_policy", [ON])
def test_content_on(
    server: OpenAITestServer, index: VectorStoreIndex, telemetry: Telemetry
) -> None:
    index.as_query_engine(similarity_top_k=1).query(QUESTION)
    retrieval = telemetry.span_named("retrieval VectorIndexRetriever")
    assert retrieval.attributes["gen_ai.retrieval.query.text"] == QUESTION
    documents = str(retrieval.attributes["gen_ai.retrieval.documents"])
    # The test server's embeddings are all alike: either document may come first.
    assert ("secret memo" in documents or "Portugal" in documents) and '"score"' in documents
    (chat,) = _operation(telemetry.spans(), "chat")
    assert QUESTION in str(chat.attributes["gen_ai.input.messages"])
    assert TEXT in str(chat.attributes["gen_ai.output.messages"])


def test_an_agent_with_a_tool(server: OpenAITestServer, telemetry: Telemetry) -> None:
    server.requests.clear()
    result = _run(_agent(server), user_msg="weather in Paris?")
    assert str(result) == TEXT
    spans = telemetry.spans()
    agent = telemetry.span_named("invoke_agent weather")
    assert agent.parent is None
    assert agent.attributes["gen_ai.agent.name"] == "weather"
    assert agent.attributes["gen_ai.agent.description"] == "Answers about the weather."
    tool = telemetry.span_named("execute_tool get_weather")
    assert tool.attributes["gen_ai.tool.name"] == "get_weather"
    assert _parent(tool, spans) is agent
    assert _parent_name(telemetry.span_named("task lookup"), spans) == tool.name
    # The agent streams: one span per request, each under the agent, with time to first chunk.
    chats = _operation(spans, "chat")
    assert len(chats) == _requests(server, "/chat/completions") == 2
    assert all(_parent(c, spans) is agent for c in chats)
    assert all(c.attributes["gen_ai.request.model"] == "agent-model" for c in chats)
    first_chunks = telemetry.points("gen_ai.client.operation.time_to_first_chunk")
    assert sum(p.count for p in first_chunks) == 2
    # No LlamaIndex step of the agent's plumbing gets a span.
    names = {agent.name, tool.name, "task lookup", *(c.name for c in chats)}
    assert {s.name for s in spans} == names


@pytest.mark.parametrize("content_policy", [ON])
def test_tool_arguments_and_result_with_content_on(
    server: OpenAITestServer, telemetry: Telemetry
) -> None:
    _run(_agent(server), user_msg="weather in Paris?")
    tool = telemetry.span_named("execute_tool get_weather")
    assert tool.attributes["gen_ai.tool.call.arguments"] == '{"city": "Paris"}'
    assert tool.attributes["gen_ai.tool.call.result"] == "Sunny in Paris"


def test_an_agent_workflow(server: OpenAITestServer, telemetry: Telemetry) -> None:
    flow = AgentWorkflow(agents=[_agent(server, "forecaster")], root_agent="forecaster")
    assert str(_run(flow, user_msg="weather in Paris?")) == TEXT
    spans = telemetry.spans()
    workflow = telemetry.span_named("invoke_workflow AgentWorkflow")
    steps = [s for s in spans if s.name == "invoke_agent forecaster"]
    assert len(steps) == 2  # one per step the agent took: the tool call, then the answer
    assert all(_parent(s, spans) is workflow for s in steps)
    chats = _operation(spans, "chat")
    assert len(chats) == 2
    assert {_parent(c, spans).context.span_id for c in chats} == {  # type: ignore[union-attr]
        s.context.span_id for s in steps
    }
    assert _parent(telemetry.span_named("execute_tool get_weather"), spans) is workflow


class _Summarize(Workflow):
    @step
    async def draft(self, ev: StartEvent) -> StopEvent:
        answer = await Settings.llm.acomplete(f"Summarize: {ev.get('text')}")
        return StopEvent(result=str(answer))


def test_a_workflow_of_the_apps_own(
    server: OpenAITestServer, index: VectorStoreIndex, telemetry: Telemetry
) -> None:
    result = _run(_Summarize(timeout=10), text="a long text")
    assert result == TEXT
    spans = telemetry.spans()
    workflow = telemetry.span_named("invoke_workflow _Summarize")
    draft = telemetry.span_named("task draft")
    assert _parent(draft, spans) is workflow
    (completion,) = [s for s in spans if s.attributes.get("gen_ai.request.model") == "gpt-4o-mini"]
    assert _parent(completion, spans) is draft


def test_concurrent_queries_keep_their_own_trees(
    server: OpenAITestServer, index: VectorStoreIndex, telemetry: Telemetry
) -> None:
    engine = index.as_query_engine(similarity_top_k=1)

    async def main() -> None:
        await asyncio.gather(*(engine.aquery(f"{QUESTION} {i}") for i in range(3)))

    asyncio.run(main())
    spans = telemetry.spans()
    queries = [s for s in spans if s.name == "invoke_workflow RetrieverQueryEngine"]
    assert len(queries) == 3
    assert len({q.context.trace_id for q in queries}) == 3
    for chat in _operation(spans, "chat") + _operation(spans, "embeddings"):
        top = chat
        while (parent := _parent(top, spans)) is not None:
            top = parent
        assert top in queries
    assert [sum(s.context.trace_id == q.context.trace_id for s in _operation(spans, "chat"))
            for q in queries] == [1, 1, 1]  # fmt: skip


def test_the_apps_span_around_a_query_and_none_left_open(
    index: VectorStoreIndex, telemetry: Telemetry
) -> None:
    opened = OpenSpans()
    telemetry.tracer_provider.add_span_processor(opened)
    tracer = telemetry.tracer_provider.get_tracer("app")
    with tracer.start_as_current_span("request"):
        index.as_query_engine(similarity_top_k=1).query(QUESTION)
        # What LlamaIndex made current is detached again: the app's span is current.
        assert trace.get_current_span().name == "request"  # type: ignore[attr-defined]
    spans = telemetry.spans()
    request = telemetry.span_named("request")
    assert _parent(telemetry.span_named("invoke_workflow RetrieverQueryEngine"), spans) is request
    assert opened.started > 0 and opened.open == 0


def test_a_failing_model_call(server: OpenAITestServer, index: VectorStoreIndex,
                              telemetry: Telemetry) -> None:  # fmt: skip
    failing = OpenAILike(model="error-500", api_base=server.base_url, api_key="k",
                         is_chat_model=True, context_window=8000, max_retries=0)  # fmt: skip
    engine = index.as_query_engine(similarity_top_k=1, llm=failing)
    with pytest.raises(Exception) as raised:
        engine.query(QUESTION)
    spans = telemetry.spans()
    (chat,) = _operation(spans, "chat")
    assert chat.status.status_code is StatusCode.ERROR
    assert chat.attributes["error.type"] in {"500", type(raised.value).__qualname__}
    query = telemetry.span_named("invoke_workflow RetrieverQueryEngine")
    assert query.status.status_code is StatusCode.ERROR
    assert query.attributes["error.type"] == type(raised.value).__qualname__
    assert sum(p.count for p in telemetry.points("gen_ai.client.operation.duration")
               if p.attributes["gen_ai.operation.name"] == "chat") == 1  # fmt: skip


def test_uninstrument_removes_the_handlers(index: VectorStoreIndex, telemetry: Telemetry) -> None:
    root = get_dispatcher()
    assert recorder_of_process() is not None
    LlamaIndexInstrumentor().uninstrument()
    assert recorder_of_process() is None
    assert not any(type(h).__module__.startswith("llm_otel") for h in root.span_handlers)
    assert not any(type(h).__module__.startswith("llm_otel") for h in root.event_handlers)
    telemetry.spans_exporter.clear()
    index.as_query_engine(similarity_top_k=1).query(QUESTION)
    assert not [s for s in telemetry.spans() if not s.name.startswith(("chat", "embeddings"))]


def test_spans_past_the_bound_are_not_recorded(
    monkeypatch: pytest.MonkeyPatch, index: VectorStoreIndex, telemetry: Telemetry,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    from llm_otel.instrumentation.llama_index import _handler

    monkeypatch.setattr(_handler, "MAX_OPEN", 2)
    for _ in range(2):
        index.as_query_engine(similarity_top_k=1).query(QUESTION)
    spans = telemetry.spans()
    assert [s.name for s in spans if s.name.startswith("invoke_workflow")] == [
        "invoke_workflow RetrieverQueryEngine"
    ] * 2
    assert not [s for s in spans if s.name.startswith("task")]  # the third level and deeper
    assert sum("LlamaIndex spans are open at once" in r.message for r in caplog.records) == 1
    recorder: Any = recorder_of_process()
    assert not recorder.steps and not recorder.calls


def test_streams_the_app_stops_reading_do_not_hold_room(
    monkeypatch: pytest.MonkeyPatch, index: VectorStoreIndex, telemetry: Telemetry
) -> None:
    from llama_index.core.llms import ChatMessage

    from llm_otel.instrumentation.llama_index import _handler

    monkeypatch.setattr(_handler, "MAX_OPEN_CALLS", 2)
    llm = Settings.llm
    streams = [llm.stream_chat([ChatMessage(role="user", content=f"q {i}")]) for i in range(4)]
    for stream in streams:
        next(stream)  # one chunk each, then never read again
    recorder: Any = recorder_of_process()
    assert len(recorder.calls) <= 2
    telemetry.spans_exporter.clear()
    assert str(llm.chat([ChatMessage(role="user", content="and now?")]).message.content) == TEXT
    (chat,) = _operation(telemetry.spans(), "chat")  # the call after them is recorded
    assert "gen_ai.usage.input_tokens" in chat.attributes
    for stream in streams:
        stream.close()


def test_a_streamed_query_answer_nests_under_the_query(
    server: OpenAITestServer, index: VectorStoreIndex, telemetry: Telemetry
) -> None:
    """LlamaIndex generates a streamed answer as the app reads it, after ``query`` returned and
    its span tree closed: the model call still nests under the query's synthesis span."""
    engine = index.as_query_engine(similarity_top_k=1, streaming=True)
    answer = engine.query(QUESTION)
    assert "".join(answer.response_gen) == TEXT

    async def read_async() -> str:
        streamed = await engine.aquery(QUESTION)
        return "".join([text async for text in streamed.async_response_gen()])

    assert asyncio.run(read_async()) == TEXT
    spans = telemetry.spans()
    queries = [s for s in spans if s.name == "invoke_workflow RetrieverQueryEngine"]
    syntheses = [s for s in spans if s.name == "task CompactAndRefine"]
    chats = _operation(spans, "chat")
    assert len(queries) == len(syntheses) == len(chats) == 2
    assert {_parent(c, spans).context.span_id for c in chats} == {  # type: ignore[union-attr]
        s.context.span_id for s in syntheses
    }
    assert all(c.attributes["gen_ai.request.stream"] for c in chats)
    assert (
        sum(p.count for p in telemetry.points("gen_ai.client.operation.time_to_first_chunk")) == 2
    )


def _broken_weather(city: str) -> str:
    """The weather in a city."""
    raise TimeoutError(f"no weather service for {city}")


def test_a_failing_tool(server: OpenAITestServer, telemetry: Telemetry) -> None:
    """The agent catches the tool's exception and goes on; the tool's span says it failed, with
    the exception's text only under the content policy (off here)."""
    tool = FunctionTool.from_defaults(_broken_weather, name="get_weather")
    agent = FunctionAgent(name="weather", tools=[tool], llm=_agent_llm(server))
    assert str(_run(agent, user_msg="weather in Paris?")) == TEXT
    span = telemetry.span_named("execute_tool get_weather")
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes["error.type"] == "TimeoutError"
    assert "Paris" not in telemetry.recorded_text()
    assert telemetry.span_named("invoke_agent weather").status.status_code is StatusCode.UNSET


def test_a_stream_that_breaks_midway(server: OpenAITestServer, telemetry: Telemetry) -> None:
    from llama_index.core.llms import ChatMessage

    llm = OpenAILike(model="mid-error", api_base=server.base_url, api_key="k",
                     is_chat_model=True, context_window=8000, max_retries=0)  # fmt: skip
    with pytest.raises(Exception) as raised:
        for _ in llm.stream_chat([ChatMessage(role="user", content=QUESTION)]):
            pass
    (chat,) = _operation(telemetry.spans(), "chat")
    assert chat.status.status_code is StatusCode.ERROR
    assert chat.attributes["error.type"] == type(raised.value).__qualname__
    assert QUESTION not in telemetry.recorded_text()
    recorder: Any = recorder_of_process()
    assert not recorder.calls and not recorder.steps


@pytest.mark.parametrize("content_policy", [ON])
def test_a_failure_of_ours_ends_the_span_and_the_query_goes_on(
    monkeypatch: pytest.MonkeyPatch, index: VectorStoreIndex, telemetry: Telemetry
) -> None:
    from llm_otel.instrumentation.llama_index import _messages

    def boom(*args: Any) -> Any:
        raise RuntimeError("a bug of ours")

    monkeypatch.setattr(_messages, "documents", boom)
    monkeypatch.setattr(_messages, "query_text", boom)
    opened = OpenSpans()
    telemetry.tracer_provider.add_span_processor(opened)
    assert str(index.as_query_engine(similarity_top_k=1).query(QUESTION)) == TEXT
    retrieval = telemetry.span_named("retrieval VectorIndexRetriever")
    assert "gen_ai.retrieval.documents" not in retrieval.attributes
    assert opened.started > 0 and opened.open == 0
    recorder: Any = recorder_of_process()
    assert not recorder.steps


def test_a_trace_carried_to_another_process(index: VectorStoreIndex, telemetry: Telemetry) -> None:
    """LlamaIndex's distributed workflows carry what each span handler captures to the process
    that goes on with the work: there, the query joins the sender's trace."""
    import contextvars
    import json

    tracer = telemetry.tracer_provider.get_tracer("app")
    with tracer.start_as_current_span("sender") as sender:
        carried = json.dumps(get_dispatcher().capture_propagation_context())

    def receiver() -> None:  # a fresh context, as another process has
        get_dispatcher().restore_propagation_context(json.loads(carried))
        index.as_query_engine(similarity_top_k=1).query(QUESTION)

    contextvars.Context().run(receiver)
    query = telemetry.span_named("invoke_workflow RetrieverQueryEngine")
    assert query.context.trace_id == sender.get_span_context().trace_id
    assert query.parent is not None and query.parent.span_id == sender.get_span_context().span_id
    index.as_query_engine(similarity_top_k=1).query(QUESTION)  # here, nothing was restored
    roots = [s for s in telemetry.spans() if s.name == query.name and s.parent is None]
    assert len(roots) == 1


def test_a_chat_engine(
    server: OpenAITestServer, index: VectorStoreIndex, telemetry: Telemetry
) -> None:
    engine = index.as_chat_engine(chat_mode="context", similarity_top_k=1)
    assert str(engine.chat(QUESTION)) == TEXT
    spans = telemetry.spans()
    chat_engine = telemetry.span_named("invoke_workflow ContextChatEngine")
    retrieval = telemetry.span_named("retrieval VectorIndexRetriever")
    (chat,) = _operation(spans, "chat")
    ancestors = set()
    node: ReadableSpan | None = chat
    while (node := _parent(node, spans) if node else None) is not None:
        ancestors.add(node.name)
    assert chat_engine.name in ancestors
    assert _parent(retrieval, spans) is chat_engine
