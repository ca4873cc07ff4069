"""Anthropic's Message Batches (issue 22, part 2), with the real anthropic client against the test
server: a span per lifecycle call, and the results counted as the app iterates them (once per
batch), with tokens and cost at the batch rate; what the app iterates is unchanged."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

anthropic = pytest.importorskip("anthropic")  # the anthropic extra; installed by scripts/test.sh

from llm_otel.cost import prices  # noqa: E402
from llm_otel.genai import ContentPolicy  # noqa: E402
from llm_otel.instrumentation.anthropic import AnthropicInstrumentor  # noqa: E402
from tests.conftest import Telemetry, telemetry_with  # noqa: E402
from tests.servers.anthropic_server import AnthropicTestServer  # noqa: E402

MODEL = "claude-3-5-haiku"


@pytest.fixture(scope="module")
def server() -> Iterator[AnthropicTestServer]:
    srv = AnthropicTestServer().start()
    yield srv
    srv.stop()


@pytest.fixture
def telemetry(content_policy: ContentPolicy) -> Iterator[Telemetry]:
    yield from telemetry_with(AnthropicInstrumentor, content_policy)


@pytest.fixture
def client(server: AnthropicTestServer, telemetry: Telemetry) -> Iterator[Any]:
    # The SDK's own OpenTelemetry span (anthropic 2.x) goes to the test's provider: batch calls
    # must still get exactly one span each, ours.
    options: dict[str, Any] = {}
    if hasattr(anthropic, "_tracing"):
        options["open_telemetry"] = {"tracer_provider": telemetry.tracer_provider}
    with anthropic.Anthropic(base_url=server.base_url, api_key="k", max_retries=0,
                             **options) as c:  # fmt: skip
        yield c


def requests(*custom_ids: str) -> list[dict[str, Any]]:
    return [{"custom_id": custom_id,
             "params": {"model": MODEL, "max_tokens": 100,
                        "messages": [{"role": "user", "content": f"Summarise {custom_id}"}]}}
            for custom_id in custom_ids]  # fmt: skip


def names(telemetry: Telemetry) -> list[str]:
    return [span.name for span in telemetry.spans()]


def points(telemetry: Telemetry, name: str, *keys: str) -> dict[tuple[Any, ...], float]:
    return {tuple(p.attributes.get(k) for k in keys): p.value for p in telemetry.points(name)}


def test_a_message_batch_from_create_to_results(client: Any, telemetry: Telemetry) -> None:
    batch = client.messages.batches.create(
        requests=requests("t-1", "t-2", "t-3", "errored-4", "expired-5")
    )
    assert batch.processing_status == "in_progress"
    ended = client.messages.batches.retrieve(batch.id)
    assert ended.processing_status == "ended"
    results = list(client.messages.batches.results(batch.id))
    assert [r.custom_id for r in results] == ["t-1", "t-2", "t-3", "errored-4", "expired-5"]
    assert results[0].result.message.content[0].text == "Hello from the test server"
    again = list(client.messages.batches.results(batch.id))  # fetched again: not counted again
    assert len(again) == 5

    spans = {s.name: [x for x in telemetry.spans() if x.name == s.name] for s in telemetry.spans()}
    # results() polls the batch first (its own retrieve, a child of the results span).
    assert sorted(names(telemetry)) == ["batch create"] + ["batch results"] * 2 + [
        "batch retrieve"] * 3  # fmt: skip
    (create,) = spans["batch create"]
    assert create.attributes["gen_ai.provider.name"] == "anthropic"
    assert create.attributes["llm_otel.batch.id"] == batch.id
    assert create.attributes["llm_otel.batch.status"] == "in_progress"
    assert create.attributes["llm_otel.batch.requests.total"] == 5
    retrieve = spans["batch retrieve"][0]
    assert retrieve.attributes["llm_otel.batch.status"] == "ended"
    assert (retrieve.attributes["llm_otel.batch.requests.completed"],
            retrieve.attributes["llm_otel.batch.requests.failed"]) == (3, 2)  # fmt: skip
    first, second = spans["batch results"]
    assert [first.attributes["llm_otel.batch.results.counted"],
            second.attributes["llm_otel.batch.results.counted"]] == [True, False]  # fmt: skip
    nested = [s for s in spans["batch retrieve"] if s.parent is not None]
    assert {s.parent.span_id for s in nested} == {first.context.span_id, second.context.span_id}

    outcomes = points(telemetry, "llm_otel.batch.requests", "gen_ai.request.model",
                      "llm_otel.batch.request.outcome", "error.type")  # fmt: skip
    assert outcomes == {(f"{MODEL}-20250101", "succeeded", None): 3,
                        (None, "errored", "invalid_request_error"): 1,
                        (None, "errored", "expired"): 1}  # fmt: skip
    tokens = points(telemetry, "llm_otel.batch.tokens", "gen_ai.token.type")
    assert tokens == {("input",): 36, ("output",): 15}
    price = prices().lookup("anthropic", MODEL)  # type: ignore[union-attr]
    assert price is not None
    (cost,) = telemetry.points("llm_otel.batch.cost")
    assert cost.value == pytest.approx(3 * price.cost(12, 5) * 0.5)
    assert not telemetry.points("gen_ai.client.token.usage")  # not client operations


def test_results_are_counted_as_the_app_takes_them(client: Any, telemetry: Telemetry) -> None:
    batch = client.messages.batches.create(requests=requests("a", "b", "c"))
    client.messages.batches.retrieve(batch.id)
    stream = client.messages.batches.results(batch.id)
    from anthropic._decoders.jsonl import JSONLDecoder

    assert isinstance(stream, JSONLDecoder)  # the proxy passes for what it wraps
    assert next(stream).custom_id == "a"
    assert sum(points(telemetry, "llm_otel.batch.requests", "llm_otel.batch.request.outcome")
               .values()) == 1  # fmt: skip
    assert [r.custom_id for r in stream] == ["b", "c"]
    assert points(telemetry, "llm_otel.batch.requests", "llm_otel.batch.request.outcome") == {
        ("succeeded",): 3}  # fmt: skip


def test_cancel_and_an_unknown_batch(client: Any, telemetry: Telemetry) -> None:
    batch = client.messages.batches.create(requests=requests("x"))
    assert client.messages.batches.cancel(batch.id).processing_status == "canceling"
    with pytest.raises(anthropic.NotFoundError):
        client.messages.batches.retrieve("msgbatch_missing")
    cancel = next(s for s in telemetry.spans() if s.name == "batch cancel")
    assert cancel.attributes["llm_otel.batch.status"] == "canceling"
    failed = next(s for s in telemetry.spans() if s.name == "batch retrieve")
    assert failed.attributes["error.type"] == "404" and not failed.status.is_ok


def test_async(server: AnthropicTestServer, telemetry: Telemetry) -> None:
    async def main() -> list[str]:
        async with anthropic.AsyncAnthropic(base_url=server.base_url, api_key="k",
                                            max_retries=0) as client:  # fmt: skip
            batch = await client.messages.batches.create(requests=requests("a", "errored-b"))
            await client.messages.batches.retrieve(batch.id)
            return [r.custom_id async for r in await client.messages.batches.results(batch.id)]

    assert asyncio.run(main()) == ["a", "errored-b"]
    assert points(telemetry, "llm_otel.batch.requests", "llm_otel.batch.request.outcome") == {
        ("succeeded",): 1, ("errored",): 1}  # fmt: skip


def test_the_beta_namespace_and_delete(client: Any, telemetry: Telemetry) -> None:
    """``client.beta.messages.batches`` (the same API with beta headers) is recorded the same
    way, and ``delete`` of an ended batch is a lifecycle call too (in both namespaces)."""
    beta = client.beta.messages.batches
    batch = beta.create(requests=requests("b-1", "errored-2"))
    beta.retrieve(batch.id)
    assert [r.custom_id for r in beta.results(batch.id)] == ["b-1", "errored-2"]
    deleted = beta.delete(batch.id)
    assert deleted.id == batch.id and deleted.type == "message_batch_deleted"
    other = client.messages.batches.create(requests=requests("c"))
    client.messages.batches.retrieve(other.id)
    client.messages.batches.delete(other.id)
    with pytest.raises(anthropic.NotFoundError):
        client.messages.batches.delete(other.id)

    assert sorted(names(telemetry)) == ["batch create"] * 2 + ["batch delete"] * 3 + [
        "batch results"] + ["batch retrieve"] * 3  # fmt: skip
    deletes = [s for s in telemetry.spans() if s.name == "batch delete"]
    assert [s.attributes["llm_otel.batch.id"] for s in deletes] == [batch.id, other.id, other.id]
    assert [s.status.is_ok for s in deletes] == [True, True, False]
    assert deletes[2].attributes["error.type"] == "404"
    assert "llm_otel.batch.status" not in deletes[0].attributes
    assert points(telemetry, "llm_otel.batch.requests", "llm_otel.batch.request.outcome") == {
        ("succeeded",): 1, ("errored",): 1}  # fmt: skip
