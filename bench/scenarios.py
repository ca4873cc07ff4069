"""Scenarios beyond chat completions, for checking that a change costs no other call more:
OpenAI embeddings and Responses API calls, and a 20-event Anthropic Messages stream.

Each builder returns a no-argument function making one call over an in-process transport (the
same way bench/worker.py makes its chat calls), or None when the client library is missing.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
from collections.abc import Callable
from typing import Any

EXTRA_SCENARIOS = ("embeddings sync", "responses sync", "anthropic stream sync")
TEXT = "Write one short sentence about observability."


def http_library(package: str) -> Any:
    """The HTTP library ``package`` is built on (httpx2 in the newest releases, httpx before):
    the one its ``_base_client`` imports (openai 2.5x ships an ``_httpx2`` module too, but
    sends through httpx)."""
    base = importlib.import_module(f"{package}._base_client")
    return getattr(base, "httpx2", None) or importlib.import_module("httpx")


def _json(http: Any, body: dict[str, Any]) -> Callable[[Any], Any]:
    content = json.dumps(body).encode()

    def handler(request: Any) -> Any:
        return http.Response(200, headers={"content-type": "application/json"}, content=content)

    return handler


def embeddings() -> Callable[[], Any]:
    import openai

    http = http_library("openai")
    body = {
        "object": "list",
        "model": "text-embedding-3-small",
        "data": [{"object": "embedding", "index": 0, "embedding": [0.01] * 256}],
        "usage": {"prompt_tokens": 9, "total_tokens": 9},
    }
    client = openai.OpenAI(
        api_key="k", base_url="http://bench.invalid/v1", max_retries=0,
        http_client=http.Client(transport=http.MockTransport(_json(http, body))),
    )  # fmt: skip
    return lambda: client.embeddings.create(model="text-embedding-3-small", input=TEXT)


def responses() -> Callable[[], Any]:
    import openai

    http = http_library("openai")
    body = {
        "id": "resp_bench",
        "object": "response",
        "created_at": 1,
        "model": "gpt-4o-mini-2024-07-18",
        "status": "completed",
        "output": [{
            "type": "message", "id": "msg_bench", "status": "completed", "role": "assistant",
            "content": [{"type": "output_text", "text": "Observability is x " * 5,
                         "annotations": []}],
        }],
        "usage": {
            "input_tokens": 12, "output_tokens": 20, "total_tokens": 32,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens_details": {"reasoning_tokens": 0},
        },
        "parallel_tool_calls": True, "tool_choice": "auto", "tools": [],
    }  # fmt: skip
    client = openai.OpenAI(
        api_key="k", base_url="http://bench.invalid/v1", max_retries=0,
        http_client=http.Client(transport=http.MockTransport(_json(http, body))),
    )  # fmt: skip
    return lambda: client.responses.create(model="gpt-4o-mini", input=TEXT)


def _anthropic_stream() -> bytes:
    def event(kind: str, payload: dict[str, Any]) -> str:
        return f"event: {kind}\ndata: {json.dumps({'type': kind, **payload})}\n\n"

    message = {
        "id": "msg_bench", "type": "message", "role": "assistant", "content": [],
        "model": "claude-3-5-haiku-20241022", "stop_reason": None, "stop_sequence": None,
        "usage": {"input_tokens": 12, "output_tokens": 1},
    }  # fmt: skip
    frames = [event("message_start", {"message": message})]
    block = {"type": "text", "text": ""}
    frames.append(event("content_block_start", {"index": 0, "content_block": block}))
    frames += [
        event("content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": f"{i} "}})
        for i in range(15)
    ]
    frames.append(event("content_block_stop", {"index": 0}))
    frames.append(event("message_delta", {"delta": {"stop_reason": "end_turn",
                                                    "stop_sequence": None},
                                          "usage": {"output_tokens": 20}}))  # fmt: skip
    frames.append(event("message_stop", {}))
    return "".join(frames).encode()


def anthropic_stream() -> Callable[[], Any] | None:
    if importlib.util.find_spec("anthropic") is None:
        return None
    import anthropic

    http = http_library("anthropic")
    body = _anthropic_stream()

    def handler(request: Any) -> Any:
        return http.Response(200, headers={"content-type": "text/event-stream"}, content=body)

    client = anthropic.Anthropic(
        api_key="k", base_url="http://bench.invalid", max_retries=0,
        http_client=http.Client(transport=http.MockTransport(handler)),
    )  # fmt: skip

    def call() -> None:
        stream = client.messages.create(
            model="claude-3-5-haiku-latest", max_tokens=64, stream=True,
            messages=[{"role": "user", "content": TEXT}],
        )  # fmt: skip
        for _ in stream:
            pass

    return call


BUILDERS: dict[str, Callable[[], Callable[[], Any] | None]] = {
    "embeddings sync": embeddings,
    "responses sync": responses,
    "anthropic stream sync": anthropic_stream,
}
