"""Telemetry never breaks the host: failures in our own code are logged once and swallowed."""

from __future__ import annotations

import logging
from typing import Any

import openai
import pytest

from llm_otel._guard import internal_error_count
from llm_otel.instrumentation.openai._chat import ChatAdapter, ChatStreamAccumulator
from tests.conftest import USER, Telemetry


def _boom(*args: Any, **kwargs: Any) -> Any:
    raise RuntimeError("injected telemetry failure")


@pytest.mark.parametrize(
    ("target", "method"),
    [
        (ChatAdapter, "request"),
        (ChatAdapter, "response"),
        (ChatStreamAccumulator, "add"),
        (ChatStreamAccumulator, "response"),
    ],
)
def test_failing_extractors_do_not_reach_the_caller(
    client: openai.OpenAI,
    telemetry: Telemetry,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    target: type,
    method: str,
) -> None:
    monkeypatch.setattr(target, method, _boom)
    before = internal_error_count()
    with caplog.at_level(logging.WARNING, logger="llm_otel"):
        result = client.chat.completions.create(model="gpt-test", messages=USER)
        stream = client.chat.completions.create(model="gpt-test", messages=USER, stream=True)
        text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert result.choices[0].message.content == "Hello from the test server"
    assert text == "Hello from the test server"
    assert internal_error_count() > before
    # Every span that was started was ended; a failed request mapping starts none.
    expected = 0 if method == "request" else 2
    assert len(telemetry.spans()) == expected
    assert all(s.end_time is not None for s in telemetry.spans())


def test_user_exception_is_the_same_object(
    client: openai.OpenAI, telemetry: Telemetry, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ChatAdapter, "response", _boom)  # even with our code failing too
    with pytest.raises(openai.RateLimitError) as caught:
        client.chat.completions.create(model="error-429", messages=USER)
    assert caught.value.__traceback__ is not None
    assert type(caught.value) is openai.RateLimitError
    assert telemetry.only_span().attributes["error.type"] == "429"


def test_failing_metric_record_still_ends_span(
    client: openai.OpenAI, telemetry: Telemetry, monkeypatch: pytest.MonkeyPatch
) -> None:
    from llm_otel.genai import _invocation

    monkeypatch.setattr(_invocation.Invocation, "_response_attributes", _boom)
    result = client.chat.completions.create(model="gpt-test", messages=USER)
    assert result.choices[0].message.content == "Hello from the test server"
    assert telemetry.only_span().end_time is not None


def test_unexpected_response_shapes(client: openai.OpenAI, telemetry: Telemetry) -> None:
    adapter = ChatAdapter()
    assert adapter.response(None, True) is None  # nothing to read, nothing raised
    odd = {
        "id": None,
        "model": 3,
        "choices": [{"message": None, "finish_reason": "weird"}],
        "usage": {"prompt_tokens": "12", "completion_tokens": None},
    }
    response = adapter.response(odd, True)
    assert response is not None
    assert response.input_tokens is None  # a string count is not trusted
    assert response.finish_reasons == ["weird"]
    assert response.output_messages == [
        {"role": "assistant", "parts": [], "finish_reason": "weird"}
    ]


def test_odd_shapes_never_produce_wrongly_typed_attributes(telemetry: Telemetry) -> None:
    from llm_otel.genai import GenAITelemetry, Invocation, LLMRequest, LLMResponse

    core = GenAITelemetry(tracer_provider=telemetry.tracer_provider)
    invocation = Invocation(core, LLMRequest(operation="chat", provider="openai", model="m"))
    invocation.finish(LLMResponse(response_id=5, response_model=3, input_tokens="12"))  # type: ignore[arg-type]
    attrs = telemetry.only_span().attributes
    assert "gen_ai.response.model" not in attrs
    assert "gen_ai.response.id" not in attrs
    assert "gen_ai.usage.input_tokens" not in attrs
