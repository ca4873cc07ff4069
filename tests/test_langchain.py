"""LangChain and LangGraph, with the real framework packages against the loopback model servers.

Checked: the span tree (workflow, task, agent, tool, retrieval), exactly one model span per HTTP
request to the model whether or not the model's client library is instrumented, token totals
equal to the server's usage (never counted twice), parentage under ``asyncio.gather`` and
LangGraph's parallel branches, content only when capture is on, failures, and uninstrument.
"""

from __future__ import annotations

import asyncio
import json
import operator
import subprocess
import sys
from collections.abc import Iterator
from typing import Annotated, Any, TypedDict

import openai
import pytest

pytest.importorskip("langchain_core")  # the langchain extra; installed by scripts/test.sh
langchain_openai = pytest.importorskip("langchain_openai")
langgraph_graph = pytest.importorskip("langgraph.graph")

from langchain.agents import create_agent  # noqa: E402
from langchain_core.callbacks import CallbackManagerForRetrieverRun  # noqa: E402
from langchain_core.documents import Document  # noqa: E402
from langchain_core.output_parsers import StrOutputParser  # noqa: E402
from langchain_core.prompts import ChatPromptTemplate  # noqa: E402
from langchain_core.retrievers import BaseRetriever  # noqa: E402
from langchain_core.tools import tool  # noqa: E402
from opentelemetry import trace  # noqa: E402
from opentelemetry.sdk.trace import ReadableSpan  # noqa: E402
from opentelemetry.trace import SpanKind, StatusCode  # noqa: E402

import llm_otel  # noqa: E402
from llm_otel.genai import ContentMode, ContentPolicy  # noqa: E402
from llm_otel.instrumentation.langchain import LangChainInstrumentor  # noqa: E402
from llm_otel.instrumentation.openai import OpenAIInstrumentor  # noqa: E402
from llm_otel.manual import _defaults as manual_defaults  # noqa: E402
from tests.conftest import OpenSpans, Telemetry, framework_telemetry, make_telemetry  # noqa: E402
from tests.servers.openai_server import TEXT, USAGE, OpenAITestServer  # noqa: E402

PROMPT = "what is the weather in Paris today?"


@pytest.fixture(params=["client instrumented", "framework only"])
def telemetry(request: pytest.FixtureRequest, content_policy: ContentPolicy) -> Iterator[Telemetry]:
    """LangChain instrumented, with (the usual set-up) or without the openai instrumentation:
    either way each model call gets one span."""
    client = request.param != "framework only"
    yield from framework_telemetry(LangChainInstrumentor(), content_policy, client)


def _model(server: OpenAITestServer, model: str = "gpt-test", **kwargs: Any) -> Any:
    # Its own async HTTP client: langchain-openai caches one per base URL, bound to the event
    # loop of the first test that used it.
    return langchain_openai.ChatOpenAI(
        model=model, base_url=server.base_url, api_key="k", max_retries=0,
        http_async_client=openai.DefaultAsyncHttpxClient(), **kwargs,
    )  # fmt: skip


def _chain(server: OpenAITestServer, **kwargs: Any) -> Any:
    prompt = ChatPromptTemplate.from_messages([("system", "be brief"), ("user", "{q}")])
    return prompt | _model(server, **kwargs) | StrOutputParser()


@tool
def get_weather(city: str) -> str:
    """The weather in a city."""
    return f"sunny in {city}"


def _model_requests(server: OpenAITestServer) -> int:
    return sum(1 for path, _ in server.requests if path.endswith("/chat/completions"))


def _parent(span: ReadableSpan, spans: list[ReadableSpan]) -> ReadableSpan | None:
    if span.parent is None:
        return None
    return next((s for s in spans if s.context.span_id == span.parent.span_id), None)


def _chat_spans(spans: list[ReadableSpan]) -> list[ReadableSpan]:
    return [s for s in spans if s.attributes.get("gen_ai.operation.name") == "chat"]


def _token_total(telemetry: Telemetry, token_type: str) -> int:
    return sum(
        int(p.sum)
        for p in telemetry.points("gen_ai.client.token.usage")
        if p.attributes["gen_ai.token.type"] == token_type
    )


def test_a_chain_is_a_workflow_with_one_model_span_per_request(
    server: OpenAITestServer, telemetry: Telemetry
) -> None:
    server.requests.clear()
    assert _chain(server).invoke({"q": PROMPT}) == TEXT
    spans = telemetry.spans()
    assert _model_requests(server) == 1
    (chat,) = _chat_spans(spans)
    workflow = _parent(chat, spans)
    assert workflow is not None and workflow.name == "invoke_workflow RunnableSequence"
    assert workflow.attributes["gen_ai.operation.name"] == "invoke_workflow"
    assert workflow.parent is None
    tasks = sorted(s.name for s in spans if _parent(s, spans) is workflow and s is not chat)
    assert tasks == ["task ChatPromptTemplate", "task StrOutputParser"]
    assert chat.name == "chat gpt-test" and chat.kind is SpanKind.CLIENT
    a = chat.attributes
    assert (a["gen_ai.provider.name"], a["gen_ai.request.model"]) == ("openai", "gpt-test")
    assert a["gen_ai.response.model"] == "gpt-test-2024"
    assert a["gen_ai.response.finish_reasons"] == ("stop",)
    assert (a["gen_ai.usage.input_tokens"], a["gen_ai.usage.output_tokens"]) == (12, 5)
    # The metrics count the server's usage once.
    assert _token_total(telemetry, "input") == USAGE["prompt_tokens"]
    assert _token_total(telemetry, "output") == USAGE["completion_tokens"]
    (duration,) = telemetry.points("gen_ai.client.operation.duration")
    assert duration.count == 1
    assert trace.get_current_span() is trace.INVALID_SPAN  # nothing left attached


def test_an_agent_with_a_tool(server: OpenAITestServer, telemetry: Telemetry) -> None:
    """langchain's create_agent: invoke_agent, its model and tool steps, the tool's span under
    the agent, and one chat span per model request."""
    server.requests.clear()
    agent = create_agent(_model(server, "agent-model"), [get_weather], name="weather_agent")
    result = agent.invoke({"messages": [("user", PROMPT)]})
    assert result["messages"][-1].content == TEXT
    spans = telemetry.spans()
    (root,) = [s for s in spans if s.parent is None]
    assert root.name == "invoke_agent weather_agent"
    assert root.attributes["gen_ai.agent.name"] == "weather_agent"
    chats = _chat_spans(spans)
    assert len(chats) == _model_requests(server) == 2
    (tool_span,) = [s for s in spans if s.attributes.get("gen_ai.operation.name") == "execute_tool"]
    assert tool_span.name == "execute_tool get_weather"
    assert tool_span.attributes["gen_ai.tool.call.id"] == "call_1"
    assert tool_span.attributes["gen_ai.tool.description"] == "The weather in a city."
    for span in [*chats, tool_span]:  # every step is inside the agent's trace, under it
        assert span.context.trace_id == root.context.trace_id
        ancestor = _parent(span, spans)
        while ancestor is not None and ancestor is not root:
            ancestor = _parent(ancestor, spans)
        assert ancestor is root
    assert _token_total(telemetry, "input") == 2 * USAGE["prompt_tokens"]


def test_a_named_sub_agent_inside_an_agent_is_its_own_invoke_agent(
    server: OpenAITestServer, telemetry: Telemetry
) -> None:
    inner = create_agent(_model(server), [], name="researcher")

    @tool
    def research(question: str) -> str:
        """Ask the researcher."""
        return str(inner.invoke({"messages": [("user", question)]})["messages"][-1].content)

    class State(TypedDict):
        question: str
        answer: str

    def ask(state: State) -> dict[str, str]:
        return {"answer": research.invoke({"question": state["question"]})}

    graph = langgraph_graph.StateGraph(State)
    graph.add_node("ask", ask)
    graph.add_edge(langgraph_graph.START, "ask")
    graph.add_edge("ask", langgraph_graph.END)
    graph.compile(name="desk").invoke({"question": PROMPT})
    spans = telemetry.spans()
    (root,) = [s for s in spans if s.parent is None]
    assert root.name == "invoke_workflow desk"
    (agent_span,) = [s for s in spans if s.name == "invoke_agent researcher"]
    tool_span = _parent(agent_span, spans)
    assert tool_span is not None and tool_span.name == "execute_tool research"
    (chat,) = _chat_spans(spans)
    assert _parent(_parent(chat, spans), spans) is agent_span  # chat < task model < agent


async def test_concurrent_async_runs_keep_their_own_parents(
    server: OpenAITestServer, telemetry: Telemetry
) -> None:
    chain = _chain(server)
    questions = [f"question {i}" for i in range(6)]
    await asyncio.gather(*(chain.ainvoke({"q": q}) for q in questions))
    spans = telemetry.spans()
    workflows = [s for s in spans if s.name == "invoke_workflow RunnableSequence"]
    chats = _chat_spans(spans)
    assert len(workflows) == len(chats) == 6
    assert {_parent(c, spans) for c in chats} == set(workflows)  # one call under each
    assert len({w.context.trace_id for w in workflows}) == 6


class _Fan(TypedDict):
    question: str
    answers: Annotated[list[str], operator.add]


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_langgraph_parallel_branches(
    server: OpenAITestServer, telemetry: Telemetry, mode: str
) -> None:
    """Two branches run at once (threads in sync, tasks in async): each model call nests under
    the node that made it."""
    model = _model(server)

    def branch(name: str) -> Any:
        def node(state: _Fan) -> dict[str, list[str]]:
            return {"answers": [f"{name}: {model.invoke(state['question']).content}"]}

        async def anode(state: _Fan) -> dict[str, list[str]]:
            answer = await model.ainvoke(state["question"])
            return {"answers": [f"{name}: {answer.content}"]}

        return node if mode == "sync" else anode

    graph = langgraph_graph.StateGraph(_Fan)
    for name in ("left", "right"):
        graph.add_node(name, branch(name))
        graph.add_edge(langgraph_graph.START, name)
        graph.add_edge(name, langgraph_graph.END)
    app = graph.compile(name="fan")
    state = {"question": PROMPT, "answers": []}
    result = app.invoke(state) if mode == "sync" else asyncio.run(app.ainvoke(state))
    assert len(result["answers"]) == 2
    spans = telemetry.spans()
    nodes = {s.name: s for s in spans if s.name in ("task left", "task right")}
    assert len(nodes) == 2
    chats = _chat_spans(spans)
    assert len(chats) == 2
    assert {_parent(c, spans) for c in chats} == set(nodes.values())


def test_a_streamed_chain_gets_one_streamed_model_span(
    server: OpenAITestServer, telemetry: Telemetry
) -> None:
    server.requests.clear()
    pieces = list(_chain(server, streaming=True, stream_usage=True).stream({"q": PROMPT}))
    assert "".join(pieces) == TEXT
    spans = telemetry.spans()
    (chat,) = _chat_spans(spans)
    assert _model_requests(server) == 1
    assert chat.attributes["gen_ai.request.stream"] is True
    assert chat.attributes["gen_ai.response.time_to_first_chunk"] > 0
    assert chat.attributes["gen_ai.usage.output_tokens"] == USAGE["completion_tokens"]
    assert len(telemetry.points("gen_ai.client.operation.time_to_first_chunk")) == 1
    assert _parent(chat, spans).name == "invoke_workflow RunnableSequence"  # type: ignore[union-attr]


def test_a_failing_model_call_and_a_failing_tool(
    server: OpenAITestServer, telemetry: Telemetry
) -> None:
    with pytest.raises(Exception, match="500"):
        _chain(server, model="error-500").invoke({"q": PROMPT})
    spans = telemetry.spans()
    (chat,) = _chat_spans(spans)
    assert chat.attributes["error.type"] == "500"
    assert chat.status.status_code is StatusCode.ERROR
    workflow = _parent(chat, spans)
    assert workflow is not None and workflow.status.status_code is StatusCode.ERROR

    @tool
    def broken(city: str) -> str:
        """Always fails."""
        raise LookupError(city)

    with pytest.raises(LookupError):
        broken.invoke({"city": "Paris"})
    (failed,) = [s for s in telemetry.spans() if s.name == "execute_tool broken"]
    assert failed.attributes["error.type"] == "LookupError"
    assert failed.status.status_code is StatusCode.ERROR


class _Shelf(BaseRetriever):
    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun
    ) -> list[Document]:
        return [Document(page_content=f"a note about {query}", id="doc-1")]


def test_a_retriever_is_a_retrieval_span(server: OpenAITestServer, telemetry: Telemetry) -> None:
    docs = _Shelf().with_config(run_name="notes").invoke(PROMPT)
    assert docs[0].id == "doc-1"
    (span,) = [s for s in telemetry.spans() if s.name == "retrieval notes"]
    assert span.kind is SpanKind.CLIENT
    assert span.attributes["gen_ai.operation.name"] == "retrieval"
    assert span.attributes["gen_ai.data_source.id"] == "notes"
    assert "gen_ai.retrieval.query.text" not in span.attributes  # content is off


def _ask_the_agent_and_the_retriever(server: OpenAITestServer) -> None:
    """A tool call (its arguments and result), two model calls and a retrieval: every kind of
    content the instrumentation may record."""
    agent = create_agent(_model(server, "agent-model"), [get_weather], name="weather_agent")
    agent.invoke({"messages": [("user", PROMPT)]})
    _Shelf().invoke(PROMPT)


def test_content_off_records_no_prompt_tool_or_document_text(
    server: OpenAITestServer, telemetry: Telemetry
) -> None:
    _ask_the_agent_and_the_retriever(server)
    recorded = telemetry.recorded_text()
    for secret in (PROMPT, "Paris", TEXT, "a note about"):
        assert secret not in recorded


@pytest.mark.parametrize(
    "content_policy", [ContentPolicy(ContentMode.SPAN_ONLY)], ids=["content on"]
)
def test_content_on_records_messages_tool_calls_and_documents(
    server: OpenAITestServer, telemetry: Telemetry
) -> None:
    _ask_the_agent_and_the_retriever(server)
    spans = telemetry.spans()
    (tool_span,) = [s for s in spans if s.name == "execute_tool get_weather"]
    assert json.loads(tool_span.attributes["gen_ai.tool.call.arguments"]) == {"city": "Paris"}
    assert tool_span.attributes["gen_ai.tool.call.result"] == "sunny in Paris"
    first, second = sorted(_chat_spans(spans), key=lambda s: s.start_time)
    sent = json.loads(first.attributes["gen_ai.input.messages"])
    assert sent == [{"role": "user", "parts": [{"type": "text", "content": PROMPT}]}]
    said = json.loads(second.attributes["gen_ai.output.messages"])
    assert said[0]["parts"] == [{"type": "text", "content": TEXT}]
    (retrieval,) = [s for s in spans if s.attributes.get("gen_ai.operation.name") == "retrieval"]
    assert retrieval.attributes["gen_ai.retrieval.query.text"] == PROMPT
    documents = json.loads(retrieval.attributes["gen_ai.retrieval.documents"])
    assert documents == [{"content": f"a note about {PROMPT}", "id": "doc-1"}]


def test_runs_nest_under_the_apps_own_span_and_every_span_ends(
    server: OpenAITestServer, telemetry: Telemetry
) -> None:
    opened = OpenSpans()
    telemetry.tracer_provider.add_span_processor(opened)
    with llm_otel.workflow("support-ticket"):
        _chain(server).invoke({"q": PROMPT})
        with pytest.raises(Exception, match="500"):
            _chain(server, model="error-500").invoke({"q": PROMPT})
    spans = telemetry.spans()
    (root,) = [s for s in spans if s.parent is None]
    assert root.name == "invoke_workflow support-ticket"
    # A chain run inside the app's span is a workflow of its own, under it.
    assert [s.name for s in spans if _parent(s, spans) is root] == [
        "invoke_workflow RunnableSequence",
        "invoke_workflow RunnableSequence",
    ]
    assert opened.started > 0 and opened.open == 0


def test_uninstrument_stops_recording_and_leaves_langchain_as_it_was(
    server: OpenAITestServer, telemetry: Telemetry
) -> None:
    from langchain_core.runnables import config as lc_config
    from langchain_core.tracers import context as lc_context

    hooks = len(lc_context._configure_hooks)
    LangChainInstrumentor().uninstrument()
    assert len(lc_context._configure_hooks) == hooks - 1
    assert not hasattr(lc_config._set_config_context, "__wrapped__")
    OpenAIInstrumentor().uninstrument()
    _chain(server).invoke({"q": PROMPT})
    assert telemetry.spans() == []
    LangChainInstrumentor().instrument(**telemetry.providers)
    _chain(server).invoke({"q": PROMPT})
    assert len(_chat_spans(telemetry.spans())) == 1


def test_chat_anthropic_gets_one_span_from_the_anthropic_instrumentation(
    content_policy: ContentPolicy,
) -> None:
    langchain_anthropic = pytest.importorskip("langchain_anthropic")
    from llm_otel.instrumentation.anthropic import AnthropicInstrumentor
    from tests.servers.anthropic_server import AnthropicTestServer

    server = AnthropicTestServer().start()
    telemetry = make_telemetry(content_policy, instrument_openai=False)
    AnthropicInstrumentor().instrument(**telemetry.providers, content_policy=content_policy)
    LangChainInstrumentor().instrument(**telemetry.providers, content_policy=content_policy)
    try:
        model = langchain_anthropic.ChatAnthropic(
            model="claude-test", base_url=server.base_url, api_key="k", max_retries=0
        )
        (ChatPromptTemplate.from_messages([("user", "{q}")]) | model).invoke({"q": PROMPT})
        spans = telemetry.spans()
        (chat,) = _chat_spans(spans)
        assert chat.instrumentation_scope.name == "llm_otel"
        assert chat.attributes["gen_ai.provider.name"] == "anthropic"
        assert sum(1 for request in server.requests if request[0].endswith("/messages")) == 1
        assert _parent(chat, spans).name == "invoke_workflow RunnableSequence"  # type: ignore[union-attr]
        assert len(telemetry.points("gen_ai.client.operation.duration")) == 1
    finally:
        LangChainInstrumentor().uninstrument()
        AnthropicInstrumentor().uninstrument()
        manual_defaults.set_content_policy(None)
        server.stop()


def test_instrumenting_imports_langchain_only_when_the_app_does() -> None:
    """An app that merely has LangChain installed does not pay its import (seconds) at
    start-up; once the app imports it, it is instrumented."""
    code = """
import sys
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from llm_otel.instrumentation.langchain import LangChainInstrumentor

spans = InMemorySpanExporter()
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(spans))
LangChainInstrumentor().instrument(tracer_provider=provider)
assert not any(name.startswith("langchain") for name in sys.modules), "imported at instrument()"
from langchain_core.runnables import RunnableLambda
RunnableLambda(lambda x: x + 1).invoke(1)
assert [s.name for s in spans.get_finished_spans()] == ["invoke_workflow RunnableLambda"]
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120, check=False)  # fmt: skip
    assert result.returncode == 0, result.stderr
