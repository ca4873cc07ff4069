"""Built-in redactors: what each kind catches (and leaves alone), the count metric, the env var."""

from __future__ import annotations

import json

import openai
import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from llm_otel.genai import ContentMode, ContentPolicy, policy_from_env
from llm_otel.genai._content import REDACTION_FAILED
from llm_otel.redaction import PatternRedactor
from tests.conftest import Telemetry

REDACT = PatternRedactor()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("mail jane.doe+llm@example.co.uk now", "mail [EMAIL] now"),
        ("call +1 415-555-0100 or (415) 555-0199", "call [PHONE] or [PHONE]"),
        ("card 4111 1111 1111 1111 exp", "card [CREDIT_CARD] exp"),
        ("card 5500-0000-0000-0004.", "card [CREDIT_CARD]."),
        ("key sk-proj-abcdefghijklmnopqrstuvwx123", "key [SECRET]"),
        ("anthropic sk-ant-api03-abcdefghijklmnopqrstuvwxyz0123", "anthropic [SECRET]"),
        ("aws AKIAIOSFODNN7EXAMPLE here", "aws [SECRET] here"),
        ("gh ghp_" + "a" * 36, "gh [SECRET]"),
        ("Authorization: Bearer abcdefghijklmnop1234", "Authorization: [SECRET]"),
        (
            "jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N",
            "jwt [SECRET]",
        ),
        ("-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY----- ok", "[SECRET] ok"),
        ("from 10.0.0.12 and 2001:db8::1", "from [IP_ADDRESS] and [IP_ADDRESS]"),
    ],
)
def test_catches(text: str, expected: str) -> None:
    assert REDACT(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "the meeting is on 2024-01-01 at 12:30:45",
        "version 1.2.3.4567 and 999.1.1.1",  # not addresses
        "order 12345, total 42.50",
        "sk-short is not a key",
        "no email@here",
    ],
)
def test_leaves_ordinary_text_alone(text: str) -> None:
    assert REDACT(text) == text


def test_invalid_card_number_is_not_called_a_card() -> None:
    assert "[CREDIT_CARD]" not in REDACT("4111 1111 1111 1112")  # fails the Luhn check


def test_counts_redactions_by_kind() -> None:
    reader = InMemoryMetricReader()
    redact = PatternRedactor(meter_provider=MeterProvider(metric_readers=[reader]))
    redact("a@b.io c@d.io 10.1.1.1")
    points = {
        p.attributes["llm_otel.redaction.kind"]: p.value
        for rm in reader.get_metrics_data().resource_metrics
        for sm in rm.scope_metrics
        for m in sm.metrics
        for p in m.data.data_points
    }
    assert points == {"email": 2, "ip_address": 1}


def test_kinds_extra_patterns_and_replacement() -> None:
    redact = PatternRedactor(["email"], replacement="<{kind}>", extra={"ticket": r"TCK-\d+"})
    assert redact("a@b.io TCK-123 10.0.0.1") == "<EMAIL> <TICKET> 10.0.0.1"
    with pytest.raises(ValueError, match="unknown redaction kinds"):
        PatternRedactor(["emails"])


@pytest.mark.parametrize(
    "content_policy", [ContentPolicy(ContentMode.SPAN_ONLY, redactor=PatternRedactor())]
)
def test_redacted_before_recording(client: openai.OpenAI, telemetry: Telemetry) -> None:
    message = "I am jane@example.com, card 4111111111111111, key sk-proj-" + "x" * 24
    client.chat.completions.create(
        model="gpt-test", messages=[{"role": "user", "content": message}]
    )
    (recorded,) = json.loads(telemetry.only_span().attributes["gen_ai.input.messages"])
    assert recorded["parts"][0]["content"] == "I am [EMAIL], card [CREDIT_CARD], key [SECRET]"


def test_env_var_turns_the_built_in_redactor_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLM_OTEL_CONTENT_REDACTION", "default")
    policy = policy_from_env("SPAN_ONLY")
    assert policy.clean_text("x@y.io") == "[EMAIL]"
    monkeypatch.setenv("LLM_OTEL_CONTENT_REDACTION", "email,ip_address")
    assert policy_from_env("SPAN_ONLY").clean_text("x@y.io 1.2.3.4 sk-" + "a" * 30) == (
        "[EMAIL] [IP_ADDRESS] sk-" + "a" * 30
    )
    monkeypatch.setenv("LLM_OTEL_CONTENT_REDACTION", "emails")  # a typo fails closed
    assert policy_from_env("SPAN_ONLY").clean_text("hello") == REDACTION_FAILED
