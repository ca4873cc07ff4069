"""The mistralai client over HTTP against the local server (Mistral's chat API has the Chat
Completions shape: ``/v1/chat/completions``, SSE ``data:`` chunks ending in ``[DONE]``).

Both SDK telemetry modes: off (the default), and the SDK's own tracing hook on with our tracer
provider (``configure_telemetry``): either way, one span per call, ours.
"""

from __future__ import annotations

import asyncio
import json
import types
from collections.abc import Iterator
from typing import Any

import pytest

mistralai = pytest.importorskip("mistralai")  # the mistralai extra; installed by scripts/test.sh

from llm_otel.genai import ContentMode, ContentPolicy  # noqa: E402
from llm_otel.instrumentation.mistralai import MistralInstrumentor  # noqa: E402
from tests.conftest import USER, Telemetry, telemetry_with  # noqa: E402
from tests.servers.openai_server import TEXT, OpenAITestServer  # noqa: E402

try:
    from mistralai.client import Mistral  # mistralai >= 2
except ImportError:
    from mistralai import Mistral  # type: ignore[no-redef]


@pytest.fixture
def telemetry(content_policy: ContentPolicy) -> Iterator[Telemetry]:
    yield from telemetry_with(MistralInstrumentor, content_policy)


def _sdk_telemetry(client: Any, telemetry: Telemetry) -> bool:
    try:
        from mistralai.extra.observability.telemetry import configure_telemetry
    except ImportError:
        return False
    return bool(configure_telemetry(client, provider=telemetry.tracer_provider))


@pytest.fixture(params=[False, True], ids=["sdk-telemetry-off", "sdk-telemetry-on"])
def client(server: OpenAITestServer, telemetry: Telemetry, request: pytest.FixtureRequest) -> Any:
    c = Mistral(api_key="k", server_url=server.base_url.removesuffix("/v1"))
    if request.param and not _sdk_telemetry(c, telemetry):
        pytest.skip("this mistralai has no SDK telemetry of its own")
    return c


@pytest.mark.parametrize("content_policy", [ContentPolicy(ContentMode.SPAN_ONLY)])
def test_complete(client: Any, telemetry: Telemetry) -> None:
    reply = client.chat.complete(
        model="mistral-test", messages=USER, temperature=0.3, max_tokens=20, random_seed=7
    )
    assert reply.choices[0].message.content == TEXT
    span = telemetry.only_span()
    a = span.attributes
    assert span.name == "chat mistral-test"
    assert span.instrumentation_scope.name == "llm_otel"
    assert a["gen_ai.provider.name"] == "mistral_ai"
    assert a["server.address"] == "127.0.0.1"
    assert a["gen_ai.request.temperature"] == 0.3
    assert a["gen_ai.request.max_tokens"] == 20
    assert a["gen_ai.request.seed"] == 7
    assert a["gen_ai.usage.input_tokens"] == 12
    assert a["gen_ai.usage.output_tokens"] == 5
    assert a["gen_ai.response.id"]
    (output,) = json.loads(a["gen_ai.output.messages"])
    assert output["parts"] == [{"type": "text", "content": TEXT}]


@pytest.mark.parametrize("content_policy", [ContentPolicy(ContentMode.SPAN_ONLY)])
def test_stream_and_tool_calls(client: Any, telemetry: Telemetry) -> None:
    text = "".join(
        e.data.choices[0].delta.content or ""
        for e in client.chat.stream(model="mistral-test", messages=USER)
        if e.data.choices
    )
    assert text == TEXT
    events = client.chat.stream(model="tool-model-whole", messages=USER)
    if not isinstance(events, types.GeneratorType):  # EventStream (mistralai >= 1.3)
        with events:
            for _ in events:
                pass
    else:
        for _ in events:
            pass
    plain, tool = telemetry.spans()
    assert plain.attributes["gen_ai.request.stream"] is True
    assert plain.attributes["gen_ai.response.time_to_first_chunk"] > 0
    (output,) = json.loads(plain.attributes["gen_ai.output.messages"])
    assert output["parts"] == [{"type": "text", "content": TEXT}]
    (output,) = json.loads(tool.attributes["gen_ai.output.messages"])
    assert output["parts"][0]["name"] == "get_weather"
    assert output["parts"][0]["arguments"] == {"city": "Paris"}


def test_errors_and_early_close(client: Any, telemetry: Telemetry) -> None:
    with pytest.raises(Exception) as raised:
        client.chat.complete(model="error-429", messages=USER)
    assert getattr(raised.value, "status_code", None) == 429
    events = client.chat.stream(model="long-stream", messages=USER)
    if isinstance(events, types.GeneratorType):
        next(iter(events))
        events.close()
    else:  # an EventStream: leaving its block closes it (mistralai 1.5's has no close())
        with events:
            next(iter(events))
    failed, closed = telemetry.spans()
    assert failed.attributes["error.type"] == "429"
    assert "error.type" not in closed.attributes


def test_async_and_embeddings(server: OpenAITestServer, telemetry: Telemetry) -> None:
    c = Mistral(api_key="k", server_url=server.base_url.removesuffix("/v1"))

    async def run() -> str:
        reply = await c.chat.complete_async(model="mistral-test", messages=USER)
        events = await c.chat.stream_async(model="mistral-test", messages=USER)
        async for _ in events:
            pass
        await c.embeddings.create_async(model="mistral-embed", inputs=["a", "b"])
        return str(reply.choices[0].message.content)

    assert asyncio.run(run()) == TEXT
    c.embeddings.create(model="mistral-embed", inputs="a")
    chat, stream, aembed, embed = telemetry.spans()
    assert chat.attributes["gen_ai.usage.output_tokens"] == 5
    assert stream.attributes["gen_ai.request.stream"] is True
    assert aembed.name == embed.name == "embeddings mistral-embed"
    assert embed.attributes["gen_ai.provider.name"] == "mistral_ai"
    assert embed.attributes["gen_ai.usage.input_tokens"] == 7
