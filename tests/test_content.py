"""Content capture: off by default; on the span, as the details event, truncated, redacted."""

from __future__ import annotations

import json
import logging
import re
from typing import Any

import openai
import pytest

from llm_otel import _guard
from llm_otel.genai import ContentMode, ContentPolicy, policy_from_env
from llm_otel.genai._content import REDACTION_FAILED
from tests.conftest import USER, Telemetry, requires_responses

CONTENT_KEYS = {
    "gen_ai.input.messages",
    "gen_ai.output.messages",
    "gen_ai.system_instructions",
    "gen_ai.tool.definitions",
}
CONVERSATION = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": [{"type": "text", "text": "Weather in Paris?"}]},
    {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "call_0",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
            }
        ],
    },
    {"role": "tool", "tool_call_id": "call_0", "content": "sunny"},
]
TOOLS = [{"type": "function", "function": {"name": "get_weather", "parameters": {}}}]
# What the test server's tool-model answers, as gen_ai.output.messages, streamed or not.
TOOL_CALL_OUTPUT = [
    {
        "role": "assistant",
        "finish_reason": "tool_call",
        "parts": [
            {
                "type": "tool_call",
                "id": "call_1",
                "name": "get_weather",
                "arguments": {"city": "Paris"},
            }
        ],
    },
]


def test_no_content_by_default(client: openai.OpenAI, telemetry: Telemetry) -> None:
    client.chat.completions.create(model="tool-model", messages=CONVERSATION, tools=TOOLS)
    span = telemetry.only_span()
    assert CONTENT_KEYS.isdisjoint(span.attributes)
    assert telemetry.logs() == []


@pytest.mark.parametrize("content_policy", [ContentPolicy(ContentMode.SPAN_ONLY)])
def test_span_content_in_semconv_schema(client: openai.OpenAI, telemetry: Telemetry) -> None:
    client.chat.completions.create(model="tool-model", messages=CONVERSATION, tools=TOOLS)
    span = telemetry.only_span()
    assert json.loads(span.attributes["gen_ai.input.messages"]) == [
        {"role": "system", "parts": [{"type": "text", "content": "You are terse."}]},
        {"role": "user", "parts": [{"type": "text", "content": "Weather in Paris?"}]},
        {
            "role": "assistant",
            "parts": [
                {
                    "type": "tool_call",
                    "id": "call_0",
                    "name": "get_weather",
                    "arguments": {"city": "Paris"},
                }
            ],
        },
        {
            "role": "tool",
            "parts": [{"type": "tool_call_response", "id": "call_0", "response": "sunny"}],
        },
    ]
    assert json.loads(span.attributes["gen_ai.output.messages"]) == TOOL_CALL_OUTPUT
    assert json.loads(span.attributes["gen_ai.tool.definitions"]) == TOOLS
    assert telemetry.logs() == []


@pytest.mark.parametrize("content_policy", [ContentPolicy(ContentMode.SPAN_ONLY)])
def test_streamed_output_is_reassembled(client: openai.OpenAI, telemetry: Telemetry) -> None:
    for _ in client.chat.completions.create(model="tool-model", messages=USER, stream=True):
        pass
    for _ in client.chat.completions.create(model="gpt-test", messages=USER, stream=True):
        pass
    tool, text = telemetry.spans()
    assert json.loads(tool.attributes["gen_ai.output.messages"]) == TOOL_CALL_OUTPUT
    assert json.loads(text.attributes["gen_ai.output.messages"]) == [
        {
            "role": "assistant",
            "finish_reason": "stop",
            "parts": [{"type": "text", "content": "Hello from the test server"}],
        },
    ]


@requires_responses
@pytest.mark.parametrize("content_policy", [ContentPolicy(ContentMode.SPAN_ONLY)])
def test_responses_api_content(client: openai.OpenAI, telemetry: Telemetry) -> None:
    client.responses.create(model="gpt-test", input="hi", instructions="be brief")
    span = telemetry.only_span()
    assert json.loads(span.attributes["gen_ai.system_instructions"]) == [
        {"type": "text", "content": "be brief"}
    ]
    assert json.loads(span.attributes["gen_ai.input.messages"]) == [
        {"role": "user", "parts": [{"type": "text", "content": "hi"}]}
    ]
    assert json.loads(span.attributes["gen_ai.output.messages"])[0]["parts"] == [
        {"type": "text", "content": "Hello from the test server"}
    ]


@pytest.mark.parametrize("content_policy", [ContentPolicy(ContentMode.EVENT_ONLY)])
def test_event_only(client: openai.OpenAI, telemetry: Telemetry) -> None:
    client.chat.completions.create(model="gpt-test", messages=USER)
    span = telemetry.only_span()
    assert CONTENT_KEYS.isdisjoint(span.attributes)
    (record,) = telemetry.logs()
    assert record.event_name == "gen_ai.client.inference.operation.details"
    assert record.trace_id == span.context.trace_id
    assert record.span_id == span.context.span_id
    attrs = record.attributes
    assert attrs["gen_ai.operation.name"] == "chat"
    assert attrs["gen_ai.usage.output_tokens"] == 5
    assert json.loads(attrs["gen_ai.input.messages"])[0]["parts"][0]["content"] == "Say hello"
    assert "Hello from the test server" in attrs["gen_ai.output.messages"]


@pytest.mark.parametrize("content_policy", [ContentPolicy(ContentMode.SPAN_AND_EVENT)])
def test_span_and_event_on_error(client: openai.OpenAI, telemetry: Telemetry) -> None:
    with pytest.raises(openai.RateLimitError):
        client.chat.completions.create(model="error-429", messages=USER)
    span = telemetry.only_span()
    assert "gen_ai.input.messages" in span.attributes
    (record,) = telemetry.logs()
    assert record.attributes["error.type"] == "429"


@pytest.mark.parametrize("content_policy", [ContentPolicy(ContentMode.SPAN_ONLY, max_length=10)])
def test_truncation_keeps_valid_json(client: openai.OpenAI, telemetry: Telemetry) -> None:
    client.chat.completions.create(
        model="gpt-test", messages=[{"role": "user", "content": "x" * 50}]
    )
    span = telemetry.only_span()
    (message,) = json.loads(span.attributes["gen_ai.input.messages"])
    assert message["parts"][0]["content"] == "x" * 10 + "...[truncated 40 chars]"
    assert message["role"] == "user"  # structure is never cut


def _redact_emails(text: str) -> str:
    return re.sub(r"[\w.]+@[\w.]+", "[EMAIL]", text)


@pytest.mark.parametrize(
    "content_policy", [ContentPolicy(ContentMode.SPAN_ONLY, max_length=20, redactor=_redact_emails)]
)
def test_redaction_runs_before_truncation(client: openai.OpenAI, telemetry: Telemetry) -> None:
    secret = "mail " + "a" * 10 + "@example.com please"
    client.chat.completions.create(model="gpt-test", messages=[{"role": "user", "content": secret}])
    recorded = telemetry.only_span().attributes["gen_ai.input.messages"]
    assert "example.com" not in recorded
    assert "[EMAIL]" in recorded


def _broken_redactor(text: str) -> str:
    raise RuntimeError("redactor bug")


@pytest.mark.parametrize(
    "content_policy", [ContentPolicy(ContentMode.SPAN_ONLY, redactor=_broken_redactor)]
)
def test_failing_redactor_records_nothing_sensitive(
    client: openai.OpenAI, telemetry: Telemetry, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="llm_otel"):
        result = client.chat.completions.create(model="gpt-test", messages=USER)
    assert result.choices[0].message.content == "Hello from the test server"
    recorded = telemetry.only_span().attributes["gen_ai.input.messages"]
    assert "Say hello" not in recorded
    assert REDACTION_FAILED in recorded


@pytest.mark.parametrize(
    ("value", "mode"),
    [
        (None, ContentMode.NO_CONTENT),
        ("", ContentMode.NO_CONTENT),
        ("span_only", ContentMode.SPAN_ONLY),
        ("EVENT_ONLY", ContentMode.EVENT_ONLY),
        ("SPAN_AND_EVENT", ContentMode.SPAN_AND_EVENT),
        ("true", ContentMode.SPAN_ONLY),
        ("False", ContentMode.NO_CONTENT),
        ("bogus", ContentMode.NO_CONTENT),
    ],
)
def test_env_values(value: str | None, mode: ContentMode, monkeypatch: pytest.MonkeyPatch) -> None:
    if value is None:
        monkeypatch.delenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", raising=False)
    else:
        monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", value)
    assert policy_from_env().mode is mode


def test_bad_max_length_env_warns(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("LLM_OTEL_CONTENT_MAX_LENGTH", "-3")
    with caplog.at_level(logging.WARNING, logger="llm_otel"):
        assert policy_from_env().max_length == 16384
    assert "LLM_OTEL_CONTENT_MAX_LENGTH" in caplog.text


@pytest.mark.parametrize(
    "value",
    [
        [{"role": "user", "parts": [{"type": "text", "content": "short"}]}],
        [{"role": "user", "parts": [{"type": "text", "content": "x" * 40}]}],  # over the limit
        [{"role": "assistant", "parts": [], "finish_reason": None}],  # unknown: dropped
        [
            {
                "role": "assistant",
                "parts": [{"type": "text", "content": '"finish_reason": null'}],
                "finish_reason": "stop",
            }
        ],
        ({"role": "user", "parts": ({"type": "text", "content": "é ☃ \u2028"},)},),
        [],
    ],
)
@pytest.mark.parametrize("max_length", [0, 30, 16384])
def test_serialize_without_a_redactor_equals_the_cleaned_encoding(
    value: Any, max_length: int
) -> None:
    # The fast path (encode once when nothing needs cutting or dropping) and the cleaning walk
    # give the same JSON.
    policy = ContentPolicy(ContentMode.SPAN_ONLY, max_length=max_length)
    walked = json.dumps(policy.clean(value), ensure_ascii=False)
    assert policy.serialize(value) == walked


def test_content_that_cannot_be_encoded_costs_only_itself(telemetry: Telemetry) -> None:
    """Input messages JSON cannot encode (a structure that contains itself) leave out the input
    content attribute, reported once as an internal error; the output content and the
    response's attributes are still given when the span ends, and the span ends."""
    from llm_otel.genai import GenAITelemetry, Invocation, LLMRequest, LLMResponse

    core = GenAITelemetry(
        tracer_provider=telemetry.tracer_provider, content=ContentPolicy(ContentMode.SPAN_ONLY)
    )
    parts: list[Any] = []
    parts.append(parts)
    request = LLMRequest(
        operation="chat",
        provider="openai",
        model="m",
        input_messages=[{"role": "user", "parts": parts}],
    )
    before = _guard.internal_error_count()
    invocation = Invocation(core, request)
    invocation.finish(
        LLMResponse(
            response_id="r-1",
            input_tokens=3,
            output_messages=[{"role": "assistant", "parts": [{"type": "text", "content": "fine"}]}],
        )
    )
    assert _guard.internal_error_count() == before + 1
    assert _guard.internal_error_count("input content") >= 1
    attrs = telemetry.only_span().attributes
    assert "gen_ai.input.messages" not in attrs
    assert json.loads(attrs["gen_ai.output.messages"])[0]["parts"][0]["content"] == "fine"
    assert attrs["gen_ai.response.id"] == "r-1"
    assert attrs["gen_ai.usage.input_tokens"] == 3
