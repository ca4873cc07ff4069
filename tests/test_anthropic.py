"""The anthropic client over HTTP against a local server speaking the Messages API (SSE too).

Covers create (sync, async, stream=True ended every way), the stream() helpers, tool use,
thinking, prompt-cache token counts, errors, content capture on and off, and the anthropic SDK's
own OpenTelemetry span (on by default in anthropic 2.x, off with ANTHROPIC_OPEN_TELEMETRY):
either way each call has exactly one span, ours.
"""

from __future__ import annotations

import gc
import json
from collections.abc import Iterator
from typing import Any

import pytest

anthropic = pytest.importorskip("anthropic")  # the anthropic extra; installed by scripts/test.sh

from llm_otel.genai import ContentMode, ContentPolicy  # noqa: E402
from llm_otel.instrumentation.anthropic import AnthropicInstrumentor  # noqa: E402
from tests.conftest import Telemetry, telemetry_with  # noqa: E402
from tests.servers.anthropic_server import SLOW_FIRST_DELAY, TEXT, AnthropicTestServer  # noqa: E402

USER = [{"role": "user", "content": "Say hello"}]
SDK_HAS_SPANS = hasattr(anthropic, "_tracing")


@pytest.fixture(scope="module")
def server() -> Iterator[AnthropicTestServer]:
    srv = AnthropicTestServer().start()
    yield srv
    srv.stop()


@pytest.fixture
def telemetry(content_policy: ContentPolicy) -> Iterator[Telemetry]:
    yield from telemetry_with(AnthropicInstrumentor, content_policy)


def _client_options(telemetry: Telemetry, sdk_spans: bool) -> dict[str, Any]:
    if not SDK_HAS_SPANS:
        return {}
    if not sdk_spans:
        return {"open_telemetry": False}
    # The SDK's own span would go to the same provider: the test sees it if it is made.
    return {"open_telemetry": {"tracer_provider": telemetry.tracer_provider}}


@pytest.fixture(params=[True, False], ids=["sdk-spans-on", "sdk-spans-off"])
def client(
    server: AnthropicTestServer, telemetry: Telemetry, request: pytest.FixtureRequest
) -> Iterator[Any]:
    options = _client_options(telemetry, bool(request.param))
    with anthropic.Anthropic(
        base_url=server.base_url, api_key="test-key", max_retries=0, **options
    ) as c:
        yield c


@pytest.fixture
async def aclient(server: AnthropicTestServer, telemetry: Telemetry) -> Any:
    options = _client_options(telemetry, True)
    async with anthropic.AsyncAnthropic(
        base_url=server.base_url, api_key="test-key", max_retries=0, **options
    ) as c:
        yield c


def _sampling() -> dict[str, Any]:
    import inspect

    params = inspect.signature(anthropic.resources.messages.Messages.create).parameters
    return {"temperature": 0.2, "top_p": 0.9, "top_k": 5} if "temperature" in params else {}


def _points(telemetry: Telemetry, name: str) -> list[Any]:
    return telemetry.points(name)


def test_create_one_span_with_semconv_attributes(client: Any, telemetry: Telemetry) -> None:
    message = client.messages.create(
        model="claude-test",
        max_tokens=64,
        messages=USER,
        stop_sequences=["END"],
        # anthropic 2.x has no sampling parameters; older SDKs send them as extra body.
        **_sampling(),
    )
    assert message.content[0].text == TEXT
    span = telemetry.only_span()  # the SDK's own span is not made for this call
    assert span.name == "chat claude-test"
    assert span.kind.name == "CLIENT"
    assert span.instrumentation_scope.name == "llm_otel"
    a = span.attributes
    assert a["gen_ai.operation.name"] == "chat"
    assert a["gen_ai.provider.name"] == "anthropic"
    assert a["gen_ai.request.model"] == "claude-test"
    assert a["gen_ai.request.max_tokens"] == 64
    if _sampling():
        assert a["gen_ai.request.temperature"] == 0.2
        assert a["gen_ai.request.top_p"] == 0.9
        assert a["gen_ai.request.top_k"] == 5
    assert a["gen_ai.request.stop_sequences"] == ("END",)
    assert a["server.address"] == "127.0.0.1"
    assert isinstance(a["server.port"], int)
    assert a["gen_ai.response.id"] == "msg_test_1"
    assert a["gen_ai.response.model"] == "claude-test-20250101"
    assert a["gen_ai.response.finish_reasons"] == ("stop",)
    assert a["gen_ai.usage.input_tokens"] == 12
    assert a["gen_ai.usage.output_tokens"] == 5
    assert "gen_ai.input.messages" not in a  # content is opt-in
    (duration,) = _points(telemetry, "gen_ai.client.operation.duration")
    assert duration.count == 1
    assert duration.attributes["gen_ai.provider.name"] == "anthropic"
    tokens = {
        p.attributes["gen_ai.token.type"]: p.sum
        for p in _points(telemetry, "gen_ai.client.token.usage")
    }
    assert tokens == {"input": 12, "output": 5}


def test_cache_tokens_are_part_of_input_tokens(client: Any, telemetry: Telemetry) -> None:
    client.messages.create(model="cached-model", max_tokens=64, messages=USER)
    a = telemetry.only_span().attributes
    # Anthropic's input_tokens (12) leaves out cache reads (100) and writes (20); semconv's
    # does not.
    assert a["gen_ai.usage.input_tokens"] == 132
    assert a["gen_ai.usage.cache_read.input_tokens"] == 100
    assert a["gen_ai.usage.cache_creation.input_tokens"] == 20


@pytest.mark.parametrize("content_policy", [ContentPolicy(ContentMode.SPAN_ONLY)])
def test_tool_use_with_content(client: Any, telemetry: Telemetry) -> None:
    tools = [{"name": "get_weather", "description": "Weather", "input_schema": {"type": "object"}}]
    history = [
        {"role": "user", "content": "Weather in Paris?"},
        {
            "role": "assistant",
            "content": [{"type": "tool_use", "id": "toolu_0", "name": "get_weather", "input": {}}],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_0", "content": "sunny"},
                {
                    "type": "image",
                    "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"},
                },
            ],
        },
    ]
    message = client.messages.create(
        model="tool-model", max_tokens=64, messages=history, tools=tools, system="Be brief."
    )
    assert message.stop_reason == "tool_use"
    a = telemetry.only_span().attributes
    assert a["gen_ai.response.finish_reasons"] == ("tool_call",)
    assert json.loads(a["gen_ai.system_instructions"]) == [{"type": "text", "content": "Be brief."}]
    inputs = json.loads(a["gen_ai.input.messages"])
    assert inputs[1]["parts"][0] == {
        "type": "tool_call",
        "id": "toolu_0",
        "name": "get_weather",
        "arguments": {},
    }
    assert inputs[2]["parts"][0] == {
        "type": "tool_call_response",
        "id": "toolu_0",
        "response": "sunny",
    }
    assert inputs[2]["parts"][1]["type"] == "blob"
    (output,) = json.loads(a["gen_ai.output.messages"])
    assert output["finish_reason"] == "tool_call"
    assert output["parts"] == [
        {"type": "text", "content": "Let me check."},
        {
            "type": "tool_call",
            "id": "toolu_1",
            "name": "get_weather",
            "arguments": {"city": "Paris"},
        },
    ]
    assert json.loads(a["gen_ai.tool.definitions"])[0]["name"] == "get_weather"


@pytest.mark.parametrize("content_policy", [ContentPolicy(ContentMode.SPAN_ONLY)])
def test_stream_exhausted(client: Any, telemetry: Telemetry) -> None:
    stream = client.messages.create(model="claude-test", max_tokens=64, messages=USER, stream=True)
    text = "".join(e.delta.text for e in stream if e.type == "content_block_delta")
    assert text == TEXT
    span = telemetry.only_span()
    a = span.attributes
    assert a["gen_ai.request.stream"] is True
    assert a["gen_ai.response.id"] == "msg_test_1"
    assert a["gen_ai.usage.input_tokens"] == 12
    assert a["gen_ai.usage.output_tokens"] == 5
    assert a["gen_ai.response.finish_reasons"] == ("stop",)
    assert a["gen_ai.response.time_to_first_chunk"] > 0
    (output,) = json.loads(a["gen_ai.output.messages"])
    assert output["parts"] == [{"type": "text", "content": TEXT}]
    (ttfc,) = _points(telemetry, "gen_ai.client.operation.time_to_first_chunk")
    assert ttfc.count == 1


@pytest.mark.parametrize("content_policy", [ContentPolicy(ContentMode.SPAN_ONLY)])
@pytest.mark.parametrize("model", ["tool-model", "thinking-model", "cached-model"])
def test_stream_blocks_and_usage(client: Any, telemetry: Telemetry, model: str) -> None:
    with client.messages.create(model=model, max_tokens=64, messages=USER, stream=True) as stream:
        for _ in stream:
            pass
    a = telemetry.only_span().attributes
    (output,) = json.loads(a["gen_ai.output.messages"])
    if model == "tool-model":
        assert output["parts"][1]["arguments"] == {"city": "Paris"}
        assert a["gen_ai.response.finish_reasons"] == ("tool_call",)
    elif model == "thinking-model":
        assert output["parts"][0] == {"type": "reasoning", "content": "The user greets me."}
    else:
        assert a["gen_ai.usage.input_tokens"] == 132


@pytest.mark.parametrize("how", ["close", "break-with", "gc"])
def test_stream_ended_early(client: Any, telemetry: Telemetry, how: str) -> None:
    stream = client.messages.create(model="long-stream", max_tokens=64, messages=USER, stream=True)
    if how == "close":
        next(iter(stream))
        stream.close()
    elif how == "break-with":
        with stream:
            for _ in stream:
                break
    else:
        next(iter(stream))
        del stream
        gc.collect()
    span = telemetry.only_span()
    assert span.attributes["gen_ai.response.id"] == "msg_test_1"
    assert "error.type" not in span.attributes


def test_stream_error_event(client: Any, telemetry: Telemetry) -> None:
    stream = client.messages.create(model="mid-error", max_tokens=64, messages=USER, stream=True)
    with pytest.raises(anthropic.APIStatusError):
        for _ in stream:
            pass
    span = telemetry.only_span()
    assert span.status.status_code.name == "ERROR"
    assert span.attributes["error.type"]
    (duration,) = _points(telemetry, "gen_ai.client.operation.duration")
    assert duration.attributes["error.type"] == span.attributes["error.type"]


@pytest.mark.parametrize("status", [429, 500])
def test_http_errors(client: Any, telemetry: Telemetry, status: int) -> None:
    with pytest.raises(anthropic.APIStatusError) as raised:
        client.messages.create(model=f"error-{status}", max_tokens=64, messages=USER)
    assert raised.value.status_code == status
    span = telemetry.only_span()
    assert span.attributes["error.type"] == str(status)
    assert span.status.status_code.name == "ERROR"


@pytest.mark.parametrize("content_policy", [ContentPolicy(ContentMode.SPAN_ONLY)])
def test_stream_helper(client: Any, telemetry: Telemetry) -> None:
    with client.messages.stream(model="slow-first", max_tokens=64, messages=USER) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == TEXT
    assert final.content[0].text == TEXT
    span = telemetry.only_span()
    a = span.attributes
    assert span.name == "chat slow-first"
    assert a["gen_ai.request.stream"] is True
    assert a["gen_ai.usage.output_tokens"] == 5
    assert a["gen_ai.response.time_to_first_chunk"] >= SLOW_FIRST_DELAY
    assert json.loads(a["gen_ai.input.messages"]) == [
        {"role": "user", "parts": [{"type": "text", "content": "Say hello"}]}
    ]


def test_stream_helper_left_early(client: Any, telemetry: Telemetry) -> None:
    with client.messages.stream(model="long-stream", max_tokens=64, messages=USER) as stream:
        for _ in stream:
            break
    assert telemetry.only_span().attributes["gen_ai.response.id"] == "msg_test_1"


async def test_async_create_stream_and_helper(aclient: Any, telemetry: Telemetry) -> None:
    message = await aclient.messages.create(model="claude-test", max_tokens=64, messages=USER)
    assert message.content[0].text == TEXT
    stream = await aclient.messages.create(
        model="claude-test", max_tokens=64, messages=USER, stream=True
    )
    async for _ in stream:
        pass
    async with aclient.messages.stream(model="claude-test", max_tokens=64, messages=USER) as s:
        assert "".join([t async for t in s.text_stream]) == TEXT
    spans = telemetry.spans()
    assert [s.name for s in spans] == ["chat claude-test"] * 3
    assert [s.attributes.get("gen_ai.request.stream", False) for s in spans] == [False, True, True]
    assert all(s.attributes["gen_ai.usage.output_tokens"] == 5 for s in spans)


def test_sdk_span_is_kept_for_calls_we_do_not_record(
    server: AnthropicTestServer, telemetry: Telemetry
) -> None:
    if not SDK_HAS_SPANS:
        pytest.skip("this anthropic version has no spans of its own")
    options = _client_options(telemetry, True)
    with anthropic.Anthropic(base_url=server.base_url, api_key="k", max_retries=0, **options) as c:
        c.messages.create(model="claude-test", max_tokens=8, messages=USER)
        AnthropicInstrumentor().uninstrument()
        c.messages.create(model="claude-test", max_tokens=8, messages=USER)
    ours, sdk = telemetry.spans()
    assert ours.instrumentation_scope.name == "llm_otel"
    # Uninstrumented, the SDK's own span is back: we only ever switch it off for our calls.
    assert sdk.instrumentation_scope.name == "com.anthropic.sdk.python"


def test_with_raw_response(client: Any, telemetry: Telemetry) -> None:
    raw = client.messages.with_raw_response.create(model="claude-test", max_tokens=8, messages=USER)
    assert raw.parse().content[0].text == TEXT
    assert telemetry.only_span().attributes["gen_ai.response.id"] == "msg_test_1"


def test_a_stream_through_with_streaming_response(client: Any, telemetry: Telemetry) -> None:
    """The raw response first, its event stream from parse(): the call ends with the stream,
    with its usage (not when the headers arrive)."""
    with client.messages.with_streaming_response.create(
        model="claude-test", max_tokens=8, messages=USER, stream=True
    ) as response:
        assert telemetry.spans() == []
        events = list(response.parse())
    assert any(e.type == "message_stop" for e in events)
    span = telemetry.only_span()
    assert span.attributes["gen_ai.request.stream"] is True
    assert span.attributes["gen_ai.usage.output_tokens"] > 0
    assert span.attributes["gen_ai.response.time_to_first_chunk"] > 0
