"""Streamed chat: every way a stream can end ends the span exactly once, with chunk timings."""

from __future__ import annotations

import gc
import inspect
import threading
from collections.abc import Iterator
from typing import Any

import openai
import pytest
from opentelemetry.trace import StatusCode

from llm_otel.genai import LLMResponse
from tests.conftest import USER, Telemetry, chat_stream_helper
from tests.servers.openai_server import CHUNKS, SLOW_FIRST_DELAY


def _stream(client: openai.OpenAI, model: str = "gpt-test", **kwargs: object) -> object:
    return client.chat.completions.create(model=model, messages=USER, stream=True, **kwargs)


def test_exhausted_stream(client: openai.OpenAI, telemetry: Telemetry) -> None:
    stream = _stream(client, stream_options={"include_usage": True})
    assert isinstance(stream, openai.Stream)  # the proxy keeps isinstance checks working
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text == "Hello from the test server"
    span = telemetry.only_span()
    assert span.attributes["gen_ai.request.stream"] is True
    assert span.attributes["gen_ai.response.id"] == "chatcmpl-stream"
    assert span.attributes["gen_ai.response.model"] == "gpt-test-2024"
    assert span.attributes["gen_ai.response.finish_reasons"] == ("stop",)
    assert span.attributes["gen_ai.usage.input_tokens"] == 12
    assert span.attributes["gen_ai.usage.output_tokens"] == 5
    assert span.attributes["gen_ai.response.time_to_first_chunk"] > 0
    chunks = 1 + len(CHUNKS) + 1 + 1  # role chunk, text chunks, finish chunk, usage chunk
    (ttfc,) = telemetry.points("gen_ai.client.operation.time_to_first_chunk")
    assert ttfc.count == 1
    (per_chunk,) = telemetry.points("gen_ai.client.operation.time_per_output_chunk")
    assert per_chunk.count == chunks - 1
    assert telemetry.metric("gen_ai.client.operation.time_per_output_chunk").unit == "s"
    usage = {
        p.attributes["gen_ai.token.type"]: p.sum
        for p in telemetry.points("gen_ai.client.token.usage")
    }
    assert usage == {"input": 12, "output": 5}


def test_list_of_a_stream(client: openai.OpenAI, telemetry: Telemetry) -> None:
    """list(stream) asks the proxy for a length hint first: a stream without a length must not
    raise there (it did: AttributeError from the proxy's absent __len__)."""
    stream = client.chat.completions.create(
        model="gpt-test", messages=USER, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == (
        "Hello from the test server")  # fmt: skip
    assert telemetry.only_span().attributes["gen_ai.usage.output_tokens"] == 5


def test_stream_without_usage_records_no_token_metric(
    client: openai.OpenAI, telemetry: Telemetry
) -> None:
    for _ in _stream(client):
        pass
    span = telemetry.only_span()
    assert "gen_ai.usage.input_tokens" not in span.attributes
    assert telemetry.points("gen_ai.client.token.usage") == []


def test_slow_first_chunk_is_measured(client: openai.OpenAI, telemetry: Telemetry) -> None:
    for _ in _stream(client, model="slow-first"):
        pass
    span = telemetry.only_span()
    assert span.attributes["gen_ai.response.time_to_first_chunk"] >= SLOW_FIRST_DELAY
    (ttfc,) = telemetry.points("gen_ai.client.operation.time_to_first_chunk")
    assert ttfc.sum >= SLOW_FIRST_DELAY


def test_close_mid_stream(client: openai.OpenAI, telemetry: Telemetry) -> None:
    stream = _stream(client, model="long-stream")
    next(iter(stream))
    assert telemetry.spans() == []
    stream.close()
    span = telemetry.only_span()
    assert span.status.status_code is StatusCode.UNSET
    assert "gen_ai.response.finish_reasons" not in span.attributes
    stream.close()  # closing again is harmless
    assert len(telemetry.spans()) == 1


def test_context_manager_exit_early(client: openai.OpenAI, telemetry: Telemetry) -> None:
    with _stream(client, model="long-stream") as stream:
        next(iter(stream))
    assert len(telemetry.spans()) == 1


def test_exception_in_user_code_inside_with(client: openai.OpenAI, telemetry: Telemetry) -> None:
    with pytest.raises(KeyError), _stream(client) as stream:
        for _ in stream:
            raise KeyError("user bug")
    span = telemetry.only_span()
    assert span.status.status_code is StatusCode.UNSET  # the LLM call itself did not fail


def test_error_mid_stream(client: openai.OpenAI, telemetry: Telemetry) -> None:
    stream = _stream(client, model="mid-error")
    with pytest.raises(openai.APIError, match="stream broke"):
        for _ in stream:
            pass
    span = telemetry.only_span()
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes["error.type"] == "APIError"
    assert span.attributes["gen_ai.response.id"] == "chatcmpl-stream"


def test_abandoned_stream_is_ended_by_gc(client: openai.OpenAI, telemetry: Telemetry) -> None:
    stream = _stream(client, model="long-stream")
    next(iter(stream))
    del stream
    gc.collect()
    assert len(telemetry.spans()) == 1


def test_stream_helper_early_exit(client: openai.OpenAI, telemetry: Telemetry) -> None:
    # The helper closes the raw HTTP response, not the stream object.
    with chat_stream_helper(client)(model="long-stream", messages=USER) as stream:
        for event in stream:
            if event.type == "content.delta":
                break
    assert len(telemetry.spans()) == 1


def test_stream_helper_complete(client: openai.OpenAI, telemetry: Telemetry) -> None:
    with chat_stream_helper(client)(model="gpt-test", messages=USER) as stream:
        final = stream.get_final_completion()
    assert final.choices[0].message.content == "Hello from the test server"
    span = telemetry.only_span()
    assert span.attributes["gen_ai.response.finish_reasons"] == ("stop",)


def test_tool_call_stream_and_n(client: openai.OpenAI, telemetry: Telemetry) -> None:
    for _ in _stream(client, model="tool-model"):
        pass
    for _ in _stream(client, n=2):
        pass
    tool_span, n_span = telemetry.spans()
    assert tool_span.attributes["gen_ai.response.finish_reasons"] == ("tool_calls",)
    assert n_span.attributes["gen_ai.request.choice.count"] == 2
    assert n_span.attributes["gen_ai.response.finish_reasons"] == ("stop", "stop")


def test_streams_consumed_from_threads(client: openai.OpenAI, telemetry: Telemetry) -> None:
    def consume(close_early: bool) -> None:
        stream = _stream(client, model="long-stream")
        for i, _ in enumerate(stream):
            if close_early and i == 3:
                stream.close()
                break

    threads = [threading.Thread(target=consume, args=(i % 2 == 0,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    spans = telemetry.spans()
    assert len(spans) == 8
    assert all(s.end_time is not None for s in spans)


# --- async streams ---------------------------------------------------------------------------


async def _astream(aclient: openai.AsyncOpenAI, model: str = "gpt-test", **kw: object) -> object:
    return await aclient.chat.completions.create(model=model, messages=USER, stream=True, **kw)


async def test_async_exhausted(aclient: openai.AsyncOpenAI, telemetry: Telemetry) -> None:
    stream = await _astream(aclient, stream_options={"include_usage": True})
    assert isinstance(stream, openai.AsyncStream)
    text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    assert text == "Hello from the test server"
    span = telemetry.only_span()
    assert span.attributes["gen_ai.usage.output_tokens"] == 5
    assert len(telemetry.points("gen_ai.client.operation.time_to_first_chunk")) == 1


async def test_async_close_mid_stream(aclient: openai.AsyncOpenAI, telemetry: Telemetry) -> None:
    stream = await _astream(aclient, model="long-stream")
    await stream.__anext__()
    await stream.close()
    assert len(telemetry.spans()) == 1


async def test_async_context_manager(aclient: openai.AsyncOpenAI, telemetry: Telemetry) -> None:
    async with await _astream(aclient, model="long-stream") as stream:
        await stream.__anext__()
    assert len(telemetry.spans()) == 1


async def test_async_error_mid_stream(aclient: openai.AsyncOpenAI, telemetry: Telemetry) -> None:
    stream = await _astream(aclient, model="mid-error")
    with pytest.raises(openai.APIError):
        async for _ in stream:
            pass
    assert telemetry.only_span().attributes["error.type"] == "APIError"


async def test_async_stream_helper(aclient: openai.AsyncOpenAI, telemetry: Telemetry) -> None:
    async with chat_stream_helper(aclient)(model="long-stream", messages=USER) as stream:
        async for event in stream:
            if event.type == "content.delta":
                break
    assert len(telemetry.spans()) == 1


async def test_async_abandoned_stream_gc(aclient: openai.AsyncOpenAI, telemetry: Telemetry) -> None:
    stream = await _astream(aclient, model="long-stream")
    await stream.__anext__()
    del stream
    gc.collect()
    assert len(telemetry.spans()) == 1


class _Accumulator:
    error_type = None

    def __init__(self) -> None:
        self.items: list[object] = []

    def add(self, item: object) -> None:
        self.items.append(item)

    def response(self) -> LLMResponse:
        return LLMResponse(response_id=f"{len(self.items)} items")


class _SelfIterating:
    """A stream whose ``__iter__`` returns itself (LiteLLM's)."""

    def __init__(self, items: list[int]) -> None:
        self._items = iter(items)

    def __iter__(self) -> _SelfIterating:
        return self

    def __next__(self) -> int:
        return next(self._items)


class _GeneratorIterating(_SelfIterating):
    """A stream whose ``__iter__`` is a generator over its chunks (the Stainless SDKs')."""

    iters = 0

    def __iter__(self) -> Iterator[int]:  # type: ignore[override]
        type(self).iters += 1
        return (item for item in self._items)


def _proxied(telemetry: Telemetry, stream: object, proxy_class: type | None = None) -> Any:
    """(a proxy of ``proxy_class``, SyncStreamProxy by default, over ``stream``; its accumulator)"""
    from llm_otel.genai import GenAITelemetry, Invocation, LLMRequest, SyncStreamProxy
    from llm_otel.genai._streams import make_proxy

    invocation = Invocation(
        GenAITelemetry(**telemetry.providers),
        LLMRequest(operation="chat", provider="test", model="m", stream=True),
    )
    accumulator = _Accumulator()
    proxy = make_proxy(proxy_class or SyncStreamProxy, stream, invocation, accumulator)
    return proxy, accumulator


@pytest.mark.parametrize("kind", [_SelfIterating, _GeneratorIterating])
def test_a_loop_over_the_proxy_goes_through_the_streams_own_iter(
    kind: type[_SelfIterating], telemetry: Telemetry
) -> None:
    """``iter(proxy)`` is the proxy exactly when ``iter(stream)`` is the stream; otherwise the
    loop runs over the stream's own iterator (a generator of ours around it), as it would
    uninstrumented. Either way every chunk is seen, timed and folded once, and the call ends
    once."""
    _GeneratorIterating.iters = 0
    proxy, accumulator = _proxied(telemetry, kind(list(range(5))))
    iterator = iter(proxy)
    assert (iterator is proxy) == (kind is _SelfIterating)
    assert inspect.isgenerator(iterator) == (kind is _GeneratorIterating)
    assert _GeneratorIterating.iters == (kind is _GeneratorIterating)
    assert list(iterator) == [0, 1, 2, 3, 4]
    assert accumulator.items == [0, 1, 2, 3, 4]
    span = telemetry.only_span()
    assert span.attributes["gen_ai.response.id"] == "5 items"
    assert "error.type" not in span.attributes
    (per_chunk,) = telemetry.points("gen_ai.client.operation.time_per_output_chunk")
    assert per_chunk.count == 4
    assert list(proxy) == []  # exhausted: nothing more, and the call is not ended again
    assert len(telemetry.spans()) == 1


def test_next_and_a_loop_share_one_iteration(client: openai.OpenAI, telemetry: Telemetry) -> None:
    stream = _stream(client, stream_options={"include_usage": True})
    iterator = iter(stream)  # the SDK's generator, wrapped; not started yet
    assert iterator is not stream
    chunks = [next(stream), next(stream), *iterator]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Hello from the test server"
    span = telemetry.only_span()
    assert span.attributes["gen_ai.usage.output_tokens"] == 5
    assert span.attributes["gen_ai.response.finish_reasons"] == ("stop",)
    (per_chunk,) = telemetry.points("gen_ai.client.operation.time_per_output_chunk")
    assert per_chunk.count == len(chunks) - 1 == len(CHUNKS) + 2


def test_an_empty_stream_looped_over_ends_the_call(telemetry: Telemetry) -> None:
    proxy, _ = _proxied(telemetry, _GeneratorIterating([]))
    assert list(proxy) == []  # no RuntimeError from a StopIteration inside our generator
    span = telemetry.only_span()
    assert span.attributes["gen_ai.response.id"] == "0 items"
    assert telemetry.points("gen_ai.client.operation.time_to_first_chunk") == []


def _ended_once_as_abandoned(
    telemetry: Telemetry, accumulator: _Accumulator, items: list[object]
) -> None:
    """Once the app has let go of the proxy and its generator: one span, no error."""
    gc.collect()
    span = telemetry.only_span()
    assert span.status.status_code is not StatusCode.ERROR
    assert "error.type" not in span.attributes
    assert accumulator.items == items


@pytest.mark.parametrize("how", ["close", "throw"])
def test_what_the_app_throws_into_the_loop_is_not_the_streams_failure(
    how: str, telemetry: Telemetry
) -> None:
    """A loop over the proxy runs a generator of ours around the stream's iterator, with one
    try around the loop and its yield. A failure of the stream ends the call with its error
    (test_error_mid_stream); what the app throws in at a chunk it holds (GeneratorExit from
    close(), or its own exception through throw()) passes through, and nothing is recorded
    then: the call ends once, with no error, when the proxy goes, as an abandoned stream's."""
    proxy, accumulator = _proxied(telemetry, _GeneratorIterating(list(range(5))))
    iterator = iter(proxy)
    assert [next(iterator), next(iterator), next(iterator)] == [0, 1, 2]
    if how == "close":
        iterator.close()
    else:
        with pytest.raises(ValueError, match="the app's own"):
            iterator.throw(ValueError("the app's own"))
    assert telemetry.spans() == []
    del proxy, iterator
    _ended_once_as_abandoned(telemetry, accumulator, [0, 1, 2])


def test_a_stream_that_cannot_be_iterated_ends_the_call(telemetry: Telemetry) -> None:
    class Broken(_SelfIterating):
        def __iter__(self) -> Any:
            raise OSError("connection reset")

    proxy, _ = _proxied(telemetry, Broken([1]))
    with pytest.raises(OSError, match="connection reset"):
        iter(proxy)
    span = telemetry.only_span()
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes["error.type"] == "OSError"


def test_an_iterator_without_iter_is_still_iterable_through_the_proxy(
    telemetry: Telemetry,
) -> None:
    class NextOnly:
        def __init__(self) -> None:
            self._items = iter([1, 2])

        def __next__(self) -> int:
            return next(self._items)

    proxy, _ = _proxied(telemetry, NextOnly())
    assert iter(proxy) is proxy
    assert list(proxy) == [1, 2]
    assert telemetry.only_span().attributes["gen_ai.response.id"] == "2 items"


class _AsyncSelfIterating:
    def __init__(self, items: list[int]) -> None:
        self._items = iter(items)

    def __aiter__(self) -> _AsyncSelfIterating:
        return self

    async def __anext__(self) -> int:
        try:
            return next(self._items)
        except StopIteration:
            raise StopAsyncIteration from None


class _AsyncGeneratorIterating(_AsyncSelfIterating):
    def __aiter__(self) -> Any:
        return self._chunks()

    async def _chunks(self) -> Any:
        for item in self._items:
            yield item


@pytest.mark.parametrize("kind", [_AsyncSelfIterating, _AsyncGeneratorIterating])
async def test_an_async_loop_over_the_proxy_goes_through_the_streams_own_aiter(
    kind: type[_AsyncSelfIterating], telemetry: Telemetry
) -> None:
    from llm_otel.genai import AsyncStreamProxy, GenAITelemetry, Invocation, LLMRequest
    from llm_otel.genai._streams import make_proxy

    for items in ([0, 1, 2], []):
        invocation = Invocation(
            GenAITelemetry(**telemetry.providers),
            LLMRequest(operation="chat", provider="test", model="m", stream=True),
        )
        accumulator = _Accumulator()
        proxy = make_proxy(AsyncStreamProxy, kind(items), invocation, accumulator)
        iterator = proxy.__aiter__()
        assert (iterator is proxy) == (kind is _AsyncSelfIterating)
        assert inspect.isasyncgen(iterator) == (kind is _AsyncGeneratorIterating)
        assert [item async for item in iterator] == items
        assert accumulator.items == items
        assert invocation.done
    spans = telemetry.spans()
    assert [s.attributes["gen_ai.response.id"] for s in spans] == ["3 items", "0 items"]
    (per_chunk,) = telemetry.points("gen_ai.client.operation.time_per_output_chunk")
    assert per_chunk.count == 2


class _AsyncFailingAfterTwo(_AsyncGeneratorIterating):
    async def _chunks(self) -> Any:
        yield 0
        yield 1
        raise OSError("connection reset")


@pytest.mark.parametrize("how", ["aclose", "athrow", "the stream fails"])
async def test_what_the_app_throws_into_the_async_loop_is_not_the_streams_failure(
    how: str, telemetry: Telemetry
) -> None:
    """As the sync loop: a failure of the stream ends the call with its error; what the app
    throws in at a chunk it holds (aclose(), athrow()) passes through and records nothing, and
    the call ends once, with no error, when the proxy goes."""
    from llm_otel.genai import AsyncStreamProxy

    stream = _AsyncFailingAfterTwo if how == "the stream fails" else _AsyncGeneratorIterating
    proxy, accumulator = _proxied(telemetry, stream([0, 1, 2, 3]), AsyncStreamProxy)
    iterator = proxy.__aiter__()
    assert [await iterator.__anext__(), await iterator.__anext__()] == [0, 1]
    if how == "aclose":
        await iterator.aclose()
    elif how == "athrow":
        with pytest.raises(ValueError, match="the app's own"):
            await iterator.athrow(ValueError("the app's own"))
    else:
        with pytest.raises(OSError, match="connection reset"):
            await iterator.__anext__()
        span = telemetry.only_span()
        assert span.attributes["error.type"] == "OSError"
        assert accumulator.items == [0, 1]
        return
    assert telemetry.spans() == []
    del proxy, iterator
    _ended_once_as_abandoned(telemetry, accumulator, [0, 1])


async def test_async_anext_and_a_loop_share_one_iteration(
    aclient: openai.AsyncOpenAI, telemetry: Telemetry
) -> None:
    stream: Any = await _astream(aclient, stream_options={"include_usage": True})
    chunks = [await stream.__anext__()]
    chunks += [chunk async for chunk in stream]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Hello from the test server"
    assert telemetry.only_span().attributes["gen_ai.usage.output_tokens"] == 5
    (per_chunk,) = telemetry.points("gen_ai.client.operation.time_per_output_chunk")
    assert per_chunk.count == len(chunks) - 1
