"""Instrument/uninstrument: originals restored, double instrumentation harmless."""

from __future__ import annotations

import logging

import openai
import pytest
from openai.resources.chat.completions import AsyncCompletions, Completions
from openai.resources.embeddings import Embeddings

from llm_otel.genai import ContentMode, ContentPolicy
from llm_otel.instrumentation._support import supported
from llm_otel.instrumentation.openai import OpenAIInstrumentor
from tests.conftest import HAS_RESPONSES, USER, make_telemetry
from tests.servers.openai_server import OpenAITestServer

METHODS: list[tuple[type, str]] = [
    (Completions, "create"),
    (AsyncCompletions, "create"),
    (Embeddings, "create"),
]
if "parse" in Completions.__dict__:
    METHODS.append((Completions, "parse"))
if HAS_RESPONSES:
    from openai.resources.responses import Responses

    METHODS.append((Responses, "create"))
ORIGINALS = {(cls, name): cls.__dict__[name] for cls, name in METHODS}


def test_uninstrument_restores_originals(server: OpenAITestServer) -> None:
    originals = ORIGINALS
    telemetry = make_telemetry(ContentPolicy(ContentMode.NO_CONTENT))
    try:
        for cls, name in METHODS:
            assert cls.__dict__[name] is not originals[(cls, name)]
    finally:
        OpenAIInstrumentor().uninstrument()
    for cls, name in METHODS:
        assert cls.__dict__[name] is originals[(cls, name)]
    client = openai.OpenAI(base_url=server.base_url, api_key="k", max_retries=0)
    client.chat.completions.create(model="gpt-test", messages=USER)
    assert telemetry.spans() == []


def test_a_wrapper_cached_by_the_sdk_stops_recording_on_uninstrument(
    server: OpenAITestServer,
) -> None:
    # ``client.chat.completions.with_raw_response`` is a cached resource that binds the create
    # method installed when it was first used: our wrapper outlives uninstrument() there.
    telemetry = make_telemetry(ContentPolicy(ContentMode.NO_CONTENT))
    client = openai.OpenAI(base_url=server.base_url, api_key="k", max_retries=0)
    raw = client.chat.completions.with_raw_response
    try:
        raw.create(model="gpt-test", messages=USER).parse()
        assert len(telemetry.spans()) == 1
    finally:
        OpenAIInstrumentor().uninstrument()
    reply = raw.create(model="gpt-test", messages=USER).parse()
    assert reply.choices[0].message.content  # the call itself is untouched
    assert len(telemetry.spans()) == 1  # and no longer recorded
    (duration,) = telemetry.points("gen_ai.client.operation.duration")
    assert duration.count == 1


def test_instrumenting_twice_gives_one_span(server: OpenAITestServer) -> None:
    telemetry = make_telemetry(ContentPolicy(ContentMode.NO_CONTENT))
    try:
        OpenAIInstrumentor().instrument()  # a second call (another constructor too) is a no-op
        client = openai.OpenAI(base_url=server.base_url, api_key="k", max_retries=0)
        client.chat.completions.create(model="gpt-test", messages=USER)
        assert len(telemetry.spans()) == 1
    finally:
        OpenAIInstrumentor().uninstrument()
    for cls, name in METHODS:
        assert cls.__dict__[name] is ORIGINALS[(cls, name)]


def test_reinstrument_after_uninstrument(server: OpenAITestServer) -> None:
    make_telemetry(ContentPolicy(ContentMode.NO_CONTENT))
    OpenAIInstrumentor().uninstrument()
    telemetry = make_telemetry(ContentPolicy(ContentMode.NO_CONTENT))
    try:
        client = openai.OpenAI(base_url=server.base_url, api_key="k", max_retries=0)
        client.chat.completions.create(model="gpt-test", messages=USER)
        assert len(telemetry.spans()) == 1
    finally:
        OpenAIInstrumentor().uninstrument()


def test_unsupported_version_is_skipped_with_one_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.DEBUG, logger="llm_otel"):
        assert not supported(("openai < 0.1",), "openai")
        assert not supported(("surely-not-installed-pkg >= 1",), "surely-not-installed-pkg")
        assert supported(("openai >= 1.0",), "openai")
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "openai" in warnings[0].getMessage()
