"""Bedrock Runtime's Converse API (``converse``, ``converse_stream``) onto the GenAI core.

botocore hands back plain dicts. Converse reports ``inputTokens`` without the tokens read from or
written to the prompt cache; the conventions' ``gen_ai.usage.input_tokens`` includes them, so
they are added up (as for Anthropic). Amazon Nova's InvokeModel bodies use the same shapes, so
the readers here serve that family too (its cache counts are named ``...InputTokenCount``).
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

from opentelemetry.semconv._incubating.attributes import aws_attributes as aws
from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as ga
from opentelemetry.util.types import AttributeValue

from llm_otel.genai import (
    BaseAdapter,
    IterableStreamProxy,
    LLMRequest,
    LLMResponse,
    Message,
    reasoning_part,
    text_part,
    tool_call_part,
)
from llm_otel.instrumentation._fields import (
    Parameter,
    as_index,
    as_int,
    as_number,
    as_text,
    endpoint,
    field,
    finish_reason,
    items,
    parameters,
    parse_arguments,
)

__all__ = [
    "PROVIDER",
    "ConverseAdapter",
    "ConverseStreamAccumulator",
    "converse_output",
    "model_request",
    "server",
    "usage_into",
]

PROVIDER = ga.GenAiProviderNameValues.AWS_BEDROCK.value

FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_call",
    "guardrail_intervened": "content_filter",
    "content_filtered": "content_filter",
}


def finish(reason: Any) -> str | None:
    return finish_reason(reason, FINISH_REASONS)


def server(instance: Any) -> tuple[str | None, int | None]:
    """The client's endpoint (``bedrock-runtime.<region>.amazonaws.com``, or ``endpoint_url``)."""
    return endpoint(getattr(getattr(instance, "meta", None), "endpoint_url", None))


def request_id(result: Any) -> dict[str, AttributeValue]:
    rid = field(field(result, "ResponseMetadata"), "RequestId")
    return {aws.AWS_REQUEST_ID: rid} if isinstance(rid, str) and rid else {}


def error_response(exc: BaseException) -> LLMResponse | None:
    """A failed call's request id: botocore's ClientError carries the error response."""
    attributes = request_id(getattr(exc, "response", None))
    return LLMResponse(attributes=attributes) if attributes else None


def error_type(exc: BaseException) -> str | None:
    """botocore's ClientError: the HTTP status, or the error code of an error sent mid-stream
    (``throttlingException``, ...); None for anything else (the core's default)."""
    response = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return None
    status = (response.get("ResponseMetadata") or {}).get("HTTPStatusCode")
    if isinstance(status, int) and not isinstance(status, bool) and 100 <= status <= 599:
        return str(status)
    code = (response.get("Error") or {}).get("Code")
    return code if isinstance(code, str) and code else None


def usage_into(response: LLMResponse, usage: Any) -> None:
    """Converse (and Nova) usage -> the conventions' counts (input includes the cache)."""
    if usage is None:
        return
    read = as_int(field(usage, "cacheReadInputTokens", field(usage, "cacheReadInputTokenCount")))
    wrote = as_int(field(usage, "cacheWriteInputTokens", field(usage, "cacheWriteInputTokenCount")))
    if read is not None:
        response.cache_read_input_tokens = read
    if wrote is not None:
        response.cache_creation_input_tokens = wrote
    fresh = as_int(field(usage, "inputTokens"))
    if fresh is not None:
        response.input_tokens = fresh + (read or 0) + (wrote or 0)
    output = as_int(field(usage, "outputTokens"))
    if output is not None:
        response.output_tokens = output


def _blob(modality: str, block: Any) -> dict[str, Any]:
    source = field(block, "source")
    data = field(source, "bytes")
    kind = field(block, "format")
    part: dict[str, Any] = {"type": "blob", "modality": modality}
    if isinstance(kind, str):
        part["mime_type"] = f"{modality}/{kind}" if modality != "document" else kind
    if isinstance(data, (bytes, bytearray)):
        part["content"] = base64.b64encode(data).decode("ascii")
        return part
    location = field(field(source, "s3Location"), "uri")
    if isinstance(location, str):
        return {"type": "uri", "modality": modality, "uri": location}
    part["content"] = data
    return part


def content_parts(content: Any) -> list[dict[str, Any]]:
    """Converse content blocks as the conventions' message parts."""
    parts: list[dict[str, Any]] = []
    for block in content or ():
        if not isinstance(block, Mapping):
            continue
        if "text" in block:
            parts.append(text_part(block["text"]))
        elif "toolUse" in block:
            use = block["toolUse"]
            parts.append(
                tool_call_part(field(use, "toolUseId"), field(use, "name"), field(use, "input"))
            )
        elif "toolResult" in block:
            result = block["toolResult"]
            parts.append(
                {
                    "type": "tool_call_response",
                    "id": field(result, "toolUseId"),
                    "response": [
                        p.get("content", p) for p in content_parts(field(result, "content"))
                    ],
                }
            )
        elif "json" in block:
            parts.append(text_part(block["json"]))
        elif "reasoningContent" in block:
            text = field(field(block["reasoningContent"], "reasoningText"), "text", "")
            parts.append(reasoning_part(text))
        elif "image" in block or "video" in block or "document" in block:
            modality = next(k for k in ("image", "video", "document") if k in block)
            parts.append(_blob(modality, block[modality]))
        elif "guardContent" in block:
            text = field(field(block["guardContent"], "text"), "text", "")
            parts.append(text_part(text))
        elif "cachePoint" not in block:
            kind = next(iter(block), "unknown")
            parts.append({"type": str(kind), "content": block[kind] if block else None})
    return parts


def input_messages(messages: Any) -> list[Message]:
    return [
        {"role": field(m, "role", "user"), "parts": content_parts(field(m, "content"))}
        for m in messages or ()
    ]


def tool_definitions(tool_config: Any) -> list[Any] | None:
    tools = []
    for tool in items(field(tool_config, "tools")):
        spec = field(tool, "toolSpec")
        if spec is None:
            continue
        tools.append(
            {
                "type": "function",
                "name": field(spec, "name"),
                "description": field(spec, "description"),
                "parameters": field(field(spec, "inputSchema"), "json"),
            }
        )
    return tools or None


_INFERENCE: tuple[Parameter, ...] = (
    ("temperature", ga.GEN_AI_REQUEST_TEMPERATURE, as_number),
    ("topP", ga.GEN_AI_REQUEST_TOP_P, as_number),
    ("maxTokens", ga.GEN_AI_REQUEST_MAX_TOKENS, as_int),
    ("max_new_tokens", ga.GEN_AI_REQUEST_MAX_TOKENS, as_int),  # Nova's InvokeModel body
    ("topK", ga.GEN_AI_REQUEST_TOP_K, as_int),
)


def inference_attributes(config: Any, extra: Any) -> dict[str, AttributeValue]:
    """``inferenceConfig`` (camelCase) plus ``top_k``/``topK`` from the model-specific fields."""
    attrs = parameters(config, _INFERENCE, stop="stopSequences")
    top_k = as_int(field(extra, "top_k", field(extra, "topK")))
    if top_k is None:
        top_k = as_int(field(field(extra, "inferenceConfig"), "topK"))
    if top_k is not None:
        attrs[ga.GEN_AI_REQUEST_TOP_K] = top_k
    return attrs


def api_params(args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> Mapping[str, Any]:
    """``_make_api_call(operation_name, api_params)``'s parameters."""
    params = args[1] if len(args) > 1 else kwargs.get("api_params")
    return params if isinstance(params, Mapping) else {}


def model_request(instance: Any, params: Mapping[str, Any], streaming: bool) -> LLMRequest:
    """What every Bedrock model call has: operation (``chat`` until the body says otherwise),
    provider, ``modelId``, the client's endpoint."""
    host, port = server(instance)
    model = params.get("modelId")
    return LLMRequest(
        operation="chat",
        provider=PROVIDER,
        model=as_text(model),
        server_address=host,
        server_port=port,
        stream=streaming,
    )


def converse_output(response: LLMResponse, result: Any, capture: bool) -> None:
    """Reads a Converse-shaped result (``output.message``, ``stopReason``, ``usage``)."""
    reason = finish(field(result, "stopReason"))
    if reason:
        response.finish_reasons = [reason]
    usage_into(response, field(result, "usage"))
    if capture:
        message = field(field(result, "output"), "message")
        response.output_messages = [
            {
                "role": field(message, "role", "assistant"),
                "parts": content_parts(field(message, "content")),
                "finish_reason": reason,
            }
        ]


class ConverseAdapter(BaseAdapter):
    """``converse`` / ``converse_stream``: operation ``chat``."""

    def __init__(self, streaming: bool = False) -> None:
        self._streaming = streaming

    def request(
        self, instance: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any], capture: bool
    ) -> LLMRequest:
        params = api_params(args, kwargs)
        request = model_request(instance, params, self._streaming)
        request.attributes = inference_attributes(
            params.get("inferenceConfig"), params.get("additionalModelRequestFields")
        )
        if capture:
            request.input_messages = input_messages(params.get("messages"))
            system = params.get("system")
            if system:
                request.system_instructions = content_parts(system)
            request.tool_definitions = tool_definitions(params.get("toolConfig"))
        return request

    error_response = staticmethod(error_response)
    error_type = staticmethod(error_type)

    def response(self, result: Any, capture: bool) -> LLMResponse | None:
        response = LLMResponse(attributes=request_id(result))
        converse_output(response, result, capture)
        return response

    def stream_accumulator(self, result: Any, capture: bool) -> ConverseStreamAccumulator | None:
        if not self._streaming or field(result, "stream") is None:
            return None
        return ConverseStreamAccumulator(capture, request_id(result))

    def embed_stream(self, result: Any, proxy: Any) -> Any:
        result["stream"] = proxy(result["stream"], IterableStreamProxy)
        return result


class ConverseStreamAccumulator:
    """Folds ConverseStream events (and Nova's InvokeModel stream chunks, the same shapes)."""

    __slots__ = ("_blocks", "_capture", "_reason", "_response", "_role", "error_type")

    def __init__(self, capture: bool, attributes: dict[str, AttributeValue] | None = None) -> None:
        self._capture = capture
        self._response = LLMResponse(attributes=attributes or {})
        self._reason: str | None = None
        self._role = "assistant"
        self._blocks: dict[int, dict[str, Any]] = {}
        self.error_type: str | None = None

    def add(self, event: Any) -> None:
        if not isinstance(event, Mapping):
            return
        if "contentBlockDelta" in event:
            if self._capture:
                self._delta(event["contentBlockDelta"])
        elif "messageStart" in event:
            self._role = as_text(field(event["messageStart"], "role")) or "assistant"
        elif "contentBlockStart" in event:
            if self._capture:
                body = event["contentBlockStart"]
                use = field(field(body, "start"), "toolUse")
                if use is not None:
                    self._block(as_index(field(body, "contentBlockIndex", 0)))["tool"] = use
        elif "messageStop" in event:
            self._reason = finish(field(event["messageStop"], "stopReason")) or self._reason
        elif "metadata" in event:
            usage_into(self._response, field(event["metadata"], "usage"))

    def _delta(self, body: Any) -> None:
        """A content block's next piece: text, tool-call arguments (JSON text) or reasoning."""
        delta = field(body, "delta")
        if not isinstance(delta, Mapping):
            return
        state = self._block(as_index(field(body, "contentBlockIndex", 0)))
        if "text" in delta:
            state["text"].append(as_text(delta["text"]) or "")
        elif "toolUse" in delta:
            state["json"].append(as_text(field(delta["toolUse"], "input")) or "")
        elif "reasoningContent" in delta:
            state["reasoning"].append(as_text(field(delta["reasoningContent"], "text")) or "")

    def _block(self, index: int) -> dict[str, Any]:
        state = self._blocks.get(index)
        if state is None:
            state = self._blocks[index] = {"tool": None, "text": [], "json": [], "reasoning": []}
        return state

    def complete(self) -> bool:
        """Whether the stream reached the provider's final event (a cut stream does not)."""
        return self._reason is not None

    def response(self) -> LLMResponse:
        response = self._response
        if self._reason:
            response.finish_reasons = [self._reason]
        if self._capture:
            parts: list[dict[str, Any]] = []
            for index in sorted(self._blocks):
                state = self._blocks[index]
                if state["reasoning"]:
                    parts.append(reasoning_part("".join(state["reasoning"])))
                if state["tool"] is not None:
                    parts.append(
                        tool_call_part(
                            field(state["tool"], "toolUseId"),
                            field(state["tool"], "name"),
                            parse_arguments("".join(state["json"])),
                        )
                    )
                elif state["text"]:
                    parts.append(text_part("".join(state["text"])))
            response.output_messages = [
                {"role": self._role, "parts": parts, "finish_reason": self._reason}
            ]
        return response
