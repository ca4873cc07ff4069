"""The manual API takes what users naturally write and says clearly what it cannot take.

``llm_call`` / ``LLMCall.set_response`` / ``context`` / ``record_evaluation`` normalise values to
the conventions' types (a string finish reason becomes a one-element array, ids become strings,
``{"role", "content"}`` messages become the parts schema) and refuse values that would record
something false (negative token counts, NaN scores, an empty evaluation name) with one warning
that names the argument; the rest of the call is still recorded.
"""

from __future__ import annotations

import json
import logging
import math
import uuid

import pytest

import llm_otel
from llm_otel.genai import ContentMode, ContentPolicy
from tests.conftest import Telemetry

CONTENT_ON = [ContentPolicy(ContentMode.SPAN_ONLY)]


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


def test_a_single_finish_reason_string_is_recorded_as_an_array(telemetry: Telemetry) -> None:
    with llm_otel.llm_call(provider="vllm", model="m") as call:
        call.set_response(finish_reasons="stop")
    assert telemetry.only_span().attributes["gen_ai.response.finish_reasons"] == ("stop",)


def test_finish_reasons_of_the_wrong_type_are_refused_with_a_warning(
    telemetry: Telemetry, caplog: pytest.LogCaptureFixture
) -> None:
    with (
        caplog.at_level(logging.WARNING, logger="llm_otel"),
        llm_otel.llm_call(provider="vllm", model="m") as call,
    ):
        call.set_response(finish_reasons=[1, 2], output_tokens=3)
    attrs = telemetry.only_span().attributes
    assert "gen_ai.response.finish_reasons" not in attrs
    assert attrs["gen_ai.usage.output_tokens"] == 3  # the rest is still recorded
    (warning,) = _warnings(caplog)
    assert "finish_reasons" in warning and "[1, 2]" in warning


@pytest.mark.parametrize("bad", [-1, True, "twelve", 1.5, [12]])
def test_token_counts_that_are_not_counts_are_refused_with_a_warning(
    bad: object, telemetry: Telemetry, caplog: pytest.LogCaptureFixture
) -> None:
    with (
        caplog.at_level(logging.WARNING, logger="llm_otel"),
        llm_otel.llm_call(provider="vllm", model="m") as call,
    ):
        call.set_response(input_tokens=bad, output_tokens=4)  # type: ignore[arg-type]
    attrs = telemetry.only_span().attributes
    assert "gen_ai.usage.input_tokens" not in attrs
    assert attrs["gen_ai.usage.output_tokens"] == 4
    usage = {p.attributes["gen_ai.token.type"]: p.sum
             for p in telemetry.points("gen_ai.client.token.usage")}  # fmt: skip
    assert usage == {"output": 4}  # nothing negative or bogus in the histogram
    (warning,) = _warnings(caplog)
    assert "input_tokens" in warning and "non-negative integer" in warning
    assert "Traceback" not in caplog.text


@pytest.mark.parametrize(("given", "recorded"), [("12", 12), (" 12 ", 12), (12.0, 12)])
def test_token_counts_written_as_text_or_whole_floats_are_taken(
    given: object, recorded: int, telemetry: Telemetry, caplog: pytest.LogCaptureFixture
) -> None:
    with (
        caplog.at_level(logging.WARNING, logger="llm_otel"),
        llm_otel.llm_call(provider="vllm", model="m") as call,
    ):
        call.set_response(input_tokens=given)  # type: ignore[arg-type]
    assert telemetry.only_span().attributes["gen_ai.usage.input_tokens"] == recorded
    assert _warnings(caplog) == []


def test_context_ids_are_recorded_as_strings(telemetry: Telemetry) -> None:
    session = uuid.UUID(int=7)
    with (
        llm_otel.context(conversation_id=123, user_id=42, session_id=session),  # type: ignore[arg-type]
        llm_otel.task("t"),
    ):
        pass
    attrs = telemetry.only_span().attributes
    assert attrs["gen_ai.conversation.id"] == "123"
    assert attrs["user.id"] == "42"
    assert attrs["session.id"] == str(session)


def test_using_the_handle_after_the_block_ended_warns_once(
    telemetry: Telemetry, caplog: pytest.LogCaptureFixture
) -> None:
    with llm_otel.llm_call(provider="vllm", model="m") as call:
        pass
    with caplog.at_level(logging.WARNING, logger="llm_otel"):
        call.set_response(output_tokens=5)
        call.set_response(output_tokens=6)
        call.chunk()
        call.chunk()
    assert "gen_ai.usage.output_tokens" not in telemetry.only_span().attributes
    warnings = _warnings(caplog)
    assert len(warnings) == 2, warnings
    assert "set_response() after the llm_call() block ended" in warnings[0]
    assert "chunk() after the llm_call() block ended" in warnings[1]


@pytest.mark.parametrize("content_policy", CONTENT_ON)
def test_chat_style_messages_are_recorded_in_the_parts_schema(telemetry: Telemetry) -> None:
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": [{"type": "text", "text": "What is 2+2?"}, "Quickly."]},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "c1",
                    "type": "function",
                    "function": {"name": "add", "arguments": '{"a": 2, "b": 2}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "4"},
        {"role": "user", "parts": [{"type": "text", "content": "Thanks"}]},  # already parts
    ]
    with llm_otel.llm_call(
        provider="vllm", model="m", input_messages=messages, system_instructions="Be kind."
    ) as call:
        call.set_response(output_messages=[{"role": "assistant", "content": "4"}],
                          finish_reasons="stop")  # fmt: skip
    attrs = telemetry.only_span().attributes
    assert json.loads(attrs["gen_ai.input.messages"]) == [
        {"role": "system", "parts": [{"type": "text", "content": "Be brief."}]},
        {
            "role": "user",
            "parts": [
                {"type": "text", "content": "What is 2+2?"},
                {"type": "text", "content": "Quickly."},
            ],
        },
        {
            "role": "assistant",
            "parts": [
                {"type": "tool_call", "id": "c1", "name": "add", "arguments": {"a": 2, "b": 2}}
            ],
        },
        {"role": "tool", "parts": [{"type": "tool_call_response", "id": "c1", "response": "4"}]},
        {"role": "user", "parts": [{"type": "text", "content": "Thanks"}]},
    ]
    assert json.loads(attrs["gen_ai.system_instructions"]) == [
        {"type": "text", "content": "Be kind."}
    ]
    assert json.loads(attrs["gen_ai.output.messages"]) == [
        {"role": "assistant", "parts": [{"type": "text", "content": "4"}], "finish_reason": "stop"}
    ]


@pytest.mark.parametrize("content_policy", CONTENT_ON)
def test_a_prompt_string_is_one_user_message(telemetry: Telemetry) -> None:
    with llm_otel.llm_call(provider="vllm", model="m", input_messages="Hi"):
        pass
    assert json.loads(telemetry.only_span().attributes["gen_ai.input.messages"]) == [
        {"role": "user", "parts": [{"type": "text", "content": "Hi"}]}
    ]


@pytest.mark.parametrize("content_policy", CONTENT_ON)
def test_messages_of_an_unknown_shape_are_refused_with_a_warning(
    telemetry: Telemetry, caplog: pytest.LogCaptureFixture
) -> None:
    with (
        caplog.at_level(logging.WARNING, logger="llm_otel"),
        llm_otel.llm_call(
            provider="vllm", model="m", input_messages=[42, {"role": "user", "content": "ok"}]
        ),
    ):
        pass
    assert json.loads(telemetry.only_span().attributes["gen_ai.input.messages"]) == [
        {"role": "user", "parts": [{"type": "text", "content": "ok"}]}
    ]
    (warning,) = _warnings(caplog)
    assert "input_messages" in warning and "int" in warning and "42" not in warning


@pytest.mark.parametrize("name", [None, ""])
def test_an_evaluation_needs_a_name(
    name: object, telemetry: Telemetry, caplog: pytest.LogCaptureFixture
) -> None:
    with (
        caplog.at_level(logging.WARNING, logger="llm_otel"),
        llm_otel.llm_call(provider="vllm", model="m") as call,
    ):
        pass
        assert not llm_otel.record_evaluation(call.span, name=name, score=1.0)  # type: ignore[arg-type]
    assert telemetry.logs() == []
    (warning,) = _warnings(caplog)
    assert "record_evaluation()" in warning and "name" in warning


@pytest.mark.parametrize("score", [math.nan, math.inf, "0.5", True])
def test_an_evaluation_score_must_be_a_finite_number(
    score: object, telemetry: Telemetry, caplog: pytest.LogCaptureFixture
) -> None:
    with llm_otel.llm_call(provider="vllm", model="m") as call:
        pass
    with caplog.at_level(logging.WARNING, logger="llm_otel"):
        assert not llm_otel.record_evaluation(call.span, name="q", score=score)  # type: ignore[arg-type]
    assert telemetry.logs() == []
    (warning,) = _warnings(caplog)
    assert "score" in warning and "finite number" in warning


def test_evaluation_of_the_current_span_outside_any_span_says_so(
    telemetry: Telemetry, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="llm_otel"):
        assert not llm_otel.record_evaluation(None, name="q", score=1.0)
        assert not llm_otel.record_evaluation(12345, name="q")  # type: ignore[arg-type]
    current, wrong = _warnings(caplog)
    assert "no current span" in current and "response id None" not in current
    assert "int" in wrong and "response id" in wrong
