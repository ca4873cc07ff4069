"""An Ollama API server on 127.0.0.1 for tests: ``/api/chat``, ``/api/generate``, ``/api/embed``
and ``/api/embeddings``, answering JSON, or NDJSON lines when ``stream`` is true (the client's
default for chat/generate is false). The model name picks the behaviour:

- ``missing-model``: HTTP 404 ``{"error": "model not found"}``;
- ``tool-model``: a tool call (``get_weather``) instead of text;
- ``mid-error``: a stream that sends one part, then an ``{"error": ...}`` line;
- ``long-stream``: 200 parts;
- anything else: ``"Hello from the test server"``, streamed as 5 parts.
"""

from __future__ import annotations

import json
from typing import Any

from tests.servers.loopback import Handler, LoopbackServer, echo

__all__ = ["TEXT", "OllamaTestServer"]

TEXT = "Hello from the test server"
CHUNKS = ["Hello", " from", " the", " test", " server"]


def _final(model: str) -> dict[str, Any]:
    return {
        "model": model,
        "created_at": "2025-01-01T00:00:00Z",
        "done": True,
        "done_reason": "stop",
        "total_duration": 1000,
        "prompt_eval_count": 12,
        "eval_count": 5,
    }


class _Handler(Handler):
    def do_POST(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}")
        self.server.requests.append((self.path, body))
        model = str(body.get("model", ""))
        if model.startswith("error-"):
            self.send_json(int(model.split("-", 1)[1]), {"error": f"test error: {echo(body)}"})
        elif model == "missing-model":
            self.send_json(404, {"error": f"model '{model}' not found"})
        elif self.path == "/api/embed":
            inputs = body.get("input")
            count = len(inputs) if isinstance(inputs, list) else 1
            self.send_json(200, {**_final(model), "embeddings": [[0.1, 0.2]] * count})
        elif self.path == "/api/embeddings":
            self.send_json(200, {"embedding": [0.1, 0.2]})
        elif self.path in ("/api/chat", "/api/generate"):
            chat = self.path == "/api/chat"
            if body.get("stream"):
                self._stream(model, chat, body)
            else:
                self.send_json(200, {**_final(model), **self._content(model, chat, TEXT)})
        else:
            self.send_json(404, {"error": "not found"})

    @staticmethod
    def _content(model: str, chat: bool, text: str) -> dict[str, Any]:
        if not chat:
            return {"response": text}
        message: dict[str, Any] = {"role": "assistant", "content": text}
        if model == "tool-model":
            message = {
                "role": "assistant",
                "content": "",
                "tool_calls": [
                    {"function": {"name": "get_weather", "arguments": {"city": "Paris"}}}
                ],
            }
        return {"message": message}

    def _stream(self, model: str, chat: bool, body: Any) -> None:
        self.send_response(200)
        self.send_header("content-type", "application/x-ndjson")
        self.send_header("connection", "close")
        self.end_headers()
        self.close_connection = True
        pieces = CHUNKS * 40 if model == "long-stream" else CHUNKS
        if model == "tool-model":
            pieces = [""]
        try:
            for i, piece in enumerate(pieces):
                part = {"model": model, "created_at": "2025-01-01T00:00:00Z", "done": False}
                part.update(self._content(model, chat, piece))
                self.wfile.write((json.dumps(part) + "\n").encode())
                self.wfile.flush()
                if model == "mid-error" and i == 0:
                    error = {"error": f"model runner crashed: {echo(body)}"}
                    self.wfile.write((json.dumps(error) + "\n").encode())
                    return
                if model == "truncated" and i == 1:
                    return  # the connection closes: no final "done" line
            final = {**_final(model), **self._content(model, chat, "")}
            if model == "tool-model":
                final["message"] = {"role": "assistant", "content": ""}
            self.wfile.write((json.dumps(final) + "\n").encode())
        except (BrokenPipeError, ConnectionResetError):
            pass


class OllamaTestServer(LoopbackServer):
    """The Ollama API; clients use :attr:`host`."""

    handler = _Handler

    @property
    def host(self) -> str:
        return self.url
