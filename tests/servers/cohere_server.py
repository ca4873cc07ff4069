"""A Cohere v2 API server on 127.0.0.1 for tests: ``/v2/chat`` (JSON, or SSE events when
``stream`` is true) and ``/v2/embed``. Token counts are sent as floats, as Cohere does. The model
name picks the behaviour:

- ``error-429``: HTTP 429 with Cohere's error body;
- ``tool-model``: a tool call (``get_weather``), streamed as tool-call-start/delta/end;
- ``long-stream``: 200 content deltas;
- anything else: ``"Hello from the test server"``, streamed as 5 content deltas.
"""

from __future__ import annotations

import json
from typing import Any

from tests.servers.loopback import RETRY_HEADERS, Handler, LoopbackServer, echo, failing_attempt

__all__ = ["TEXT", "CohereTestServer"]

TEXT = "Hello from the test server"
CHUNKS = ["Hello", " from", " the", " test", " server"]
USAGE = {
    "billed_units": {"input_tokens": 12.0, "output_tokens": 5.0},
    "tokens": {"input_tokens": 20.0, "output_tokens": 5.0},
    "cached_tokens": 4.0,
}
CALL = {
    "id": "call_1",
    "type": "function",
    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
}


class _Handler(Handler):
    def do_POST(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}")
        self.server.requests.append((self.path, body))
        model = str(body.get("model", ""))
        failing = failing_attempt(model)
        if failing is not None:
            self.send_json(failing, {"id": "err", "message": "retry me"}, RETRY_HEADERS)
        elif model == "error-429":
            self.send_json(429, {"id": "err", "message": f"too many requests: {echo(body)}"})
        elif self.path == "/v2/embed":
            count = len(body.get("texts") or [])
            self.send_json(
                200,
                {
                    "id": "embed-1",
                    "response_type": "embeddings_by_type",
                    "embeddings": {"float": [[0.1, 0.2]] * count},
                    "texts": body.get("texts"),
                    "meta": {
                        "api_version": {"version": "2"},
                        "billed_units": {"input_tokens": 7.0},
                    },
                },
            )
        elif self.path == "/v2/chat" and body.get("stream"):
            self._stream(model)
        elif self.path == "/v2/chat":
            message: dict[str, Any] = {
                "role": "assistant",
                "content": [{"type": "text", "text": TEXT}],
            }
            reason = "COMPLETE"
            if model == "tool-model":
                message = {"role": "assistant", "tool_plan": "I will check.", "tool_calls": [CALL]}
                reason = "TOOL_CALL"
            self.send_json(
                200, {"id": "chat-1", "finish_reason": reason, "message": message, "usage": USAGE}
            )
        else:
            self.send_json(404, {"message": "not found"})

    def _event(self, payload: dict[str, Any]) -> bool:
        try:
            self.wfile.write(f"event: {payload['type']}\ndata: {json.dumps(payload)}\n\n".encode())
            self.wfile.flush()
            return True
        except (BrokenPipeError, ConnectionResetError):
            return False

    def _stream(self, model: str) -> None:
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("connection", "close")
        self.end_headers()
        self.close_connection = True
        start = {"message": {"role": "assistant", "content": [], "tool_calls": []}}
        self._event({"type": "message-start", "id": "chat-1", "delta": start})
        reason = "COMPLETE"
        if model == "tool-model":
            reason = "TOOL_CALL"
            first = {**CALL, "function": {"name": "get_weather", "arguments": ""}}
            self._event(
                {"type": "tool-call-start", "index": 0, "delta": {"message": {"tool_calls": first}}}
            )
            for piece in ('{"city": ', '"Paris"}'):
                call = {"function": {"arguments": piece}}
                self._event(
                    {
                        "type": "tool-call-delta",
                        "index": 0,
                        "delta": {"message": {"tool_calls": call}},
                    }
                )
            self._event({"type": "tool-call-end", "index": 0})
        else:
            self._event(
                {
                    "type": "content-start",
                    "index": 0,
                    "delta": {"message": {"content": {"type": "text", "text": ""}}},
                }
            )
            for piece in CHUNKS * 40 if model == "long-stream" else CHUNKS:
                delta = {"message": {"content": {"text": piece}}}
                if not self._event({"type": "content-delta", "index": 0, "delta": delta}):
                    return
                if model == "truncated":
                    return  # the connection closes: no message-end
            self._event({"type": "content-end", "index": 0})
        self._event({"type": "message-end", "delta": {"finish_reason": reason, "usage": USAGE}})


class CohereTestServer(LoopbackServer):
    """The Cohere v2 API; clients use :attr:`base_url`."""

    handler = _Handler

    @property
    def base_url(self) -> str:
        return self.url
