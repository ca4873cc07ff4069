"""An OpenAI-compatible HTTP server on 127.0.0.1 for tests and the demo.

It speaks the wire format the real ``openai`` client (and Groq's, under ``/openai/v1``)
expects: JSON bodies, SSE streams (``data: {...}`` chunks ending in ``data: [DONE]`` for chat,
``event:``-typed events for the Responses API), error bodies with HTTP status codes. The model
name picks the behaviour:

- ``error-429`` / ``error-500`` / ``error-400``: that HTTP error (with the API's error body);
- ``tool-model``: a tool call (``get_weather``) instead of text; ``tool-model-whole`` streams it
  in one delta, as Mistral does;
- ``agent-model``: a tool call until the conversation has the tool's result, then text (chat
  completions and, not streamed, the Responses API);
- ``handoff-model``: (Responses API, not streamed) calls the first ``transfer_to_...`` tool the
  request offers (an OpenAI Agents SDK handoff), then text;
- ``slow-first``: the first stream chunk waits ``SLOW_FIRST_DELAY`` seconds;
- ``mid-error``: a stream that sends one chunk, then an error payload;
- ``long-stream``: a stream of 200 chunks;
- ``truncated``: a chat stream that stops after two chunks, without a finish reason or [DONE];
- ``incomplete``: a Responses API response cut by max_output_tokens;
- ``huge-id``: a chat completion whose id is unique and over 100 KB long;
- ``echo``: a (non-streamed) chat completion answering with the last message's content;
- anything else: a normal answer, ``"Hello from the test server"`` split into chunks.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from tests.servers.loopback import RETRY_HEADERS, Handler, LoopbackServer, echo, failing_attempt
from tests.servers.openai_batches import BatchStore

__all__ = ["SLOW_FIRST_DELAY", "TEXT", "OpenAITestServer"]

TEXT = "Hello from the test server"
SLOW_FIRST_DELAY = 0.3
CHUNKS = ["Hello", " from", " the", " test", " server"]
USAGE = {
    "prompt_tokens": 12,
    "completion_tokens": 5,
    "total_tokens": 17,
    "prompt_tokens_details": {"cached_tokens": 4},
    "completion_tokens_details": {"reasoning_tokens": 2},
}
TOOL_ARGS = '{"city": "Paris"}'


class _Handler(Handler):
    def do_POST(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length)
        batches: BatchStore = self.server.batches  # type: ignore[attr-defined]
        if self.path.endswith("/files"):  # a multipart upload (the Batch API's input)
            self.server.requests.append((self.path, None))
            self._json(200, batches.upload(self.headers.get("content-type", ""), raw))
            return
        body = json.loads(raw or b"{}")
        self.server.requests.append((self.path, body))
        if self.path.endswith("/batches"):
            self._json(*batches.create(body))
            return
        if self.path.endswith("/cancel") and "/batches/" in self.path:
            self._json(*batches.cancel(self.path.split("/")[-2]))
            return
        model = str(body.get("model", ""))
        failing = failing_attempt(model)
        if failing is not None:
            self._json(failing, {"error": {"message": f"retry me ({failing})", "type": "test"}},
                       RETRY_HEADERS)  # fmt: skip
            return
        if model.startswith("error-"):
            status = int(model.split("-", 1)[1])
            self._json(
                status,
                {
                    "error": {
                        "message": f"test error {status}: {echo(body)}",
                        "type": "test",
                        "code": f"code_{status}",
                    }
                },
                RETRY_HEADERS,  # a client that retries (the SDK's default) retries at once
            )
            return
        if self.path.endswith("/chat/completions"):
            if body.get("stream"):
                self._chat_stream(body)
            else:
                self._json(200, chat_completion(body))
        elif self.path.endswith("/responses"):
            if body.get("stream"):
                self._responses_stream(body)
            else:
                self._json(200, response_object(body))
        elif self.path.endswith("/embeddings"):
            inputs = body.get("input")
            count = len(inputs) if isinstance(inputs, list) else 1
            self._json(
                200,
                {
                    "id": "embd-test",  # Mistral's client requires it; OpenAI's ignores it
                    "object": "list",
                    "model": model + "-2024",
                    "data": [
                        {"object": "embedding", "index": i, "embedding": [0.1, 0.2, 0.3]}
                        for i in range(count)
                    ],
                    "usage": {"prompt_tokens": 7, "completion_tokens": 0, "total_tokens": 7},
                },
            )
        else:
            self._json(404, {"error": {"message": "not found"}})

    def do_GET(self) -> None:
        self.server.requests.append((self.path, None))
        batches: BatchStore = self.server.batches  # type: ignore[attr-defined]
        parts = self.path.split("?")[0].rstrip("/").split("/")
        if len(parts) >= 2 and parts[-2] == "batches":
            self._json(*batches.retrieve(parts[-1]))
        elif len(parts) >= 3 and parts[-1] == "content" and parts[-3] == "files":
            data = batches.content(parts[-2])
            if data is None:
                self._json(404, {"error": {"message": "no such file"}})
                return
            self.send_response(200)
            self.send_header("content-type", "application/octet-stream")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        else:
            self._json(404, {"error": {"message": "not found"}})

    def _json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        sent = {"x-request-id": "req_test"}
        if status == 200:
            # What OpenAI and Groq report with every answer: what is left of the limits.
            sent["x-ratelimit-remaining-requests"] = "99"
            sent["x-ratelimit-remaining-tokens"] = "9000"
        self.send_json(status, payload, {**sent, **(headers or {})})

    def _start_sse(self) -> None:
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("cache-control", "no-cache")
        self.send_header("connection", "close")
        self.end_headers()
        self.close_connection = True

    def _send(self, data: str, event: str | None = None) -> bool:
        frame = (f"event: {event}\n" if event else "") + f"data: {data}\n\n"
        try:
            self.wfile.write(frame.encode())
            self.wfile.flush()
            return True
        except (BrokenPipeError, ConnectionResetError):
            return False

    def _chat_stream(self, body: dict[str, Any]) -> None:
        model = str(body.get("model"))
        self._start_sse()
        if model == "slow-first":
            time.sleep(SLOW_FIRST_DELAY)
        base = {
            "id": "chatcmpl-stream",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": model + "-2024",
            "system_fingerprint": "fp_test",
        }
        n = int(body.get("n") or 1)
        pieces = CHUNKS * 40 if model == "long-stream" else CHUNKS
        for index in range(n):
            if not self._send(
                json.dumps(
                    {
                        **base,
                        "choices": [
                            {
                                "index": index,
                                "delta": {"role": "assistant", "content": ""},
                                "finish_reason": None,
                            }
                        ],
                    }
                )
            ):
                return
        answered = any(m.get("role") == "tool" for m in body.get("messages") or ())
        if model in ("tool-model", "tool-model-whole") or (model == "agent-model" and not answered):
            deltas = [
                {
                    "tool_calls": [
                        {
                            "index": 0,
                            "id": "call_1",
                            "type": "function",
                            "function": {"name": "get_weather", "arguments": ""},
                        }
                    ]
                },
                {"tool_calls": [{"index": 0, "function": {"arguments": '{"city": '}}]},
                {"tool_calls": [{"index": 0, "function": {"arguments": '"Paris"}'}}]},
            ]
            if model == "tool-model-whole":  # Mistral sends a tool call in one delta
                deltas = [
                    {
                        "tool_calls": [
                            {
                                "index": 0,
                                "id": "call_1",
                                "type": "function",
                                "function": {"name": "get_weather", "arguments": TOOL_ARGS},
                            }
                        ]
                    }
                ]
            for delta in deltas:
                self._send(
                    json.dumps(
                        {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]}
                    )
                )
            finish = "tool_calls"
        else:
            for i, piece in enumerate(pieces):
                if model == "mid-error" and i == 1:
                    self._send(
                        json.dumps(
                            {"error": {"message": f"stream broke: {echo(body)}", "type": "server"}}
                        )
                    )
                    return
                for index in range(n):
                    if not self._send(
                        json.dumps(
                            {
                                **base,
                                "choices": [
                                    {
                                        "index": index,
                                        "delta": {"content": piece},
                                        "finish_reason": None,
                                    }
                                ],
                            }
                        )
                    ):
                        return
                if model == "truncated" and i == 1:
                    return  # the connection closes: no finish reason, no [DONE]
            finish = "stop"
        for index in range(n):
            self._send(
                json.dumps(
                    {**base, "choices": [{"index": index, "delta": {}, "finish_reason": finish}]}
                )
            )
        if (body.get("stream_options") or {}).get("include_usage"):
            self._send(json.dumps({**base, "choices": [], "usage": USAGE}))
        elif self.path.startswith("/openai/v1/"):  # Groq: usage in the final chunk's x_groq
            self._send(
                json.dumps({**base, "choices": [], "x_groq": {"id": "req_g", "usage": USAGE}})
            )
        self._send("[DONE]")

    def _responses_stream(self, body: dict[str, Any]) -> None:
        model = str(body.get("model"))
        self._start_sse()
        if model == "slow-first":
            time.sleep(SLOW_FIRST_DELAY)
        final = response_object(body)
        created = {**final, "status": "in_progress", "output": [], "usage": None}
        seq = 0

        def send(kind: str, payload: dict[str, Any]) -> bool:
            nonlocal seq
            seq += 1
            return self._send(json.dumps({"type": kind, "sequence_number": seq, **payload}), kind)

        if not send("response.created", {"response": created}):
            return
        item = {
            "type": "message",
            "id": "msg_1",
            "role": "assistant",
            "status": "in_progress",
            "content": [],
        }
        send("response.output_item.added", {"output_index": 0, "item": item})
        part = {"type": "output_text", "text": "", "annotations": []}
        send(
            "response.content_part.added",
            {"item_id": "msg_1", "output_index": 0, "content_index": 0, "part": part},
        )
        for piece in CHUNKS:
            if model == "mid-error" and piece == " from":
                message = f"stream broke: {echo(body)}"
                send("error", {"code": "server_error", "message": message, "param": None})
                return
            if not send(
                "response.output_text.delta",
                {
                    "item_id": "msg_1",
                    "output_index": 0,
                    "content_index": 0,
                    "delta": piece,
                    "logprobs": [],
                },
            ):
                return
        done_part = {"type": "output_text", "text": TEXT, "annotations": []}
        send(
            "response.output_text.done",
            {
                "item_id": "msg_1",
                "output_index": 0,
                "content_index": 0,
                "text": TEXT,
                "logprobs": [],
            },
        )
        send(
            "response.content_part.done",
            {"item_id": "msg_1", "output_index": 0, "content_index": 0, "part": done_part},
        )
        send("response.output_item.done", {"output_index": 0, "item": final["output"][0]})
        kind = "response.incomplete" if final["status"] == "incomplete" else "response.completed"
        send(kind, {"response": final})


def chat_completion(body: dict[str, Any]) -> dict[str, Any]:
    model = str(body.get("model"))
    n = int(body.get("n") or 1)
    answered = any(m.get("role") == "tool" for m in body.get("messages") or ())
    if model == "tool-model" or (model == "agent-model" and not answered):
        message: dict[str, Any] = {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": TOOL_ARGS},
                }
            ],
        }
        finish = "tool_calls"
    elif model == "echo":  # the last message's text, as the answer (a leak, in tests)
        last = (body.get("messages") or [{}])[-1].get("content")
        message = {"role": "assistant", "content": str(last), "refusal": None}
        finish = "stop"
    else:
        message = {"role": "assistant", "content": TEXT, "refusal": None}
        finish = "stop"
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex}{'x' * 100_000}"
        if model == "huge-id"
        else "chatcmpl-test",
        "object": "chat.completion",
        "created": 1,
        "model": model + "-2024",
        "system_fingerprint": "fp_test",
        "service_tier": "default",
        "choices": [
            {"index": i, "message": message, "finish_reason": finish, "logprobs": None}
            for i in range(n)
        ],
        "usage": USAGE,
    }


def response_object(body: dict[str, Any]) -> dict[str, Any]:
    model = str(body.get("model"))
    incomplete = model == "incomplete"
    items = body.get("input")
    items = items if isinstance(items, list) else []
    outputs = {i.get("call_id") for i in items
               if isinstance(i, dict) and i.get("type") == "function_call_output"}  # fmt: skip
    tools = [t.get("name") for t in body.get("tools") or () if isinstance(t, dict)]
    handoff = next((t for t in tools if str(t).startswith("transfer_to_")), None)
    if model == "handoff-model" and handoff and "call_h" not in outputs:
        # A triage agent: hands the conversation to the agent its first handoff tool names.
        output: list[dict[str, Any]] = [{"type": "function_call", "id": "fc_h", "call_id": "call_h",
                                         "name": handoff, "arguments": "{}",
                                         "status": "completed"}]  # fmt: skip
    elif model == "tool-model" or (model == "agent-model" and "call_1" not in outputs):
        # agent-model calls the first function tool the request offers (default get_weather),
        # with "Paris" for its first parameter.
        offered = [t for t in body.get("tools") or () if isinstance(t, dict)
                   and not str(t.get("name")).startswith("transfer_to_")]  # fmt: skip
        tool = offered[0] if model == "agent-model" and offered else {}
        name = str(tool.get("name") or "get_weather")
        parameters = list((tool.get("parameters") or {}).get("properties") or {"city": {}})
        arguments = json.dumps({parameters[0]: "Paris"}) if parameters else "{}"
        output = [
            {
                "type": "function_call",
                "id": "fc_1",
                "call_id": "call_1",
                "name": name,
                "arguments": arguments,
                "status": "completed",
            }
        ]
    else:
        output = [
            {
                "type": "message",
                "id": "msg_1",
                "role": "assistant",
                "status": "completed",
                "content": [{"type": "output_text", "text": TEXT, "annotations": []}],
            }
        ]
    return {
        "id": "resp_test",
        "object": "response",
        "created_at": 1,
        "model": model + "-2024",
        "status": "incomplete" if incomplete else "completed",
        "incomplete_details": {"reason": "max_output_tokens"} if incomplete else None,
        "output": output,
        "parallel_tool_calls": True,
        "tool_choice": "auto",
        "tools": [],
        "error": None,
        "instructions": body.get("instructions"),
        "metadata": {},
        "temperature": body.get("temperature"),
        "top_p": body.get("top_p"),
        "service_tier": "default",
        "usage": {
            "input_tokens": 11,
            "output_tokens": 6,
            "total_tokens": 17,
            "input_tokens_details": {"cached_tokens": 3},
            "output_tokens_details": {"reasoning_tokens": 1},
        },
    }


class OpenAITestServer(LoopbackServer):
    """The OpenAI-compatible API; clients use :attr:`base_url` (``/v1``)."""

    handler = _Handler

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(host, port)
        self._server.batches = BatchStore()  # type: ignore[attr-defined]

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"


if (
    __name__ == "__main__"
):  # pragma: no cover - manual use: python -m tests.servers.openai_server 8765
    import sys

    server = OpenAITestServer(port=int(sys.argv[1]) if len(sys.argv) > 1 else 8765).start()
    print(f"OpenAI-compatible test server on {server.base_url}", flush=True)
    try:
        server._thread.join()
    except KeyboardInterrupt:
        server.stop()
