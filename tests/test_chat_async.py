"""Chat Completions with AsyncOpenAI: the same span and metrics; errors and cancellation."""

from __future__ import annotations

import asyncio

import openai
import pytest
from opentelemetry.trace import StatusCode

from tests.conftest import USER, Telemetry


async def test_async_chat_span(aclient: openai.AsyncOpenAI, telemetry: Telemetry) -> None:
    result = await aclient.chat.completions.create(model="gpt-test", messages=USER, seed=3)
    assert result.choices[0].message.content == "Hello from the test server"
    span = telemetry.only_span()
    assert span.name == "chat gpt-test"
    assert span.attributes["gen_ai.request.seed"] == 3
    assert span.attributes["gen_ai.usage.input_tokens"] == 12
    assert len(telemetry.points("gen_ai.client.operation.duration")) == 1


async def test_create_stays_lazy(aclient: openai.AsyncOpenAI, telemetry: Telemetry) -> None:
    pending = aclient.chat.completions.create(model="gpt-test", messages=USER)
    assert asyncio.iscoroutine(pending)
    assert telemetry.spans() == []  # nothing starts until the coroutine is awaited
    await pending
    assert len(telemetry.spans()) == 1


async def test_async_error(aclient: openai.AsyncOpenAI, telemetry: Telemetry) -> None:
    with pytest.raises(openai.RateLimitError):
        await aclient.chat.completions.create(model="error-429", messages=USER)
    span = telemetry.only_span()
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes["error.type"] == "429"


async def test_cancelled_call_ends_span(aclient: openai.AsyncOpenAI, telemetry: Telemetry) -> None:
    task = asyncio.ensure_future(
        aclient.chat.completions.create(model="slow-first", messages=USER, stream=True)
    )
    await asyncio.sleep(0)  # let the request start
    stream = await task
    consumer = asyncio.ensure_future(stream.__anext__())
    await asyncio.sleep(0.05)  # the server holds the first chunk back
    consumer.cancel()
    with pytest.raises(asyncio.CancelledError):
        await consumer
    span = telemetry.only_span()
    assert span.attributes["error.type"] == "CancelledError"
    assert span.end_time is not None


async def test_concurrent_calls_get_separate_spans(
    aclient: openai.AsyncOpenAI, telemetry: Telemetry
) -> None:
    await asyncio.gather(
        *(aclient.chat.completions.create(model=f"m{i}", messages=USER) for i in range(5))
    )
    spans = telemetry.spans()
    assert sorted(s.name for s in spans) == [f"chat m{i}" for i in range(5)]
    assert len({s.context.trace_id for s in spans}) == 5
