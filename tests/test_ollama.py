"""The ollama client over HTTP against a local server speaking Ollama's API (NDJSON streams)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest

ollama = pytest.importorskip("ollama")  # the ollama extra; installed by scripts/test.sh

from llm_otel.genai import ContentMode, ContentPolicy  # noqa: E402
from llm_otel.instrumentation.ollama import OllamaInstrumentor  # noqa: E402
from tests.conftest import Telemetry, telemetry_with  # noqa: E402
from tests.servers.ollama_server import TEXT, OllamaTestServer  # noqa: E402

USER = [{"role": "user", "content": "Say hello"}]


@pytest.fixture(scope="module")
def server() -> Iterator[OllamaTestServer]:
    srv = OllamaTestServer().start()
    yield srv
    srv.stop()


@pytest.fixture
def telemetry(content_policy: ContentPolicy) -> Iterator[Telemetry]:
    yield from telemetry_with(OllamaInstrumentor, content_policy)


@pytest.fixture
def client(server: OllamaTestServer, telemetry: Telemetry) -> Any:
    return ollama.Client(host=server.host)


def test_chat_positional_arguments(client: Any, telemetry: Telemetry) -> None:
    reply = client.chat("llama-test", USER, options={"temperature": 0.1, "num_predict": 40})
    assert reply.message.content == TEXT
    span = telemetry.only_span()
    a = span.attributes
    assert span.name == "chat llama-test"
    assert a["gen_ai.provider.name"] == "ollama"
    assert a["gen_ai.request.temperature"] == 0.1
    assert a["gen_ai.request.max_tokens"] == 40
    assert a["server.address"] == "127.0.0.1"
    assert a["gen_ai.usage.input_tokens"] == 12
    assert a["gen_ai.usage.output_tokens"] == 5
    assert a["gen_ai.response.finish_reasons"] == ("stop",)
    assert a["gen_ai.response.model"] == "llama-test"


@pytest.mark.parametrize("content_policy", [ContentPolicy(ContentMode.SPAN_ONLY)])
def test_stream_and_tool_calls(client: Any, telemetry: Telemetry) -> None:
    text = "".join(
        p.message.content for p in client.chat(model="llama-test", messages=USER, stream=True)
    )
    assert text == TEXT
    for _ in client.chat(model="tool-model", messages=USER, stream=True, format="json"):
        pass
    plain, tool = telemetry.spans()
    assert plain.attributes["gen_ai.request.stream"] is True
    assert plain.attributes["gen_ai.usage.output_tokens"] == 5
    assert plain.attributes["gen_ai.response.time_to_first_chunk"] > 0
    (output,) = json.loads(plain.attributes["gen_ai.output.messages"])
    assert output == {
        "role": "assistant",
        "parts": [{"type": "text", "content": TEXT}],
        "finish_reason": "stop",
    }
    (output,) = json.loads(tool.attributes["gen_ai.output.messages"])
    assert output["parts"] == [
        {"type": "tool_call", "name": "get_weather", "arguments": {"city": "Paris"}}
    ]
    assert output["finish_reason"] == "tool_call"
    assert tool.attributes["gen_ai.output.type"] == "json"


def test_generate_and_embeddings(client: Any, telemetry: Telemetry) -> None:
    assert client.generate("llama-test", "Say hello").response == TEXT
    client.embed(model="embed-test", input=["a", "b"])
    client.embeddings(model="embed-test", prompt="a")
    generate, embed, embeddings = telemetry.spans()
    assert generate.name == "text_completion llama-test"
    assert generate.attributes["gen_ai.usage.output_tokens"] == 5
    assert embed.name == "embeddings embed-test"
    assert embed.attributes["gen_ai.usage.input_tokens"] == 12
    assert embeddings.name == "embeddings embed-test"


def test_errors_and_early_end(client: Any, telemetry: Telemetry) -> None:
    with pytest.raises(ollama.ResponseError):
        client.chat(model="missing-model", messages=USER)
    with pytest.raises(ollama.ResponseError):
        for _ in client.chat(model="mid-error", messages=USER, stream=True):
            pass
    stream = client.chat(model="long-stream", messages=USER, stream=True)
    next(iter(stream))
    stream.close()
    missing, mid, closed = telemetry.spans()
    assert missing.attributes["error.type"] == "404"
    assert mid.attributes["error.type"] == "ResponseError"  # no HTTP status mid-stream
    assert "error.type" not in closed.attributes


def test_module_level_functions_use_the_instrumented_default_client(
    server: OllamaTestServer, telemetry: Telemetry, monkeypatch: pytest.MonkeyPatch
) -> None:
    OllamaInstrumentor().uninstrument()
    monkeypatch.setattr(ollama, "_client", ollama.Client(host=server.host))
    monkeypatch.setattr(ollama, "chat", ollama._client.chat)  # bound as `import ollama` does
    OllamaInstrumentor().instrument(**telemetry.providers)
    try:
        assert ollama.chat(model="llama-test", messages=USER).message.content == TEXT
        assert telemetry.only_span().name == "chat llama-test"
    finally:
        OllamaInstrumentor().uninstrument()  # before monkeypatch puts the originals back


def test_async_chat_stream(server: OllamaTestServer, telemetry: Telemetry) -> None:
    async def run() -> str:
        client = ollama.AsyncClient(host=server.host)
        reply = await client.chat(model="llama-test", messages=USER)
        parts = [
            p.message.content
            async for p in await client.chat(model="llama-test", messages=USER, stream=True)
        ]
        return reply.message.content + "|" + "".join(parts)

    assert asyncio.run(run()) == TEXT + "|" + TEXT
    plain, streamed = telemetry.spans()
    assert plain.attributes["gen_ai.usage.input_tokens"] == 12
    assert streamed.attributes["gen_ai.usage.output_tokens"] == 5
    assert streamed.attributes["gen_ai.request.stream"] is True
