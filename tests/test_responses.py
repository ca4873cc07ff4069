"""The Responses API and embeddings: sync, async, streamed."""

from __future__ import annotations

import openai
import pytest
from opentelemetry.trace import StatusCode

from tests.conftest import Telemetry, accepts, requires_responses

# `conversation` arrived in the Responses API after our oldest supported SDK.
OLD_SDK = not accepts("openai.resources.responses:Responses.create", "conversation")


@requires_responses
def test_responses_create(client: openai.OpenAI, telemetry: Telemetry) -> None:
    result = client.responses.create(
        model="gpt-test",
        input="hi",
        instructions="be brief",
        max_output_tokens=50,
        temperature=0.3,
        text={"format": {"type": "json_object"}},
        **({} if OLD_SDK else {"conversation": "conv_1"}),
    )
    assert result.output_text == "Hello from the test server"
    span = telemetry.only_span()
    assert span.name == "chat gpt-test"
    attrs = span.attributes
    assert attrs["gen_ai.request.max_tokens"] == 50
    assert attrs["gen_ai.request.temperature"] == 0.3
    assert attrs["gen_ai.output.type"] == "json"
    if not OLD_SDK:
        assert attrs["gen_ai.conversation.id"] == "conv_1"
    assert attrs["gen_ai.response.id"] == "resp_test"
    assert attrs["gen_ai.response.finish_reasons"] == ("stop",)
    assert attrs["gen_ai.usage.input_tokens"] == 11
    assert attrs["gen_ai.usage.output_tokens"] == 6
    assert attrs["gen_ai.usage.cache_read.input_tokens"] == 3
    assert attrs["gen_ai.usage.reasoning.output_tokens"] == 1


@requires_responses
def test_responses_incomplete_and_tool_call(client: openai.OpenAI, telemetry: Telemetry) -> None:
    client.responses.create(model="incomplete", input="hi")
    client.responses.create(model="tool-model", input="hi")
    incomplete, tool = telemetry.spans()
    assert incomplete.attributes["gen_ai.response.finish_reasons"] == ("length",)
    assert tool.attributes["gen_ai.response.finish_reasons"] == ("tool_call",)


@requires_responses
def test_responses_stream(client: openai.OpenAI, telemetry: Telemetry) -> None:
    events = [e.type for e in client.responses.create(model="gpt-test", input="hi", stream=True)]
    assert events[0] == "response.created" and events[-1] == "response.completed"
    span = telemetry.only_span()
    assert span.attributes["gen_ai.request.stream"] is True
    assert span.attributes["gen_ai.usage.output_tokens"] == 6
    assert span.attributes["gen_ai.response.finish_reasons"] == ("stop",)
    assert len(telemetry.points("gen_ai.client.operation.time_to_first_chunk")) == 1


@requires_responses
def test_responses_stream_error_event(client: openai.OpenAI, telemetry: Telemetry) -> None:
    seen: list[object] = []
    try:
        for event in client.responses.create(model="mid-error", input="hi", stream=True):
            seen.append(getattr(event, "type", None))
    except openai.APIError:
        seen.append("error")  # some SDK versions raise on the error event, others yield it
    if "error" not in seen:
        pytest.skip("this openai version mis-parses the error event (type=None)")
    span = telemetry.only_span()
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes["error.type"] in ("server_error", "APIError")


@requires_responses
def test_responses_stream_helper(client: openai.OpenAI, telemetry: Telemetry) -> None:
    with client.responses.stream(model="gpt-test", input="hi") as stream:
        final = stream.get_final_response()
    assert final.output_text == "Hello from the test server"
    assert telemetry.only_span().attributes["gen_ai.usage.input_tokens"] == 11


@requires_responses
async def test_async_responses(aclient: openai.AsyncOpenAI, telemetry: Telemetry) -> None:
    await aclient.responses.create(model="gpt-test", input="hi")
    stream = await aclient.responses.create(model="gpt-test", input="hi", stream=True)
    async for _ in stream:
        pass
    plain, streamed = telemetry.spans()
    assert plain.attributes["gen_ai.usage.input_tokens"] == 11
    assert streamed.attributes["gen_ai.request.stream"] is True


@requires_responses
def test_responses_http_error(client: openai.OpenAI, telemetry: Telemetry) -> None:
    with pytest.raises(openai.InternalServerError):
        client.responses.create(model="error-500", input="hi")
    assert telemetry.only_span().attributes["error.type"] == "500"


def test_embeddings(client: openai.OpenAI, telemetry: Telemetry) -> None:
    result = client.embeddings.create(
        model="emb", input=["a", "b"], encoding_format="float", dimensions=3
    )
    assert len(result.data) == 2
    span = telemetry.only_span()
    assert span.name == "embeddings emb"
    assert span.attributes["gen_ai.operation.name"] == "embeddings"
    assert span.attributes["gen_ai.request.encoding_formats"] == ("float",)
    assert span.attributes["gen_ai.embeddings.dimension.count"] == 3
    assert span.attributes["gen_ai.usage.input_tokens"] == 7
    assert "gen_ai.usage.output_tokens" not in span.attributes
    (point,) = telemetry.points("gen_ai.client.token.usage")
    assert point.attributes["gen_ai.token.type"] == "input"


async def test_async_embeddings(aclient: openai.AsyncOpenAI, telemetry: Telemetry) -> None:
    await aclient.embeddings.create(model="emb", input="a")
    assert telemetry.only_span().attributes["gen_ai.usage.input_tokens"] == 7
