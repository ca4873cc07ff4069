"""Another vendor's LlamaIndex instrumentation next to ours: one model span per HTTP request, and
our metrics count each call once.

With OpenLLMetry's ``opentelemetry-instrumentation-llamaindex`` and OpenInference's
``openinference-instrumentation-llama-index`` (installed in .venv-llamaindex by scripts/test.sh),
each instrumented before and after ours, with and without our openai instrumentation. Both add
spans of their own for LlamaIndex's steps (a query shows up twice: docs/frameworks.md says to use
one LlamaIndex instrumentation per process); what must hold is the model call: one span, counted
once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

pytest.importorskip("openinference.instrumentation.llama_index")
pytest.importorskip("opentelemetry.instrumentation.llamaindex")

from opentelemetry.sdk.trace import ReadableSpan

from llm_otel.instrumentation.llama_index import LlamaIndexInstrumentor
from tests.peers._scenario import (
    assert_once_per_request,
    in_fresh_process,
    our_calls_and_tokens,
    side_by_side,
)
from tests.servers.openai_server import TEXT, USAGE, OpenAITestServer


def _openllmetry() -> Any:
    from opentelemetry.instrumentation.llamaindex import LlamaIndexInstrumentor as Peer

    return Peer()


def _openinference() -> Any:
    from openinference.instrumentation.llama_index import LlamaIndexInstrumentor as Peer

    return Peer()


PEERS: dict[str, Callable[[], Any]] = {"openllmetry": _openllmetry, "openinference": _openinference}


def _describes_a_chat(span: ReadableSpan) -> bool:
    attributes = span.attributes or {}
    return (
        attributes.get("gen_ai.operation.name") == "chat"
        or attributes.get("llm.request.type") == "chat"  # OpenLLMetry
        # OpenInference: its span of the LLM's chat (it gives LLM's predict, which calls chat,
        # an LLM span too: that one is its own double, not a second span of the call's)
        or (attributes.get("openinference.span.kind") == "LLM" and "predict" not in span.name)
    )


def scenario(peer_name: str, ours_first: bool, base_url: str, client: bool) -> dict[str, Any]:
    """One RAG query and three concurrent ones; what each side recorded."""
    spans, reader = side_by_side(LlamaIndexInstrumentor, PEERS[peer_name](), ours_first, client)
    from llama_index.core import Document, Settings, VectorStoreIndex
    from llama_index.embeddings.openai import OpenAIEmbedding
    from llama_index.llms.openai import OpenAI

    Settings.llm = OpenAI(model="gpt-4o-mini", api_base=base_url, api_key="k", max_retries=0)
    Settings.embed_model = OpenAIEmbedding(model_name="text-embedding-3-small",
                                           api_base=base_url, api_key="k")  # fmt: skip
    engine = VectorStoreIndex.from_documents(
        [Document(text="Paris is in France.")]
    ).as_query_engine()

    async def queries() -> list[Any]:
        first = [await engine.aquery("where is Paris?")]
        return first + list(await asyncio.gather(*(engine.aquery(f"q {i}") for i in range(3))))

    answers = [str(r) for r in asyncio.run(queries())]
    chats = [s for s in spans.get_finished_spans() if _describes_a_chat(s)]
    return {
        "answers": answers,
        "chat_spans": [(s.name, s.instrumentation_scope.name) for s in chats],
        **our_calls_and_tokens(reader, "chat"),
    }


@pytest.mark.parametrize("client", [True, False], ids=["client instrumented", "framework only"])
@pytest.mark.parametrize("ours_first", [True, False], ids=["ours-first", "theirs-first"])
@pytest.mark.parametrize("peer_name", sorted(PEERS))
def test_one_model_span_per_request_and_tokens_counted_once(
    peer_name: str, ours_first: bool, client: bool, server: OpenAITestServer
) -> None:
    server.requests.clear()
    seen = in_fresh_process(
        "tests.llama_index.test_coexist", peer_name, ours_first, server.base_url, client
    )
    assert seen["answers"] == [TEXT] * 4
    requests = sum(1 for path, _ in server.requests if path.endswith("/chat/completions"))
    assert requests == 4
    assert_once_per_request(seen, requests, "chat_spans",
                            (USAGE["prompt_tokens"], USAGE["completion_tokens"]))  # fmt: skip
