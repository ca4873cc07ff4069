"""An Amazon Bedrock Runtime server on 127.0.0.1 for tests, speaking its REST wire format:
``/model/{modelId}/converse`` and ``/invoke`` (JSON), ``/converse-stream`` and
``/invoke-with-response-stream`` (AWS event-stream framing: binary messages with typed headers
and CRC32 checksums, as botocore's ``EventStream`` parses them).

The model id picks the behaviour:

- ``error-429``: HTTP 429 ``ThrottlingException``;
- ``midstream-error``: a stream that sends two deltas, then a ``modelStreamErrorException``;
- ``tool-model`` (Converse): a ``toolUse`` block (``get_weather``), streamed as start + deltas;
- ``long-stream`` (Converse): 200 text deltas;
- for ``invoke``: the family's own bodies, by prefix: ``anthropic.``, ``amazon.nova``,
  ``amazon.titan-text``, ``amazon.titan-embed``, ``meta.``, ``mistral.`` (``prompt`` or
  ``messages``), ``cohere.embed``, ``openai.``;
- anything else: ``"Hello from the test server"`` (5 deltas when streamed).
"""

from __future__ import annotations

import base64
import json
import struct
import zlib
from typing import Any
from urllib.parse import unquote

from tests.servers.loopback import Handler, LoopbackServer, echo, failing_attempt

__all__ = ["CHUNKS", "TEXT", "BedrockTestServer", "event_message"]

TEXT = "Hello from the test server"
CHUNKS = ["Hello", " from", " the", " test", " server"]
USAGE = {
    "inputTokens": 11,
    "outputTokens": 5,
    "totalTokens": 26,
    "cacheReadInputTokens": 6,
    "cacheWriteInputTokens": 4,
}
TOOL = {"toolUseId": "tooluse_1", "name": "get_weather", "input": {"city": "Paris"}}


def event_message(headers: dict[str, str], payload: bytes) -> bytes:
    """One event-stream message: prelude (lengths + CRC), string headers, payload, CRC."""
    encoded = b""
    for name, value in headers.items():
        raw = value.encode()
        encoded += bytes([len(name)]) + name.encode() + b"\x07" + struct.pack(">H", len(raw)) + raw
    total = 12 + len(encoded) + len(payload) + 4
    prelude = struct.pack(">II", total, len(encoded))
    prelude += struct.pack(">I", zlib.crc32(prelude))
    message = prelude + encoded + payload
    return message + struct.pack(">I", zlib.crc32(message))


def _event(kind: str, body: Any) -> bytes:
    headers = {":event-type": kind, ":content-type": "application/json", ":message-type": "event"}
    return event_message(headers, json.dumps(body).encode())


def _chunk(body: Any) -> bytes:
    return _event("chunk", {"bytes": base64.b64encode(json.dumps(body).encode()).decode()})


def _exception(kind: str, message: str) -> bytes:
    headers = {
        ":exception-type": kind,
        ":content-type": "application/json",
        ":message-type": "exception",
    }
    return event_message(headers, json.dumps({"message": message}).encode())


METRICS = {
    "amazon-bedrock-invocationMetrics": {
        "inputTokenCount": 11,
        "outputTokenCount": 5,
        "invocationLatency": 120,
        "firstByteLatency": 40,
    }
}


def _family(model: str) -> str:
    """The model id without a cross-region inference profile's prefix (``us.``, ``eu.``, ...)."""
    head, _, rest = model.partition(".")
    return rest if head in ("us", "eu", "apac", "global") else model


def _invoke_body(model: str, body: dict[str, Any]) -> dict[str, Any]:
    model = _family(model)
    if model.startswith("anthropic."):
        return {
            "id": "msg_bdrk_1",
            "type": "message",
            "role": "assistant",
            "model": "claude-test",
            "content": [{"type": "text", "text": TEXT}],
            "stop_reason": "end_turn",
            "usage": {"input_tokens": 9, "output_tokens": 5, "cache_read_input_tokens": 3},
        }
    if model.startswith("amazon.nova"):
        return {
            "output": {"message": {"role": "assistant", "content": [{"text": TEXT}]}},
            "stopReason": "max_tokens",
            "usage": {"inputTokens": 11, "outputTokens": 5, "cacheReadInputTokenCount": 2},
        }
    if model.startswith("amazon.titan-embed"):
        return {"embedding": [0.1, 0.2, 0.3], "inputTextTokenCount": 6}
    if model.startswith("amazon.titan-text"):
        return {
            "inputTextTokenCount": 11,
            "results": [{"tokenCount": 5, "outputText": TEXT, "completionReason": "LENGTH"}],
        }
    if model.startswith("meta."):
        return {
            "generation": TEXT,
            "prompt_token_count": 11,
            "generation_token_count": 5,
            "stop_reason": "stop",
        }
    if model.startswith("cohere.embed"):
        return {"id": "emb-1", "embeddings": [[0.1, 0.2]], "response_type": "embeddings_floats"}
    if model.startswith(("openai.", "mistral.")) and "messages" in body:
        return {
            "id": "chatcmpl-bdrk",
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": TEXT},
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 11, "completion_tokens": 5, "total_tokens": 16},
        }
    if model.startswith("mistral."):
        return {"outputs": [{"text": TEXT, "stop_reason": "length"}]}
    return {"completion": TEXT, "stop_reason": "stop_sequence"}


def _invoke_chunks(model: str) -> list[dict[str, Any]]:
    model = _family(model)
    if model.startswith("anthropic."):
        chunks: list[dict[str, Any]] = [
            {
                "type": "message_start",
                "message": {
                    "id": "msg_bdrk_2",
                    "type": "message",
                    "role": "assistant",
                    "model": "claude-test",
                    "content": [],
                    "usage": {"input_tokens": 9, "output_tokens": 1, "cache_read_input_tokens": 3},
                },
            },
            {"type": "content_block_start", "index": 0,
             "content_block": {"type": "text", "text": ""}},
            *({"type": "content_block_delta", "index": 0,
               "delta": {"type": "text_delta", "text": c}} for c in CHUNKS),
            {"type": "content_block_stop", "index": 0},
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn"},
                "usage": {"output_tokens": 5},
            },
            {"type": "message_stop"},
        ]  # fmt: skip
    elif model.startswith("amazon.nova"):
        chunks = [
            {"messageStart": {"role": "assistant"}},
            *({"contentBlockDelta": {"delta": {"text": c}, "contentBlockIndex": 0}}
              for c in CHUNKS),
            {"contentBlockStop": {"contentBlockIndex": 0}},
            {"messageStop": {"stopReason": "end_turn"}},
            {"metadata": {"usage": {"inputTokens": 11, "outputTokens": 5}}},
        ]  # fmt: skip
    elif model.startswith("amazon.titan-text"):
        chunks = [
            {"outputText": c, "index": 0, "totalOutputTextTokenCount": i + 1,
             "completionReason": "FINISH" if i == len(CHUNKS) - 1 else None,
             "inputTextTokenCount": 11 if i == 0 else None}
            for i, c in enumerate(CHUNKS)
        ]  # fmt: skip
    elif model.startswith("meta."):
        chunks = [
            {"generation": c, "prompt_token_count": 11 if i == 0 else None,
             "generation_token_count": i + 1,
             "stop_reason": "length" if i == len(CHUNKS) - 1 else None}
            for i, c in enumerate(CHUNKS)
        ]  # fmt: skip
    elif model.startswith("openai."):
        chunks = [
            {"id": "chatcmpl-s", "model": model, "choices": [
                {"index": 0, "delta": {"content": c},
                 "finish_reason": "stop" if i == len(CHUNKS) - 1 else None}]}
            for i, c in enumerate(CHUNKS)
        ]  # fmt: skip
    else:
        chunks = [{"outputs": [{"text": c, "stop_reason": None}]} for c in CHUNKS]
        chunks[-1]["outputs"][0]["stop_reason"] = "stop"
    chunks[-1] = {**chunks[-1], **METRICS}
    return chunks


class _Handler(Handler):
    def do_POST(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length)
        parts = self.path.split("/")  # "", "model", id, action
        if len(parts) != 4 or parts[1] != "model":
            self._json(404, {"message": "not found"})
            return
        model, action = unquote(parts[2]), parts[3]
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            body = {"raw": len(raw)}
        self.server.requests.append((action, model, body))
        failing = failing_attempt(model)
        if failing is not None:
            error = "ThrottlingException" if failing == 429 else "ServiceUnavailableException"
            self._json(failing, {"message": "retry me"}, error=error)
        elif model == "error-429":
            message = f"Too many requests: {echo(body)}"
            self._json(429, {"message": message}, error="ThrottlingException")
        elif action == "converse":
            self._converse(model)
        elif action == "converse-stream":
            self._converse_stream(model, body)
        elif action == "invoke":
            self._json(
                200,
                _invoke_body(model, body),
                extra={
                    "X-Amzn-Bedrock-Input-Token-Count": "11",
                    "X-Amzn-Bedrock-Output-Token-Count": "5",
                },
            )
        elif action == "invoke-with-response-stream":
            if model == "midstream-error":
                chunks = [_chunk({"outputs": [{"text": c}]}) for c in CHUNKS[:2]]
                self._stream([*chunks, _exception("modelStreamErrorException", "model failed")])
            else:
                self._stream([_chunk(c) for c in _invoke_chunks(model)])
        else:
            self._json(404, {"message": "unknown operation"})

    def _converse(self, model: str) -> None:
        content: list[dict[str, Any]] = [{"text": TEXT}]
        reason = "end_turn"
        if model == "tool-model":
            content = [{"text": "Checking."}, {"toolUse": TOOL}]
            reason = "tool_use"
        self._json(
            200,
            {
                "output": {"message": {"role": "assistant", "content": content}},
                "stopReason": reason,
                "usage": USAGE,
                "metrics": {"latencyMs": 120},
            },
        )

    def _converse_stream(self, model: str, body: Any) -> None:
        events = [_event("messageStart", {"role": "assistant"})]
        reason = "end_turn"
        if model == "tool-model":
            start = {"toolUse": {"toolUseId": TOOL["toolUseId"], "name": TOOL["name"]}}
            events.append(_event("contentBlockStart", {"start": start, "contentBlockIndex": 0}))
            for piece in ('{"city": ', '"Paris"}'):
                delta = {"delta": {"toolUse": {"input": piece}}, "contentBlockIndex": 0}
                events.append(_event("contentBlockDelta", delta))
            reason = "tool_use"
        else:
            pieces = ["x"] * 200 if model == "long-stream" else CHUNKS
            if model == "midstream-error":
                pieces = CHUNKS[:2]
            for piece in pieces:
                delta = {"delta": {"text": piece}, "contentBlockIndex": 0}
                events.append(_event("contentBlockDelta", delta))
            if model == "midstream-error":
                failure = _exception("modelStreamErrorException", f"model failed: {echo(body)}")
                self._stream([*events, failure])
                return
            if model == "truncated":
                self._stream(events[:3])  # the stream ends: no messageStop, no metadata
                return
        events.append(_event("contentBlockStop", {"contentBlockIndex": 0}))
        events.append(_event("messageStop", {"stopReason": reason}))
        events.append(_event("metadata", {"usage": USAGE, "metrics": {"latencyMs": 120}}))
        self._stream(events)

    def _json(
        self,
        status: int,
        payload: Any,
        error: str | None = None,
        extra: dict[str, str] | None = None,
    ) -> None:
        sent = {"x-amzn-RequestId": "req-test-1"}
        if error:
            sent["x-amzn-ErrorType"] = f"{error}:http://internal.amazon.com/coral/"
        self.send_json(status, payload, {**sent, **(extra or {})})

    def _stream(self, messages: list[bytes]) -> None:
        self.send_response(200)
        self.send_header("content-type", "application/vnd.amazon.eventstream")
        self.send_header("x-amzn-RequestId", "req-test-2")
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()
        try:
            for message in messages:
                self.wfile.write(f"{len(message):x}\r\n".encode() + message + b"\r\n")
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client closed the stream early


class BedrockTestServer(LoopbackServer):
    """Start with :meth:`start`; point a client at :attr:`endpoint_url`."""

    handler = _Handler

    @property
    def endpoint_url(self) -> str:
        return self.url
