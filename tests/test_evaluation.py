"""record_evaluation: feedback on a past call, as the gen_ai.evaluation.result event and metrics."""

from __future__ import annotations

import logging

import openai
import pytest

import llm_otel
from tests.conftest import USER, Telemetry


def test_feedback_by_response_id(client: openai.OpenAI, telemetry: Telemetry) -> None:
    completion = client.chat.completions.create(model="gpt-test", messages=USER)
    assert llm_otel.record_evaluation(
        completion.id, name="user_feedback", score=1.0, label="thumbs_up",
        explanation="the user clicked 👍",
    )  # fmt: skip
    span = telemetry.only_span()
    (event,) = telemetry.logs()
    assert event.event_name == "gen_ai.evaluation.result"
    assert (event.trace_id, event.span_id) == (span.context.trace_id, span.context.span_id)
    assert dict(event.attributes) == {
        "gen_ai.evaluation.name": "user_feedback",
        "gen_ai.evaluation.score.value": 1.0,
        "gen_ai.evaluation.score.label": "thumbs_up",
        "gen_ai.evaluation.explanation": "the user clicked 👍",
        "gen_ai.response.id": "chatcmpl-test",
    }
    (count,) = telemetry.points("llm_otel.evaluation.results")
    assert count.value == 1
    assert dict(count.attributes) == {
        "gen_ai.evaluation.name": "user_feedback",
        "gen_ai.evaluation.score.label": "thumbs_up",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-test",
    }
    (score,) = telemetry.points("llm_otel.evaluation.score")
    assert score.sum == 1.0 and "gen_ai.evaluation.score.label" not in score.attributes


def test_by_span_and_current_span(telemetry: Telemetry) -> None:
    with llm_otel.llm_call(provider="in-house", model="m") as call:
        assert llm_otel.record_evaluation(None, name="groundedness", score=0.4)
    assert llm_otel.record_evaluation(call.span, name="toxicity", label="clean")
    span = telemetry.only_span()
    names = [e.attributes["gen_ai.evaluation.name"] for e in telemetry.logs()]
    assert names == ["groundedness", "toxicity"]
    assert all(e.span_id == span.context.span_id for e in telemetry.logs())


def test_unknown_target_is_a_warning_not_an_error(
    telemetry: Telemetry, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="llm_otel"):
        assert not llm_otel.record_evaluation("chatcmpl-never-seen", name="x", score=1)
        assert not llm_otel.record_evaluation(None, name="x")  # no current span
    assert "chatcmpl-never-seen" in caplog.text
    assert telemetry.logs() == []
