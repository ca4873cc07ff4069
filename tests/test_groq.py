"""The groq client over HTTP against the local server (Groq speaks Chat Completions under
``/openai/v1``; its streams put usage in the final chunk's ``x_groq``)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest

groq = pytest.importorskip("groq")  # the groq extra; installed by scripts/test.sh

from llm_otel.genai import ContentMode, ContentPolicy  # noqa: E402
from llm_otel.instrumentation.groq import GroqInstrumentor  # noqa: E402
from tests.conftest import USER, Telemetry, telemetry_with  # noqa: E402
from tests.servers.openai_server import TEXT, OpenAITestServer  # noqa: E402


@pytest.fixture
def telemetry(content_policy: ContentPolicy) -> Iterator[Telemetry]:
    yield from telemetry_with(GroqInstrumentor, content_policy)


@pytest.fixture
def client(server: OpenAITestServer, telemetry: Telemetry) -> Iterator[Any]:
    base = server.base_url.removesuffix("/v1")
    with groq.Groq(base_url=base, api_key="test-key", max_retries=0) as c:
        yield c


def test_chat(client: Any, telemetry: Telemetry) -> None:
    completion = client.chat.completions.create(
        model="llama-test", messages=USER, temperature=0.5, max_completion_tokens=50
    )
    assert completion.choices[0].message.content == TEXT
    span = telemetry.only_span()
    a = span.attributes
    assert span.name == "chat llama-test"
    assert a["gen_ai.provider.name"] == "groq"
    assert a["gen_ai.request.temperature"] == 0.5
    assert a["gen_ai.request.max_tokens"] == 50
    assert a["gen_ai.usage.input_tokens"] == 12
    assert a["gen_ai.usage.output_tokens"] == 5
    assert a["gen_ai.response.finish_reasons"] == ("stop",)
    (duration,) = telemetry.points("gen_ai.client.operation.duration")
    assert duration.attributes["gen_ai.provider.name"] == "groq"


@pytest.mark.parametrize("content_policy", [ContentPolicy(ContentMode.SPAN_ONLY)])
def test_stream_usage_from_x_groq(client: Any, telemetry: Telemetry) -> None:
    stream = client.chat.completions.create(model="tool-model", messages=USER, stream=True)
    for _ in stream:
        pass
    a = telemetry.only_span().attributes
    assert a["gen_ai.request.stream"] is True
    assert a["gen_ai.usage.input_tokens"] == 12  # only in x_groq.usage
    assert a["gen_ai.usage.output_tokens"] == 5
    (output,) = json.loads(a["gen_ai.output.messages"])
    assert output["parts"][0]["name"] == "get_weather"
    assert output["finish_reason"] == "tool_call"


def test_stream_closed_early_and_error(client: Any, telemetry: Telemetry) -> None:
    stream = client.chat.completions.create(model="long-stream", messages=USER, stream=True)
    next(iter(stream))
    stream.close()
    with pytest.raises(groq.RateLimitError):
        client.chat.completions.create(model="error-429", messages=USER)
    closed, failed = telemetry.spans()
    assert "error.type" not in closed.attributes
    assert failed.attributes["error.type"] == "429"


def test_async_chat_and_embeddings(server: OpenAITestServer, telemetry: Telemetry) -> None:
    async def run() -> None:
        async with groq.AsyncGroq(
            base_url=server.base_url.removesuffix("/v1"), api_key="k", max_retries=0
        ) as c:
            stream = await c.chat.completions.create(model="llama-test", messages=USER, stream=True)
            async for _ in stream:
                pass
            await c.embeddings.create(model="embed-test", input=["a", "b"])

    asyncio.run(run())
    chat, embeddings = telemetry.spans()
    assert chat.attributes["gen_ai.usage.output_tokens"] == 5
    assert embeddings.name == "embeddings embed-test"
    assert embeddings.attributes["gen_ai.provider.name"] == "groq"
    assert embeddings.attributes["gen_ai.usage.input_tokens"] == 7
