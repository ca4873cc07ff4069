"""Retries inside one call made visible: the client library retries 429/503 answers inside one
call; the GenAI span says how many times (one ``llm_otel.request.retry`` event per retried
attempt, with its error and the wait), the retry counter and the wait histogram count them, and
the provider's rate-limit headroom becomes a gauge. Real SDKs, their default retry logic, the
loopback servers answering ``retry-N-STATUS-*`` models with N failures then success.
"""

from __future__ import annotations

import asyncio
import importlib.util
import inspect
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from tests.libraries import Env, library_params


def _openai(server: Any, aio: bool = False) -> Any:
    import openai

    cls = openai.AsyncOpenAI if aio else openai.OpenAI
    return cls(base_url=server.base_url, api_key="k", max_retries=2)


def _groq(server: Any, aio: bool = False) -> Any:
    import groq

    cls = groq.AsyncGroq if aio else groq.Groq
    return cls(base_url=server.base_url.removesuffix("/v1"), api_key="k", max_retries=2)


def _anthropic(server: Any, aio: bool = False) -> Any:
    import anthropic

    cls = anthropic.AsyncAnthropic if aio else anthropic.Anthropic
    return cls(base_url=server.base_url, api_key="k", max_retries=2)


def _cohere(server: Any, aio: bool = False) -> Any:
    import cohere

    cls = cohere.AsyncClientV2 if aio else cohere.ClientV2
    return cls(api_key="k", base_url=server.base_url)  # retries twice by default


def _cohere_retries_by_default() -> bool:
    """cohere releases before the client-level ``base_max_retries`` retry only when a request
    asks (``request_options={"max_retries": ...}``)."""
    try:
        from cohere.core.http_client import HttpClient
    except ImportError:
        return False
    return "base_max_retries" in inspect.signature(HttpClient.__init__).parameters


def _mistral(server: Any, aio: bool = False) -> Any:
    # Off by default in the SDK: a retry config retries 429 and 5xx.
    try:
        from mistralai.client import Mistral  # mistralai >= 2
        from mistralai.client.utils.retries import BackoffStrategy, RetryConfig
    except ImportError:
        from mistralai import Mistral  # type: ignore[no-redef]
        from mistralai.utils.retries import (  # type: ignore[no-redef]
            BackoffStrategy,
            RetryConfig,
        )

    # 1 ms first wait, at most 50 ms, given up after 200 ms in all.
    retry = RetryConfig("backoff", BackoffStrategy(1, 50, 1.1, 200), False)
    return Mistral(api_key="k", server_url=server.base_url.removesuffix("/v1"), retry_config=retry)


def _gemini(server: Any, aio: bool = False) -> Any:
    # Off by default in the SDK: retry options retry 429 and 503.
    from google import genai

    options = genai.types.HttpOptions(
        base_url=server.base_url,
        retry_options=genai.types.HttpRetryOptions(attempts=3, initial_delay=0.001, max_delay=0.01),
    )
    client = genai.Client(api_key="k", http_options=options)
    return client


RETRYING: dict[str, Callable[..., Any]] = {
    "openai": _openai,
    "groq": _groq,
    "anthropic": _anthropic,
    "mistralai": _mistral,
    "google_genai": _gemini,
}
if _cohere_retries_by_default():
    RETRYING["cohere"] = _cohere
HEADROOM = {
    "openai": {"requests": 99, "tokens": 9000},
    "groq": {"requests": 99, "tokens": 9000},
    "anthropic": {"requests": 49, "input_tokens": 39000, "output_tokens": 7900},
    "cohere": {},  # sends no rate-limit headers
    "mistralai": {},  # not read for Mistral: its answers carry none
    "google_genai": {},
}
LIBS = [p for p in library_params() if p.values[0].name in RETRYING]
# cohere's chat_stream raises a 429 at once: its SDK retries only the plain calls.
STREAMS_RETRY = [p for p in LIBS if p.values[0].name != "cohere"]


def _model(failures: int, status: int) -> str:
    return f"retry-{failures}-{status}-{uuid.uuid4().hex[:8]}"


def _retry_points(env: Env) -> dict[str, float]:
    return {
        p.attributes["error.type"]: p.value for p in env.telemetry.points("llm_otel.client.retries")
    }


@pytest.mark.parametrize("env", LIBS, indirect=True)
def test_a_call_that_succeeds_after_two_429s_says_so(env: Env) -> None:
    client = RETRYING[env.library.name](env.server)
    env.library.chat(client, _model(2, 429), "hello")
    # First: SDKs before 1.43 report a gauge only in the first collection after it was set.
    headroom = {
        p.attributes["llm_otel.rate_limit.kind"]: p.value
        for p in env.telemetry.points("llm_otel.client.rate_limit.remaining")
    }
    assert headroom == HEADROOM[env.library.name]
    span = env.telemetry.only_span()
    assert "error.type" not in span.attributes
    assert span.attributes["llm_otel.request.retries"] == 2
    events = [e for e in span.events if e.name == "llm_otel.request.retry"]
    assert [e.attributes["llm_otel.request.attempt"] for e in events] == [1, 2]
    assert {e.attributes["error.type"] for e in events} == {"429"}
    assert all(e.attributes["llm_otel.request.retry_delay"] >= 0 for e in events)
    assert _retry_points(env) == {"429": 2}
    (wait,) = env.telemetry.points("llm_otel.client.retry.wait")
    assert wait.count == 1 and wait.sum >= 0
    assert "error.type" not in wait.attributes
    (duration,) = env.telemetry.points("gen_ai.client.operation.duration")
    assert duration.count == 1  # one call, however many attempts


@pytest.mark.parametrize("env", LIBS, indirect=True)
def test_a_call_that_runs_out_of_retries_ends_with_the_last_error(env: Env) -> None:
    client = RETRYING[env.library.name](env.server)
    with pytest.raises(Exception):
        env.library.chat(client, _model(10_000, 503), "hello")
    span = env.telemetry.only_span()
    assert span.attributes["error.type"] == "503"
    retries = span.attributes["llm_otel.request.retries"]  # 2 for most SDKs' defaults
    assert retries >= 2
    events = [e for e in span.events if e.name == "llm_otel.request.retry"]
    assert [e.attributes["llm_otel.request.attempt"] for e in events] == list(range(1, retries + 1))
    assert _retry_points(env) == {"503": retries}


@pytest.mark.parametrize("env", LIBS, indirect=True)
def test_a_call_without_retries_records_none(env: Env) -> None:
    client = RETRYING[env.library.name](env.server)
    env.chat()
    env.library.chat(client, env.library.model, "hello")
    for span in env.telemetry.spans():
        assert "llm_otel.request.retries" not in span.attributes
        assert not [e for e in span.events if e.name == "llm_otel.request.retry"]
    assert env.telemetry.points("llm_otel.client.retries") == []
    assert env.telemetry.points("llm_otel.client.retry.wait") == []


@pytest.mark.parametrize("env", STREAMS_RETRY, indirect=True)
def test_retries_of_async_and_streamed_calls(env: Env) -> None:
    library = env.library
    client = RETRYING[library.name](env.server)  # kept: google-genai closes on collection
    stream = library.stream(client, _model(1, 429), "hello")
    assert sum(1 for _ in stream) > 0

    async def run() -> None:
        client = RETRYING[library.name](env.server, aio=True)
        stream = await library.astream(client, _model(2, 503), "hello")
        assert len([item async for item in stream]) > 0

    asyncio.run(run())
    retries = sorted(s.attributes.get("llm_otel.request.retries", 0) for s in env.telemetry.spans())
    assert retries == [1, 2]
    assert _retry_points(env) == {"429": 1, "503": 2}


GEMINI = [p for p in LIBS if p.values[0].name == "google_genai"]


@pytest.mark.parametrize("transport", ["aiohttp", "httpx"])
@pytest.mark.parametrize("env", GEMINI, indirect=True)
def test_google_genai_async_retries_are_counted_on_either_transport(
    env: Env, transport: str
) -> None:
    # google-genai sends its async calls through aiohttp whenever aiohttp is installed (most
    # apps have it, the dev dependencies too), through httpx otherwise or when given an httpx
    # transport. (The oldest-versions venv has no aiohttp: its default is the httpx path.)
    import httpx

    client = _gemini(env.server)
    has_aiohttp = importlib.util.find_spec("aiohttp") is not None
    if transport == "aiohttp":
        if not has_aiohttp:
            pytest.skip("aiohttp is not installed")
        assert client._api_client._use_aiohttp()
    elif has_aiohttp:
        options = client._api_client._http_options
        options.async_client_args = {"transport": httpx.AsyncHTTPTransport()}
        assert not client._api_client._use_aiohttp()

    async def run() -> None:
        for model in (_model(2, 429), _model(1, 503)):
            stream = await env.library.astream(client, model, "hello")
            assert len([item async for item in stream]) > 0

    asyncio.run(run())
    retries = sorted(s.attributes.get("llm_otel.request.retries", 0) for s in env.telemetry.spans())
    assert retries == [1, 2]
    assert _retry_points(env) == {"429": 2, "503": 1}


def test_uninstrument_restores_the_http_transport() -> None:
    import httpx

    from llm_otel.genai import ContentMode, ContentPolicy
    from llm_otel.instrumentation.anthropic import AnthropicInstrumentor
    from llm_otel.instrumentation.openai import OpenAIInstrumentor
    from tests.conftest import make_telemetry

    original = httpx.Client.__dict__["send"]
    telemetry = make_telemetry(ContentPolicy(ContentMode.NO_CONTENT))
    AnthropicInstrumentor().instrument(**telemetry.providers)
    assert httpx.Client.__dict__["send"] is not original
    OpenAIInstrumentor().uninstrument()
    assert httpx.Client.__dict__["send"] is not original  # anthropic still needs it
    AnthropicInstrumentor().uninstrument()
    assert httpx.Client.__dict__["send"] is original


def test_uninstrument_restores_aiohttp() -> None:
    aiohttp = pytest.importorskip("aiohttp")  # in the dev dependencies; not in the oldest venv
    import google.genai  # noqa: F401  (imports aiohttp, as an app using it does)

    from llm_otel.genai import ContentMode, ContentPolicy
    from llm_otel.instrumentation.google_genai import GoogleGenAIInstrumentor
    from tests.conftest import make_telemetry

    original = aiohttp.ClientSession.__dict__["_request"]
    telemetry = make_telemetry(ContentPolicy(ContentMode.NO_CONTENT), instrument_openai=False)
    GoogleGenAIInstrumentor().instrument(**telemetry.providers)
    assert aiohttp.ClientSession.__dict__["_request"] is not original
    GoogleGenAIInstrumentor().uninstrument()
    assert aiohttp.ClientSession.__dict__["_request"] is original


class _Attempts:
    """Stands in for the call in progress: what the transport hook tells it."""

    def __init__(self) -> None:
        self.seen: list[tuple[str | None, Any]] = []

    def on_attempt(self, started: float, ended: float, outcome: Any) -> None:
        from llm_otel.genai._attempts import attempt_error, last_headers

        assert ended >= started
        headers = last_headers([(started, ended, outcome)])
        self.seen.append((attempt_error(outcome), headers.get("x-ratelimit-remaining-requests")))


@pytest.mark.parametrize("wrapped_by_someone_else", [False, True])
def test_the_transport_hook_sees_each_attempt_through_whatever_is_there(
    wrapped_by_someone_else: bool,
) -> None:
    """httpx's ``Client.send`` is hooked whether or not someone else's wrapper is already
    there: each attempt reaches the call in progress (its error type and headers), calls
    outside one pass through, and unwatching restores what was there. The hook answers as the
    method did (name, signature, a coroutine function for the async client), and a wrapper that
    was there still sees the client as its instance."""
    import inspect

    import httpx
    import wrapt

    from llm_otel.genai._attempts import unwatch_http, watch_http
    from llm_otel.genai._incall import IN_CALL

    original = httpx.Client.__dict__["send"]
    theirs: list[Any] = []
    if wrapped_by_someone_else:

        def their_wrapper(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
            theirs.append(instance)
            return wrapped(*args, **kwargs)

        wrapt.wrap_function_wrapper(httpx.Client, "send", their_wrapper)
    before = httpx.Client.__dict__["send"]
    statuses = iter([429, 200])

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(next(statuses), headers={"x-ratelimit-remaining-requests": "7"})

    client = httpx.Client(transport=httpx.MockTransport(answer))
    attempts = _Attempts()
    watch_http("httpx")
    try:
        assert httpx.Client.__dict__["send"] is not before
        assert httpx.Client.send.__name__ == "send"
        assert inspect.signature(httpx.Client.send) == inspect.signature(original)
        assert inspect.iscoroutinefunction(httpx.AsyncClient.send)
        client.get("http://bench.invalid/")  # outside a call: passed through
        statuses = iter([429, 200])
        token = IN_CALL.set(attempts)  # type: ignore[arg-type]
        try:
            assert client.get("http://bench.invalid/").status_code == 429
            assert client.get("http://bench.invalid/").status_code == 200
        finally:
            IN_CALL.reset(token)
    finally:
        unwatch_http("httpx")
        restored = httpx.Client.__dict__["send"]
        httpx.Client.send = original
        client.close()
    assert restored is before
    assert attempts.seen == [("429", "7"), (None, "7")]
    assert theirs == ([client] * 3 if wrapped_by_someone_else else [])


def test_an_attempts_outcome_is_read_when_the_call_ends() -> None:
    """Each attempt keeps its response (or the error type it raised); its status and headers are
    read at the end: the error of each retried attempt, and the headers of the last attempt that
    got an answer (a connection error after a 429 leaves the 429's headroom)."""
    from types import SimpleNamespace

    import httpx

    from llm_otel.genai._attempts import attempt_error, last_headers, retried

    answered = httpx.Response(429, headers={"x-ratelimit-remaining-requests": "3"})
    attempts = [(0.0, 1.0, answered), (1.5, 2.0, "ConnectError")]
    assert last_headers(attempts)["x-ratelimit-remaining-requests"] == "3"
    assert last_headers([(0.0, 1.0, "ConnectError")]) is None
    assert retried(attempts) == [(1, "429", 0.5)]
    assert retried([(0.0, 1.0, "ConnectError"), (0.5, 2.0, answered)]) == [(1, "ConnectError", 0.0)]
    assert attempt_error(httpx.Response(200)) is None
    assert attempt_error(SimpleNamespace(status=503)) == "503"  # aiohttp's ClientResponse
    assert attempt_error(SimpleNamespace(status_code="503")) is None  # not a status: no error
    assert retried([(0.0, 1.0, SimpleNamespace()), (1.0, 1.0, answered)]) == [(1, "_OTHER", 0.0)]
