"""The OpenAI Batch API (issue 22, part 2), with the real openai client against the test server's
batch and file endpoints: a span per lifecycle call, the results counted once per file by
outcome with their tokens and cost at the batch rate, and nothing else changed."""

from __future__ import annotations

import asyncio
import io
import json
from typing import Any

import openai
import pytest

from llm_otel.cost import prices
from llm_otel.instrumentation.openai import OpenAIInstrumentor
from tests.conftest import Telemetry
from tests.servers.openai_server import USAGE, OpenAITestServer


def requests_file(models: list[str], failing: int = 0) -> io.BytesIO:
    """One chat request per model; the last ``failing`` of them fail with 429 (the server's
    rule: a custom_id starting with error-429)."""
    lines = [
        {"custom_id": f"error-429-{i}" if i >= len(models) - failing else f"ticket-{i}",
         "method": "POST", "url": "/v1/chat/completions",
         "body": {"model": model, "messages": [{"role": "user", "content": f"Summarise {i}"}]}}
        for i, model in enumerate(models)
    ]  # fmt: skip
    data = io.BytesIO("".join(json.dumps(line) + "\n" for line in lines).encode())
    data.name = "requests.jsonl"
    return data


def spans(telemetry: Telemetry) -> dict[str, list[Any]]:
    found: dict[str, list[Any]] = {}
    for span in telemetry.spans():
        found.setdefault(span.name, []).append(span)
    return found


def points(telemetry: Telemetry, name: str, *keys: str) -> dict[tuple[Any, ...], float]:
    return {tuple(p.attributes.get(k) for k in keys): p.value for p in telemetry.points(name)}


def test_a_batch_from_upload_to_results(client: openai.OpenAI, telemetry: Telemetry,
                                        server: OpenAITestServer) -> None:  # fmt: skip
    upload = client.files.create(file=requests_file(["gpt-4o-mini"] * 4, failing=1),
                                 purpose="batch")  # fmt: skip
    batch = client.batches.create(input_file_id=upload.id, endpoint="/v1/chat/completions",
                                  completion_window="24h")  # fmt: skip
    assert batch.status == "validating"
    done = client.batches.retrieve(batch.id)
    assert done.status == "completed" and done.output_file_id and done.error_file_id
    output = client.files.content(done.output_file_id)
    assert len(output.text.splitlines()) == 3  # what the app reads is untouched
    client.files.content(done.error_file_id)
    client.files.content(done.output_file_id)  # fetched again: a span, not counted again

    found = spans(telemetry)
    assert set(found) == {"batch create", "batch retrieve", "batch results"}  # no span for
    # the upload, and no GenAI span: no model was called from here
    (create,) = found["batch create"]
    assert create.attributes["llm_otel.batch.operation"] == "create"
    assert create.attributes["llm_otel.batch.id"] == batch.id
    assert create.attributes["llm_otel.batch.status"] == "validating"
    assert create.attributes["llm_otel.batch.endpoint"] == "/v1/chat/completions"
    assert create.attributes["llm_otel.batch.requests.total"] == 4
    assert create.attributes["gen_ai.provider.name"] == "openai"
    assert create.attributes["server.address"] == "127.0.0.1"
    (retrieve,) = found["batch retrieve"]
    assert retrieve.attributes["llm_otel.batch.status"] == "completed"
    assert (retrieve.attributes["llm_otel.batch.requests.completed"],
            retrieve.attributes["llm_otel.batch.requests.failed"]) == (3, 1)  # fmt: skip
    first, errors, again = found["batch results"]
    assert all(s.attributes["llm_otel.batch.id"] == batch.id for s in (first, errors, again))
    assert [s.attributes["llm_otel.batch.results.counted"] for s in (first, errors, again)] == [
        True, True, False]  # fmt: skip
    assert first.attributes["llm_otel.batch.requests.completed"] == 3

    outcomes = points(telemetry, "llm_otel.batch.requests", "gen_ai.request.model",
                      "llm_otel.batch.request.outcome", "error.type")  # fmt: skip
    assert outcomes == {("gpt-4o-mini", "succeeded", None): 3, ("gpt-4o-mini", "errored", "429"): 1}
    tokens = points(telemetry, "llm_otel.batch.tokens", "gen_ai.token.type")
    assert tokens == {("input",): 3 * USAGE["prompt_tokens"],
                      ("output",): 3 * USAGE["completion_tokens"]}  # fmt: skip
    price = prices().lookup("openai", "gpt-4o-mini")  # type: ignore[union-attr]
    assert price is not None
    list_price = 3 * price.cost(12, 5, 4)
    (cost,) = telemetry.points("llm_otel.batch.cost")
    assert cost.value == pytest.approx(list_price * 0.5)  # the Batch API's 50 % discount
    assert cost.attributes["gen_ai.request.model"] == "gpt-4o-mini"
    # Batch requests are not client operations: the live services' GenAI metrics are untouched.
    assert not telemetry.points("gen_ai.client.token.usage")
    assert not telemetry.points("gen_ai.client.operation.duration")


def test_cancel_and_a_failed_lifecycle_call(client: openai.OpenAI, telemetry: Telemetry) -> None:
    upload = client.files.create(file=requests_file(["gpt-4o-mini"]), purpose="batch")
    batch = client.batches.create(input_file_id=upload.id, endpoint="/v1/chat/completions",
                                  completion_window="24h")  # fmt: skip
    assert client.batches.cancel(batch.id).status == "cancelling"
    with pytest.raises(openai.NotFoundError):
        client.batches.retrieve("batch-missing")
    found = spans(telemetry)
    (cancel,) = found["batch cancel"]
    assert cancel.attributes["llm_otel.batch.id"] == batch.id
    assert cancel.attributes["llm_otel.batch.status"] == "cancelling"
    (failed,) = found["batch retrieve"]
    assert failed.attributes["error.type"] == "404" and not failed.status.is_ok
    assert failed.attributes["llm_otel.batch.id"] == "batch-missing"
    assert failed.end_time is not None


def test_files_that_are_not_a_batchs_results_are_left_alone(
    client: openai.OpenAI, telemetry: Telemetry
) -> None:
    upload = client.files.create(file=requests_file(["gpt-4o-mini"]), purpose="batch")
    assert b"Summarise 0" in client.files.content(upload.id).content
    assert telemetry.spans() == []


def test_a_streamed_download_is_not_read(client: openai.OpenAI, telemetry: Telemetry) -> None:
    upload = client.files.create(file=requests_file(["gpt-4o-mini"] * 2), purpose="batch")
    batch = client.batches.create(input_file_id=upload.id, endpoint="/v1/chat/completions",
                                  completion_window="24h")  # fmt: skip
    done = client.batches.retrieve(batch.id)
    with client.files.with_streaming_response.content(done.output_file_id) as response:
        lines = list(response.iter_lines())
    assert len(lines) == 2
    assert not telemetry.points("llm_otel.batch.requests")  # the app's stream was not consumed


def test_async(server: OpenAITestServer, telemetry: Telemetry) -> None:
    async def main() -> None:
        async with openai.AsyncOpenAI(base_url=server.base_url, api_key="k",
                                      max_retries=0) as client:  # fmt: skip
            upload = await client.files.create(file=requests_file(["gpt-4o"] * 2),
                                               purpose="batch")  # fmt: skip
            batch = await client.batches.create(input_file_id=upload.id,
                                                endpoint="/v1/chat/completions",
                                                completion_window="24h")  # fmt: skip
            done = await client.batches.retrieve(batch.id)
            await client.files.content(done.output_file_id)

    asyncio.run(main())
    assert set(spans(telemetry)) == {"batch create", "batch retrieve", "batch results"}
    outcomes = points(telemetry, "llm_otel.batch.requests", "gen_ai.request.model",
                      "llm_otel.batch.request.outcome")  # fmt: skip
    assert outcomes == {("gpt-4o", "succeeded"): 2}


def test_uninstrumented(client: openai.OpenAI, telemetry: Telemetry) -> None:
    OpenAIInstrumentor().uninstrument()
    upload = client.files.create(file=requests_file(["gpt-4o-mini"]), purpose="batch")
    batch = client.batches.create(input_file_id=upload.id, endpoint="/v1/chat/completions",
                                  completion_window="24h")  # fmt: skip
    client.files.content(client.batches.retrieve(batch.id).output_file_id)
    assert telemetry.spans() == []


def test_result_lines_it_cannot_read_are_skipped() -> None:
    from llm_otel.instrumentation.openai._batches import parse_results

    content = b"\n".join([
        b"not json",
        b"[1, 2]",
        json.dumps({"custom_id": "a", "response": {"status_code": 200, "body": {
            "model": "m", "usage": {"input_tokens": 3, "output_tokens": 4,
                                    "input_tokens_details": {"cached_tokens": 1}}}}}).encode(),
        json.dumps({"custom_id": "b", "response": None,
                    "error": {"code": "batch_expired", "message": "expired"}}).encode(),
        json.dumps({"custom_id": "c", "response": {"status_code": 500, "body": "oops"}}).encode(),
        b"",
    ])  # fmt: skip
    requests = list(parse_results(content))
    assert [(r.succeeded, r.error_type) for r in requests] == [
        (True, None), (False, "batch_expired"), (False, "500")]  # fmt: skip
    assert (requests[0].input_tokens, requests[0].output_tokens,
            requests[0].cached_input_tokens) == (3, 4, 1)  # fmt: skip
