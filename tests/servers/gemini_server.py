"""A Gemini API server on 127.0.0.1 for tests: ``POST /v1beta/models/{model}:generateContent``,
``:streamGenerateContent?alt=sse`` (SSE ``data:`` lines, no terminator) and
``:batchEmbedContents``, with camelCase JSON as the API sends it. The model name picks:

- ``error-429``: HTTP 429 with the API's error body (``RESOURCE_EXHAUSTED``);
- ``tool-model``: a ``functionCall`` part (``get_weather``);
- ``thinking-model``: a thought part before the text, with ``thoughtsTokenCount``;
- ``long-stream``: 200 chunks;
- anything else: ``"Hello from the test server"``, streamed as 5 chunks.
"""

from __future__ import annotations

import json
from typing import Any

from tests.servers.loopback import Handler, LoopbackServer, echo, failing_attempt

__all__ = ["TEXT", "GeminiTestServer"]

TEXT = "Hello from the test server"
CHUNKS = ["Hello", " from", " the", " test", " server"]


def _usage(model: str) -> dict[str, Any]:
    usage = {"promptTokenCount": 12, "candidatesTokenCount": 5, "totalTokenCount": 17}
    if model == "thinking-model":
        usage.update(thoughtsTokenCount=3, totalTokenCount=20)
    return usage


def _candidate(model: str, parts: list[dict[str, Any]], finish: str | None) -> dict[str, Any]:
    candidate: dict[str, Any] = {"content": {"role": "model", "parts": parts}, "index": 0}
    if finish:
        candidate["finishReason"] = finish
    return candidate


def _parts(model: str, text: str) -> list[dict[str, Any]]:
    if model == "tool-model":
        return [{"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}}]
    if model == "thinking-model":
        return [{"text": "The user greets me.", "thought": True}, {"text": text}]
    return [{"text": text}]


class _Handler(Handler):
    def do_POST(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}")
        self.server.requests.append((self.path, body))
        path = self.path.split("?", 1)[0]
        model = path.rsplit("/", 1)[-1].split(":", 1)[0]
        method = path.rsplit(":", 1)[-1]
        failing = failing_attempt(model)
        if failing is not None:
            status = "RESOURCE_EXHAUSTED" if failing == 429 else "UNAVAILABLE"
            self.send_json(
                failing, {"error": {"code": failing, "message": "retry", "status": status}}
            )
        elif model == "error-429":
            message = f"quota exceeded: {echo(body)}"
            error = {"code": 429, "message": message, "status": "RESOURCE_EXHAUSTED"}
            self.send_json(429, {"error": error})
        elif method == "generateContent":
            self.send_json(
                200,
                {
                    "candidates": [_candidate(model, _parts(model, TEXT), "STOP")],
                    "usageMetadata": _usage(model),
                    "modelVersion": model + "-001",
                    "responseId": "resp-1",
                },
            )
        elif method == "streamGenerateContent":
            self._stream(model)
        elif method == "batchEmbedContents":
            count = len(body.get("requests") or [])
            self.send_json(200, {"embeddings": [{"values": [0.1, 0.2]}] * count})
        else:
            self.send_json(
                404, {"error": {"code": 404, "message": "not found", "status": "NOT_FOUND"}}
            )

    def _stream(self, model: str) -> None:
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("connection", "close")
        self.end_headers()
        self.close_connection = True
        pieces = CHUNKS * 40 if model == "long-stream" else CHUNKS
        if model in ("tool-model", "thinking-model"):
            pieces = [TEXT]
        for i, piece in enumerate(pieces):
            last = i == len(pieces) - 1
            chunk: dict[str, Any] = {
                "candidates": [_candidate(model, _parts(model, piece), "STOP" if last else None)],
                "modelVersion": model + "-001",
                "responseId": "resp-1",
            }
            if last:
                chunk["usageMetadata"] = _usage(model)
            try:
                self.wfile.write(f"data: {json.dumps(chunk)}\r\n\r\n".encode())
                self.wfile.flush()
            except (BrokenPipeError, ConnectionResetError):
                return
            if model == "truncated" and i == 1:
                return  # the connection closes: no finish reason


class GeminiTestServer(LoopbackServer):
    """The Gemini API; clients use :attr:`base_url`."""

    handler = _Handler

    @property
    def base_url(self) -> str:
        return self.url
