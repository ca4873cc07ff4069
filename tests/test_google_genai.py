"""The google-genai client over HTTP against a local server speaking the Gemini API."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest

genai = pytest.importorskip("google.genai")  # the google-genai extra; installed by scripts/test.sh

from llm_otel.genai import ContentMode, ContentPolicy  # noqa: E402
from llm_otel.instrumentation.google_genai import GoogleGenAIInstrumentor  # noqa: E402
from tests.conftest import Telemetry, telemetry_with  # noqa: E402
from tests.servers.gemini_server import TEXT, GeminiTestServer  # noqa: E402


@pytest.fixture(scope="module")
def server() -> Iterator[GeminiTestServer]:
    srv = GeminiTestServer().start()
    yield srv
    srv.stop()


@pytest.fixture
def telemetry(content_policy: ContentPolicy) -> Iterator[Telemetry]:
    yield from telemetry_with(GoogleGenAIInstrumentor, content_policy)


@pytest.fixture
def client(server: GeminiTestServer, telemetry: Telemetry) -> Any:
    options = genai.types.HttpOptions(base_url=server.base_url)
    return genai.Client(api_key="k", http_options=options)


@pytest.mark.parametrize("content_policy", [ContentPolicy(ContentMode.SPAN_ONLY)])
def test_generate_content(client: Any, telemetry: Telemetry) -> None:
    config = genai.types.GenerateContentConfig(
        temperature=0.4, max_output_tokens=50, system_instruction="Be brief.", stop_sequences=["X"]
    )
    reply = client.models.generate_content(model="gemini-test", contents="Say hello", config=config)
    assert reply.text == TEXT
    span = telemetry.only_span()
    a = span.attributes
    assert span.name == "generate_content gemini-test"
    assert a["gen_ai.operation.name"] == "generate_content"
    assert a["gen_ai.provider.name"] == "gcp.gemini"
    assert a["server.address"] == "127.0.0.1"
    assert a["gen_ai.request.temperature"] == 0.4
    assert a["gen_ai.request.max_tokens"] == 50
    assert a["gen_ai.request.stop_sequences"] == ("X",)
    assert a["gen_ai.response.id"] == "resp-1"
    assert a["gen_ai.response.model"] == "gemini-test-001"
    assert a["gen_ai.response.finish_reasons"] == ("stop",)
    assert a["gen_ai.usage.input_tokens"] == 12
    assert a["gen_ai.usage.output_tokens"] == 5
    assert json.loads(a["gen_ai.system_instructions"]) == [{"type": "text", "content": "Be brief."}]
    assert json.loads(a["gen_ai.input.messages"]) == [
        {"role": "user", "parts": [{"type": "text", "content": "Say hello"}]}
    ]
    (output,) = json.loads(a["gen_ai.output.messages"])
    assert output == {
        "role": "assistant",
        "parts": [{"type": "text", "content": TEXT}],
        "finish_reason": "stop",
    }


@pytest.mark.parametrize("content_policy", [ContentPolicy(ContentMode.SPAN_ONLY)])
def test_thinking_and_tool_calls(client: Any, telemetry: Telemetry) -> None:
    client.models.generate_content(model="thinking-model", contents="Hi")
    no_afc = genai.types.GenerateContentConfig(
        automatic_function_calling=genai.types.AutomaticFunctionCallingConfig(disable=True)
    )
    client.models.generate_content(model="tool-model", contents="Weather?", config=no_afc)
    thinking, tool = telemetry.spans()
    assert thinking.attributes["gen_ai.usage.output_tokens"] == 8  # 5 candidates + 3 thoughts
    assert thinking.attributes["gen_ai.usage.reasoning.output_tokens"] == 3
    (output,) = json.loads(thinking.attributes["gen_ai.output.messages"])
    assert output["parts"][0] == {"type": "reasoning", "content": "The user greets me."}
    (output,) = json.loads(tool.attributes["gen_ai.output.messages"])
    assert output["parts"][0]["name"] == "get_weather"
    assert output["parts"][0]["arguments"] == {"city": "Paris"}
    assert output["finish_reason"] == "tool_call"


@pytest.mark.parametrize("content_policy", [ContentPolicy(ContentMode.SPAN_ONLY)])
def test_stream(client: Any, telemetry: Telemetry) -> None:
    chunks = client.models.generate_content_stream(model="gemini-test", contents="Say hello")
    assert "".join(c.text or "" for c in chunks) == TEXT
    span = telemetry.only_span()
    a = span.attributes
    assert a["gen_ai.request.stream"] is True
    assert a["gen_ai.usage.output_tokens"] == 5
    assert a["gen_ai.response.finish_reasons"] == ("stop",)
    assert a["gen_ai.response.time_to_first_chunk"] > 0
    (output,) = json.loads(a["gen_ai.output.messages"])
    assert output["parts"] == [{"type": "text", "content": TEXT}]


def test_errors_early_end_and_embeddings(client: Any, telemetry: Telemetry) -> None:
    with pytest.raises(genai.errors.ClientError):
        client.models.generate_content(model="error-429", contents="hi")
    stream = client.models.generate_content_stream(model="long-stream", contents="hi")
    next(iter(stream))
    stream.close()
    client.models.embed_content(model="embed-test", contents=["a", "b"])
    failed, *rest = telemetry.spans()
    assert failed.attributes["error.type"] == "429"
    assert any(s.name == "embeddings embed-test" for s in rest)
    assert all("error.type" not in s.attributes for s in rest)


def test_async(server: GeminiTestServer, telemetry: Telemetry) -> None:
    async def run() -> str:
        options = genai.types.HttpOptions(base_url=server.base_url)
        client = genai.Client(api_key="k", http_options=options)
        reply = await client.aio.models.generate_content(model="gemini-test", contents="hi")
        stream = await client.aio.models.generate_content_stream(model="gemini-test", contents="hi")
        parts = [c.text or "" async for c in stream]
        return str(reply.text) + "|" + "".join(parts)

    assert asyncio.run(run()) == TEXT + "|" + TEXT
    plain, streamed = telemetry.spans()
    assert plain.attributes["gen_ai.usage.input_tokens"] == 12
    assert streamed.attributes["gen_ai.request.stream"] is True
    assert streamed.attributes["gen_ai.usage.output_tokens"] == 5
