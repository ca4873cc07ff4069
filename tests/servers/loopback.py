"""What every test server here shares: a quiet HTTP/1.1 handler with TCP_NODELAY, and a server on
a free loopback port, run in a background thread, that keeps the requests its handler records."""

from __future__ import annotations

import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar, TypeVar

__all__ = ["RETRY_HEADERS", "Handler", "LoopbackServer", "echo", "failing_attempt"]

_S = TypeVar("_S", bound="LoopbackServer")


def echo(body: Any) -> str:
    """The request as text, for error messages that echo it back as real providers' often do
    (a 400 quoting the prompt): content capture off must keep it out of the telemetry."""
    return json.dumps(body)[:2000]


_attempts: dict[str, int] = {}
_attempts_lock = threading.Lock()


def failing_attempt(model: str) -> int | None:
    """For a model named ``retry-N-STATUS-<anything>``: STATUS for its first N requests (the
    client library retries them), then None (answer normally). None for any other model. Use a
    fresh suffix per test: the count is kept per model name for the server's life."""
    parts = model.split("-")
    if len(parts) < 4 or parts[0] != "retry" or not parts[1].isdigit() or not parts[2].isdigit():
        return None
    with _attempts_lock:
        seen = _attempts[model] = _attempts.get(model, 0) + 1
    return int(parts[2]) if seen <= int(parts[1]) else None


RETRY_HEADERS = {"retry-after-ms": "1", "retry-after": "0"}
"""Sent with a failing attempt: the SDKs that honour them retry at once."""


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    requests: list[Any]

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):  # a client that closed early
            super().handle_error(request, client_address)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers, body: two writes; no 40 ms delayed-ACK stall
    server: _HTTPServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def send_json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        """A JSON answer: content-type and content-length, then ``headers`` in order."""
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)


class LoopbackServer:
    """Runs :attr:`handler` on a free loopback port in a background thread."""

    handler: ClassVar[type[Handler]]

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._server = _HTTPServer((host, port), self.handler)
        self._server.requests = []
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def requests(self) -> list[Any]:
        return self._server.requests

    def start(self: _S) -> _S:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
