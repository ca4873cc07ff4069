"""An Anthropic Messages API server on 127.0.0.1 for tests.

It speaks what the real ``anthropic`` client expects: ``POST /v1/messages`` with a JSON body,
``event:``-typed SSE streams (message_start, content_block_start/delta/stop, message_delta,
message_stop, ping, error), and the API's error bodies. The model name picks the behaviour:

- ``error-429`` / ``error-500`` / ``error-400``: that HTTP error;
- ``tool-model``: a ``tool_use`` block (``get_weather``) after a short text;
- ``cached-model``: usage with prompt-cache reads and writes;
- ``thinking-model``: a thinking block before the text;
- ``mid-error``: a stream that sends one text delta, then an ``error`` event (overloaded);
- ``long-stream``: 200 text deltas;
- ``slow-first``: the first event (message_start) waits ``SLOW_FIRST_DELAY`` seconds;
- anything else: ``"Hello from the test server"``, streamed as 5 deltas.
"""

from __future__ import annotations

import json
import time
from typing import Any

from tests.servers.anthropic_batches import MessageBatchStore
from tests.servers.loopback import RETRY_HEADERS, Handler, LoopbackServer, echo, failing_attempt

__all__ = ["SLOW_FIRST_DELAY", "TEXT", "AnthropicTestServer"]

TEXT = "Hello from the test server"
CHUNKS = ["Hello", " from", " the", " test", " server"]
SLOW_FIRST_DELAY = 0.3
TOOL_INPUT = {"city": "Paris"}


def _usage(model: str) -> dict[str, Any]:
    usage: dict[str, Any] = {"input_tokens": 12, "output_tokens": 5}
    if model == "cached-model":
        usage.update(cache_read_input_tokens=100, cache_creation_input_tokens=20)
    return usage


def _blocks(model: str) -> list[dict[str, Any]]:
    if model == "tool-model":
        return [
            {"type": "text", "text": "Let me check."},
            {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": TOOL_INPUT},
        ]
    if model == "thinking-model":
        return [
            {"type": "thinking", "thinking": "The user greets me.", "signature": "sig"},
            {"type": "text", "text": TEXT},
        ]
    return [{"type": "text", "text": TEXT}]


def message(body: dict[str, Any]) -> dict[str, Any]:
    model = str(body.get("model"))
    return {
        "id": "msg_test_1",
        "type": "message",
        "role": "assistant",
        "model": model + "-20250101",
        "content": _blocks(model),
        "stop_reason": "tool_use" if model == "tool-model" else "end_turn",
        "stop_sequence": None,
        "usage": _usage(model),
    }


class _Handler(Handler):
    def do_POST(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}")
        self.server.requests.append((self.path, dict(self.headers), body))
        batches: MessageBatchStore = self.server.batches  # type: ignore[attr-defined]
        path = self.path.split("?")[0]
        if path == "/v1/messages/batches":
            self._json(*batches.create(body))
            return
        if path.startswith("/v1/messages/batches/") and path.endswith("/cancel"):
            self._json(*batches.cancel(path.split("/")[-2]))
            return
        model = str(body.get("model", ""))
        failing = failing_attempt(model)
        if failing is not None:
            kind = {429: "rate_limit_error", 529: "overloaded_error"}.get(failing, "api_error")
            error = {"type": "error", "error": {"type": kind, "message": "retry me"}}
            self._json(failing, error, RETRY_HEADERS)
        elif model.startswith("error-"):
            status = int(model.split("-", 1)[1])
            kind = {429: "rate_limit_error", 500: "api_error"}.get(status, "invalid_request_error")
            self._json(
                status,
                {
                    "type": "error",
                    "error": {"type": kind, "message": f"test error {status}: {echo(body)}"},
                },
            )
        elif not self.path.startswith("/v1/messages"):
            self._json(404, {"type": "error", "error": {"type": "not_found_error"}})
        elif body.get("stream"):
            self._stream(body)
        else:
            self._json(200, message(body))

    def do_GET(self) -> None:
        self.server.requests.append((self.path, dict(self.headers), None))
        batches: MessageBatchStore = self.server.batches  # type: ignore[attr-defined]
        parts = self.path.split("?")[0].rstrip("/").split("/")
        if parts[-1] == "results" and parts[-3] == "batches":
            data = batches.results(parts[-2])
            if data is None:
                self._json(404, {"type": "error", "error": {"type": "not_found_error"}})
                return
            self.send_response(200)
            self.send_header("content-type", "application/binary")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        elif len(parts) >= 2 and parts[-2] == "batches":
            host = self.headers.get("host", "127.0.0.1")
            self._json(*batches.retrieve(parts[-1], f"http://{host}"))
        else:
            self._json(404, {"type": "error", "error": {"type": "not_found_error"}})

    def do_DELETE(self) -> None:
        self.server.requests.append((self.path, dict(self.headers), None))
        batches: MessageBatchStore = self.server.batches  # type: ignore[attr-defined]
        parts = self.path.split("?")[0].rstrip("/").split("/")
        if len(parts) >= 2 and parts[-2] == "batches":
            self._json(*batches.delete(parts[-1]))
        else:
            self._json(404, {"type": "error", "error": {"type": "not_found_error"}})

    def _json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        sent = {"request-id": "req_test"}
        if status == 200 and str(payload.get("model", "")).startswith("retry-"):
            sent["anthropic-ratelimit-requests-remaining"] = "49"
            sent["anthropic-ratelimit-input-tokens-remaining"] = "39000"
            sent["anthropic-ratelimit-output-tokens-remaining"] = "7900"
        self.send_json(status, payload, {**sent, **(headers or {})})

    def _event(self, event: str, payload: dict[str, Any]) -> bool:
        frame = f"event: {event}\ndata: {json.dumps({'type': event, **payload})}\n\n"
        try:
            self.wfile.write(frame.encode())
            self.wfile.flush()
            return True
        except (BrokenPipeError, ConnectionResetError):
            return False

    def _stream(self, body: dict[str, Any]) -> None:
        model = str(body.get("model"))
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("cache-control", "no-cache")
        self.send_header("connection", "close")
        self.end_headers()
        self.close_connection = True
        full = message(body)
        usage = full["usage"]
        start = {**full, "content": [], "stop_reason": None}
        start["usage"] = {**usage, "output_tokens": 1}
        if model == "slow-first":
            time.sleep(SLOW_FIRST_DELAY)
        if not self._event("message_start", {"message": start}):
            return
        self._event("ping", {})
        chunks = CHUNKS * 40 if model == "long-stream" else CHUNKS
        for index, block in enumerate(full["content"]):
            kind = block["type"]
            empty = (
                {"text": ""} if kind == "text" else {"thinking": ""} if kind == "thinking" else {}
            )
            if kind == "tool_use":
                empty = {"id": block["id"], "name": block["name"], "input": {}}
            self._event(
                "content_block_start", {"index": index, "content_block": {"type": kind, **empty}}
            )
            if kind == "tool_use":
                raw = json.dumps(block["input"])
                for piece in (raw[:5], raw[5:]):
                    delta = {"type": "input_json_delta", "partial_json": piece}
                    self._event("content_block_delta", {"index": index, "delta": delta})
            elif kind == "thinking":
                delta = {"type": "thinking_delta", "thinking": block["thinking"]}
                self._event("content_block_delta", {"index": index, "delta": delta})
            else:
                pieces = chunks if block["text"] == TEXT else [block["text"]]
                for piece in pieces:
                    delta = {"type": "text_delta", "text": piece}
                    if not self._event("content_block_delta", {"index": index, "delta": delta}):
                        return
                    if model == "truncated":
                        return  # the connection closes: no message_delta, no message_stop
                    if model == "mid-error":
                        self._event(
                            "error",
                            {
                                "error": {
                                    "type": "overloaded_error",
                                    "message": f"Overloaded: {echo(body)}",
                                }
                            },
                        )
                        return
            self._event("content_block_stop", {"index": index})
        final_usage = {"output_tokens": usage["output_tokens"]}
        for key in ("input_tokens", "cache_read_input_tokens", "cache_creation_input_tokens"):
            if key in usage:
                final_usage[key] = usage[key]
        self._event(
            "message_delta",
            {
                "delta": {"stop_reason": full["stop_reason"], "stop_sequence": None},
                "usage": final_usage,
            },
        )
        self._event("message_stop", {})


class AnthropicTestServer(LoopbackServer):
    """The Anthropic Messages API; clients use :attr:`base_url`."""

    handler = _Handler

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(host, port)
        self._server.batches = MessageBatchStore()  # type: ignore[attr-defined]

    @property
    def base_url(self) -> str:
        return self.url
