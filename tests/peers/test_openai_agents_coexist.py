"""Another vendor's OpenAI Agents SDK instrumentation next to ours: one model span per HTTP
request, and our metrics count each call once.

Runs only in .venv-peers (scripts/test.sh builds it), with OpenLLMetry's
``opentelemetry-instrumentation-openai-agents`` and OpenInference's
``openinference-instrumentation-openai-agents``, each instrumented before and after ours. Both
add their own agent spans (a run shows up twice: docs/frameworks.md says to use one Agents SDK
instrumentation per process); what must hold is the model call: one span, counted once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import openai
import pytest
from agents import Agent, OpenAIResponsesModel, Runner, set_trace_processors
from agents.tracing import get_trace_provider
from agents.tracing.processors import BatchTraceProcessor
from opentelemetry.sdk.trace import ReadableSpan
from tests.peers._scenario import (
    assert_once_per_request,
    in_fresh_process,
    our_calls_and_tokens,
    side_by_side,
)
from tests.servers.openai_server import TEXT, OpenAITestServer

from llm_otel.instrumentation.openai_agents import OpenAIAgentsInstrumentor

INPUT, OUTPUT = 11, 6  # the test server's Responses usage, per request


def _openllmetry() -> Any:
    from opentelemetry.instrumentation.openai_agents import OpenAIAgentsInstrumentor as Peer

    return Peer()


def _openinference() -> Any:
    from openinference.instrumentation.openai_agents import OpenAIAgentsInstrumentor as Peer

    return Peer()


PEERS: dict[str, Callable[[], Any]] = {"openllmetry": _openllmetry, "openinference": _openinference}


def _describes_a_model_call(span: ReadableSpan) -> bool:
    attributes = span.attributes or {}
    return (
        attributes.get("gen_ai.operation.name") in ("chat", "response")
        or "llm.request.type" in attributes  # OpenLLMetry
        or attributes.get("openinference.span.kind") == "LLM"
    )


def scenario(peer_name: str, ours_first: bool, base_url: str, client: bool) -> dict[str, Any]:
    """One agent run and three concurrent ones; what each side recorded. ``client``: the openai
    client instrumented by llm-otel too (else the model calls are ours to record from the SDK's
    spans, and with a peer's processor spanning them, as metrics only)."""
    spans, reader = side_by_side(OpenAIAgentsInstrumentor, PEERS[peer_name](), ours_first, client)
    import agents  # the processors are added once the SDK is imported (it is, above)

    assert agents
    # The SDK's exporter to OpenAI's backend out (no network); both instrumentations' stay.
    processors = get_trace_provider()._multi_processor._processors  # type: ignore[attr-defined]
    set_trace_processors([p for p in processors if not isinstance(p, BatchTraceProcessor)])
    sdk = openai.AsyncOpenAI(base_url=base_url, api_key="k", max_retries=0)
    agent = Agent(name="Helper", model=OpenAIResponsesModel("gpt-test", sdk))

    async def runs() -> list[Any]:
        first = [await Runner.run(agent, "where is my parcel?")]
        return first + list(
            await asyncio.gather(*(Runner.run(agent, f"question {i}") for i in range(3)))
        )

    answers = [r.final_output for r in asyncio.run(runs())]
    model_spans = [s for s in spans.get_finished_spans() if _describes_a_model_call(s)]
    return {
        "answers": answers,
        "model_spans": [(s.name, s.instrumentation_scope.name) for s in model_spans],
        **our_calls_and_tokens(reader),
    }


@pytest.mark.parametrize("client", [True, False], ids=["client instrumented", "framework only"])
@pytest.mark.parametrize("ours_first", [True, False], ids=["ours-first", "theirs-first"])
@pytest.mark.parametrize("peer_name", sorted(PEERS))
def test_one_model_span_per_request_and_tokens_counted_once(
    peer_name: str, ours_first: bool, client: bool, server: OpenAITestServer
) -> None:
    # Each set-up in a fresh process, as for LangChain (instrumentors are process singletons).
    server.requests.clear()
    seen = in_fresh_process(
        "tests.peers.test_openai_agents_coexist", peer_name, ours_first, server.base_url, client
    )
    assert seen["answers"] == [TEXT] * 4
    requests = sum(1 for path, _ in server.requests if path.endswith("/responses"))
    assert requests == 4
    assert_once_per_request(seen, requests, "model_spans", (INPUT, OUTPUT))
