"""The cohere client (v2 API) over HTTP against a local server speaking Cohere's wire format."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest

cohere = pytest.importorskip("cohere")  # the cohere extra; installed by scripts/test.sh

from llm_otel.genai import ContentMode, ContentPolicy  # noqa: E402
from llm_otel.instrumentation.cohere import CohereInstrumentor  # noqa: E402
from tests.conftest import USER, Telemetry, telemetry_with  # noqa: E402
from tests.servers.cohere_server import TEXT, CohereTestServer  # noqa: E402


@pytest.fixture(scope="module")
def server() -> Iterator[CohereTestServer]:
    srv = CohereTestServer().start()
    yield srv
    srv.stop()


@pytest.fixture
def telemetry(content_policy: ContentPolicy) -> Iterator[Telemetry]:
    yield from telemetry_with(CohereInstrumentor, content_policy)


@pytest.fixture
def client(server: CohereTestServer, telemetry: Telemetry) -> Any:
    return cohere.ClientV2(api_key="k", base_url=server.base_url)


@pytest.mark.parametrize("content_policy", [ContentPolicy(ContentMode.SPAN_ONLY)])
def test_chat(client: Any, telemetry: Telemetry) -> None:
    reply = client.chat(model="command-test", messages=USER, temperature=0.2, p=0.9, k=3)
    assert reply.message.content[0].text == TEXT
    span = telemetry.only_span()
    a = span.attributes
    assert span.name == "chat command-test"
    assert a["gen_ai.provider.name"] == "cohere"
    assert a["server.address"] == "127.0.0.1"
    assert a["gen_ai.request.top_p"] == 0.9
    assert a["gen_ai.request.top_k"] == 3
    assert a["gen_ai.response.id"] == "chat-1"
    assert a["gen_ai.response.finish_reasons"] == ("stop",)
    assert a["gen_ai.usage.input_tokens"] == 20  # tokens the model saw, not billed units
    assert a["gen_ai.usage.output_tokens"] == 5
    assert a["gen_ai.usage.cache_read.input_tokens"] == 4
    (output,) = json.loads(a["gen_ai.output.messages"])
    assert output["parts"] == [{"type": "text", "content": TEXT}]


@pytest.mark.parametrize("content_policy", [ContentPolicy(ContentMode.SPAN_ONLY)])
def test_stream_and_tool_calls(client: Any, telemetry: Telemetry) -> None:
    text = "".join(
        e.delta.message.content.text
        for e in client.chat_stream(model="command-test", messages=USER)
        if e.type == "content-delta"
    )
    assert text == TEXT
    for _ in client.chat_stream(model="tool-model", messages=USER):
        pass
    reply = client.chat(model="tool-model", messages=USER)
    assert reply.finish_reason == "TOOL_CALL"
    plain, streamed_tool, tool = telemetry.spans()
    assert plain.attributes["gen_ai.request.stream"] is True
    assert plain.attributes["gen_ai.usage.output_tokens"] == 5
    assert plain.attributes["gen_ai.response.time_to_first_chunk"] > 0
    for span in (streamed_tool, tool):
        assert span.attributes["gen_ai.response.finish_reasons"] == ("tool_call",)
        (output,) = json.loads(span.attributes["gen_ai.output.messages"])
        assert output["parts"][-1] == {
            "type": "tool_call",
            "id": "call_1",
            "name": "get_weather",
            "arguments": {"city": "Paris"},
        }


def test_errors_early_end_and_embed(client: Any, telemetry: Telemetry) -> None:
    with pytest.raises(cohere.core.api_error.ApiError) as raised:
        client.chat(model="error-429", messages=USER)
    assert raised.value.status_code == 429
    stream = client.chat_stream(model="long-stream", messages=USER)
    next(iter(stream))
    stream.close()
    client.embed(
        model="embed-test",
        texts=["a", "b"],
        input_type="search_document",
        embedding_types=["float"],
    )
    failed, closed, embed = telemetry.spans()
    assert failed.attributes["error.type"] == "429"
    assert "error.type" not in closed.attributes
    assert embed.name == "embeddings embed-test"
    assert embed.attributes["gen_ai.usage.input_tokens"] == 7
    assert embed.attributes["gen_ai.request.encoding_formats"] == ("float",)


def test_async(server: CohereTestServer, telemetry: Telemetry) -> None:
    async def run() -> str:
        client = cohere.AsyncClientV2(api_key="k", base_url=server.base_url)
        reply = await client.chat(model="command-test", messages=USER)
        parts = [
            e.delta.message.content.text
            async for e in client.chat_stream(model="command-test", messages=USER)
            if e.type == "content-delta"
        ]
        return reply.message.content[0].text + "|" + "".join(parts)

    assert asyncio.run(run()) == TEXT + "|" + TEXT
    plain, streamed = telemetry.spans()
    assert plain.attributes["gen_ai.usage.input_tokens"] == 20
    assert streamed.attributes["gen_ai.request.stream"] is True
    assert streamed.attributes["gen_ai.usage.output_tokens"] == 5
