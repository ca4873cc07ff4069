"""google-genai (``client.models`` generate_content, its stream, embed_content) onto the core.

The public ``generate_content`` may make several model calls in one (automatic function calling,
stream continuation hops); the SDK's private ``_generate_content`` / ``_generate_content_stream``
/ ``_embed_content`` make exactly one request each, so those are what is wrapped: one span per
model call. Operation ``generate_content``; provider ``gcp.gemini`` for the Gemini API and
``gcp.vertex_ai`` for a ``vertexai=True`` client.
"""

from __future__ import annotations

import base64
import inspect
from collections.abc import Mapping
from typing import Any

from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as ga

from llm_otel.genai import (
    BaseAdapter,
    LLMRequest,
    LLMResponse,
    Message,
    text_part,
    tool_call_part,
    tool_call_response_part,
)
from llm_otel.instrumentation._fields import (
    Parameter,
    as_int,
    as_number,
    as_text,
    endpoint,
    field,
    items,
    parameters,
)

__all__ = ["EmbedAdapter", "GenerateAdapter", "StreamAccumulator"]

FINISH_REASONS = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    "SAFETY": "content_filter",
    "RECITATION": "content_filter",
    "BLOCKLIST": "content_filter",
    "PROHIBITED_CONTENT": "content_filter",
    "SPII": "content_filter",
    "IMAGE_SAFETY": "content_filter",
    "MALFORMED_FUNCTION_CALL": "error",
    "OTHER": "error",
}

_CONFIG: tuple[Parameter, ...] = (
    ("temperature", ga.GEN_AI_REQUEST_TEMPERATURE, as_number),
    ("top_p", ga.GEN_AI_REQUEST_TOP_P, as_number),
    ("top_k", ga.GEN_AI_REQUEST_TOP_K, as_number),
    ("max_output_tokens", ga.GEN_AI_REQUEST_MAX_TOKENS, as_int),
    ("seed", ga.GEN_AI_REQUEST_SEED, as_int),
    ("presence_penalty", ga.GEN_AI_REQUEST_PRESENCE_PENALTY, as_number),
    ("frequency_penalty", ga.GEN_AI_REQUEST_FREQUENCY_PENALTY, as_number),
)


# An enum member's ``value`` is a Python-level property (two frames a read): read once here.
_VERTEX_AI = ga.GenAiProviderNameValues.GCP_VERTEX_AI.value
_GEMINI = ga.GenAiProviderNameValues.GCP_GEMINI.value


def _identity(instance: Any) -> tuple[str, str | None, int | None]:
    api = getattr(instance, "_api_client", None)
    provider = _VERTEX_AI if getattr(api, "vertexai", False) else _GEMINI
    options = getattr(api, "_http_options", None)
    return provider, *endpoint(getattr(options, "base_url", None))


def _enum(value: Any) -> str | None:
    """An SDK enum or string as its wire value (``FinishReason.STOP`` -> ``STOP``)."""
    if value is None:
        return None
    return str(getattr(value, "value", value))


def _finish(value: Any) -> str | None:
    reason = _enum(value)
    if not reason or reason == "FINISH_REASON_UNSPECIFIED":
        return None
    return FINISH_REASONS.get(reason, reason.lower())


def _parts(parts: Any) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for part in parts or ():
        if isinstance(part, str):
            out.append(text_part(part))
            continue
        text = field(part, "text")
        call = field(part, "function_call")
        result = field(part, "function_response")
        inline = field(part, "inline_data")
        file_data = field(part, "file_data")
        if isinstance(text, str):
            kind = "reasoning" if field(part, "thought") else "text"
            out.append({"type": kind, "content": text})
        elif call is not None:
            out.append(
                tool_call_part(
                    field(call, "id"), field(call, "name"), dict(field(call, "args") or {})
                )
            )
        elif result is not None:
            out.append(
                tool_call_response_part(field(result, "id"), dict(field(result, "response") or {}))
            )
        elif inline is not None:
            data = field(inline, "data", b"")
            if isinstance(data, bytes):
                data = base64.b64encode(data).decode()
            mime = field(inline, "mime_type")
            modality = str(mime).split("/", 1)[0] if mime else "image"
            out.append({"type": "blob", "modality": modality, "mime_type": mime, "content": data})
        elif file_data is not None:
            out.append(
                {
                    "type": "uri",
                    "mime_type": field(file_data, "mime_type"),
                    "uri": field(file_data, "file_uri"),
                }
            )
        else:
            out.append({"type": "unknown", "content": str(part)})
    return out


def _role(role: Any) -> str:
    return "assistant" if role == "model" else str(role or "user")


def _contents(contents: Any) -> list[Message]:
    if isinstance(contents, str) or not isinstance(contents, (list, tuple)):
        contents = [contents]
    messages: list[Message] = []
    loose: list[Any] = []  # bare strings and parts form one user message
    for item in contents:
        if isinstance(item, str) or field(item, "parts") is None:
            loose.append(item)
            continue
        messages.append({"role": _role(field(item, "role")), "parts": _parts(field(item, "parts"))})
    if loose:
        messages.append({"role": "user", "parts": _parts(loose)})
    return messages


def _usage(response: LLMResponse, usage: Any) -> None:
    if usage is None:
        return
    prompt = as_int(field(usage, "prompt_token_count"))
    if prompt is not None:
        response.input_tokens = prompt  # includes cached content tokens
    candidates = as_int(field(usage, "candidates_token_count"))
    thoughts = as_int(field(usage, "thoughts_token_count"))
    if candidates is not None or thoughts is not None:
        # Thinking tokens are output the model generated (and is billed for); the conventions'
        # output count includes reasoning, as OpenAI's completion_tokens does.
        response.output_tokens = (candidates or 0) + (thoughts or 0)
    if thoughts is not None:
        response.reasoning_output_tokens = thoughts
    cached = as_int(field(usage, "cached_content_token_count"))
    if cached is not None:
        response.cache_read_input_tokens = cached


def _output(candidate: Any) -> Message:
    content = field(candidate, "content")
    parts = _parts(field(content, "parts"))
    reason = _finish(field(candidate, "finish_reason"))
    if any(p["type"] == "tool_call" for p in parts):
        reason = "tool_call"
    return {"role": "assistant", "parts": parts, "finish_reason": reason}


class GenerateAdapter(BaseAdapter):
    """``_generate_content`` / ``_generate_content_stream``: operation ``generate_content``."""

    def __init__(self, streaming: bool = False) -> None:
        self._streaming = streaming

    def request(
        self, instance: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any], capture: bool
    ) -> LLMRequest:
        provider, host, port = _identity(instance)
        config = kwargs.get("config")
        attrs = parameters(config, _CONFIG, stop="stop_sequences")
        count = as_int(field(config, "candidate_count"))
        if count is not None and count != 1:
            attrs[ga.GEN_AI_REQUEST_CHOICE_COUNT] = count
        if field(config, "response_mime_type") == "application/json" or field(
            config, "response_schema"
        ):
            attrs[ga.GEN_AI_OUTPUT_TYPE] = "json"
        model = kwargs.get("model")
        request = LLMRequest(
            operation="generate_content",
            provider=provider,
            model=as_text(model),
            server_address=host,
            server_port=port,
            stream=self._streaming,
            attributes=attrs,
        )
        if capture:
            request.input_messages = _contents(kwargs.get("contents"))
            system = field(config, "system_instruction")
            if system is not None:
                parts = field(system, "parts")
                request.system_instructions = _parts(parts if parts is not None else [system])
            tools = field(config, "tools")
            if tools:
                request.tool_definitions = [
                    t if isinstance(t, dict) else _dump(t) for t in tools if not callable(t)
                ] or None
        return request

    def response(self, result: Any, capture: bool) -> LLMResponse | None:
        response = LLMResponse(
            response_id=field(result, "response_id"), response_model=field(result, "model_version")
        )
        candidates = items(field(result, "candidates"))
        reasons = [r for r in (_finish(field(c, "finish_reason")) for c in candidates) if r]
        if reasons:
            response.finish_reasons = reasons
        _usage(response, field(result, "usage_metadata"))
        if capture:
            response.output_messages = [_output(c) for c in candidates]
        return response

    def stream_accumulator(self, result: Any, capture: bool) -> StreamAccumulator | None:
        if not (inspect.isgenerator(result) or inspect.isasyncgen(result)):
            return None
        return StreamAccumulator(capture)


def _dump(model: Any) -> Any:
    dump = getattr(model, "model_dump", None)
    return dump(exclude_none=True, mode="json") if callable(dump) else str(model)


class EmbedAdapter(BaseAdapter):
    """``_embed_content``: operation ``embeddings``."""

    def request(
        self, instance: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any], capture: bool
    ) -> LLMRequest:
        provider, host, port = _identity(instance)
        model = kwargs.get("model")
        request = LLMRequest(
            operation="embeddings",
            provider=provider,
            model=as_text(model),
            server_address=host,
            server_port=port,
        )
        dimensions = as_int(field(kwargs.get("config"), "output_dimensionality"))
        if dimensions is not None:
            request.attributes[ga.GEN_AI_EMBEDDINGS_DIMENSION_COUNT] = dimensions
        return request

    def response(self, result: Any, capture: bool) -> LLMResponse | None:
        response = LLMResponse()
        total = 0
        counted = False
        for embedding in items(field(result, "embeddings")):  # Vertex AI reports token counts
            count = as_int(field(field(embedding, "statistics"), "token_count"))
            if count is None and isinstance(
                field(field(embedding, "statistics"), "token_count"), float
            ):
                count = int(field(field(embedding, "statistics"), "token_count"))
            if count is not None:
                total += count
                counted = True
        if counted:
            response.input_tokens = total
        return response


class StreamAccumulator:
    """Folds streamed ``GenerateContentResponse`` chunks: text per candidate, last usage."""

    __slots__ = ("_candidates", "_capture", "_reasons", "_response", "error_type")

    def __init__(self, capture: bool) -> None:
        self._capture = capture
        self._response = LLMResponse()
        self._reasons: dict[int, str] = {}
        self._candidates: dict[int, list[Any]] = {}
        self.error_type: str | None = None

    def add(self, chunk: Any) -> None:
        response = self._response
        if response.response_id is None:
            response.response_id = field(chunk, "response_id")
            response.response_model = field(chunk, "model_version")
        usage = field(chunk, "usage_metadata")
        if usage is not None:
            _usage(response, usage)
        for position, candidate in enumerate(items(field(chunk, "candidates"))):
            index = as_int(field(candidate, "index")) or position
            reason = _finish(field(candidate, "finish_reason"))
            if reason:
                self._reasons[index] = reason
            if self._capture:
                parts = items(field(field(candidate, "content"), "parts"))
                self._candidates.setdefault(index, []).extend(parts)

    def complete(self) -> bool:
        """Whether a candidate got its finish reason (a cut stream has none)."""
        return bool(self._reasons)

    def response(self) -> LLMResponse:
        response = self._response
        if self._reasons:
            response.finish_reasons = [self._reasons[i] for i in sorted(self._reasons)]
        if self._capture:
            messages: list[Message] = []
            for index in sorted(set(self._candidates) | set(self._reasons)):
                parts = _merge_text(_parts(self._candidates.get(index, [])))
                reason = self._reasons.get(index)
                if any(p["type"] == "tool_call" for p in parts):
                    reason = "tool_call"
                messages.append({"role": "assistant", "parts": parts, "finish_reason": reason})
            response.output_messages = messages
        return response


def _merge_text(parts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Adjacent streamed text (or reasoning) pieces as one part."""
    merged: list[dict[str, Any]] = []
    for part in parts:
        last = merged[-1] if merged else None
        if (
            last is not None
            and part["type"] in ("text", "reasoning")
            and last["type"] == part["type"]
        ):
            last["content"] += part["content"]
        else:
            merged.append(dict(part))
    return merged
