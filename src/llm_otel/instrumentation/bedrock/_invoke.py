"""Bedrock Runtime's ``invoke_model`` / ``invoke_model_with_response_stream`` onto the core.

The request and response bodies are each model family's own JSON, so the family is told from the
body's shape, not the model id (which may be an inference profile or an ARN):

- Anthropic Claude (``anthropic_version``; Messages API): read as the anthropic adapter reads it;
- Amazon Nova (``messages`` with ``inferenceConfig`` / ``schemaVersion``): the Converse shapes;
- OpenAI-style chat (``messages``, answered with ``choices``: Mistral, AI21 Jamba, gpt-oss,
  DeepSeek, ...): read as the openai adapter reads it;
- prompt completions (``prompt``: Meta Llama, Mistral 7B/8x7B, Claude's legacy API;
  ``inputText``: Amazon Titan Text): operation ``text_completion``;
- embeddings (``texts``: Cohere Embed; ``inputText`` on an embedding model: Titan Embeddings).

Usage comes from the body where it has it (cache counts included) and otherwise from the
``X-Amzn-Bedrock-Input-Token-Count`` / ``-Output-Token-Count`` headers, which Bedrock sends for
every model. A non-streamed response body is a one-shot stream: it is read here only when it is
JSON of at most 4 MiB, and handed back as a new ``StreamingBody`` over the same bytes.
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping
from typing import Any

from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as ga
from opentelemetry.util.types import AttributeValue

from llm_otel.genai import (
    BaseAdapter,
    IterableStreamProxy,
    LLMRequest,
    LLMResponse,
    Message,
    text_part,
)
from llm_otel.instrumentation._fields import (
    Parameter,
    as_int,
    as_number,
    field,
    finish_reason,
    parameters,
    stop_sequences,
)
from llm_otel.instrumentation.anthropic import compat as anthropic
from llm_otel.instrumentation.bedrock._converse import (
    ConverseStreamAccumulator,
    api_params,
    content_parts,
    converse_output,
    error_response,
    error_type,
    inference_attributes,
    model_request,
    request_id,
    tool_definitions,
)
from llm_otel.instrumentation.bedrock._converse import (
    input_messages as converse_messages,
)
from llm_otel.instrumentation.openai import compat as openai

__all__ = ["InvokeAdapter", "InvokeStreamAccumulator"]

MAX_BODY = 4 << 20

# Titan's completionReason, Llama's and Mistral's stop_reason, Claude legacy, Cohere Command.
FINISH_REASONS = {
    "FINISH": "stop",
    "STOP_CRITERIA_MET": "stop",
    "LENGTH": "length",
    "MAX_TOKENS": "length",
    "CONTENT_FILTERED": "content_filter",
    "RAG_QUERY_WHEN_RAG_DISABLED": "error",
    "stop": "stop",
    "stop_sequence": "stop",
    "length": "length",
    "model_length": "length",
    "max_tokens": "length",
    "COMPLETE": "stop",
    "ERROR": "error",
    "ERROR_TOXIC": "content_filter",
}


def _json(data: Any) -> Any:
    if isinstance(data, (bytes, bytearray, str)) and len(data) <= MAX_BODY:
        try:
            return json.loads(data)
        except ValueError:
            return None
    return None


def _text_message(role: str, text: Any) -> list[Message]:
    if not isinstance(text, str):
        return []
    return [{"role": role, "parts": [text_part(text)]}]


def _chat_family(body: Mapping[str, Any]) -> str:
    if "anthropic_version" in body:
        return "anthropic"
    if "inferenceConfig" in body or "schemaVersion" in body:
        return "nova"
    if isinstance(body.get("system"), list) and "max_tokens" not in body:
        return "nova"
    return "openai"


class InvokeAdapter(BaseAdapter):
    """``invoke_model`` / ``invoke_model_with_response_stream``."""

    def __init__(self, streaming: bool = False) -> None:
        self._streaming = streaming

    def request(
        self, instance: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any], capture: bool
    ) -> LLMRequest:
        params = api_params(args, kwargs)
        request = model_request(instance, params, self._streaming)
        body = _json(params.get("body"))
        if isinstance(body, Mapping):
            _describe(request, body, request.model or "", capture)
        return request

    error_response = staticmethod(error_response)
    error_type = staticmethod(error_type)

    def response(self, result: Any, capture: bool) -> LLMResponse | None:
        response = LLMResponse(attributes=request_id(result))
        body = _json(_read_body(result))
        if isinstance(body, Mapping):
            _read_output(response, body, capture)
        _header_usage(response, result)
        return response

    def stream_accumulator(self, result: Any, capture: bool) -> InvokeStreamAccumulator | None:
        if not self._streaming or field(result, "body") is None:
            return None
        return InvokeStreamAccumulator(capture, request_id(result))

    def embed_stream(self, result: Any, proxy: Any) -> Any:
        result["body"] = proxy(result["body"], IterableStreamProxy)
        return result


def _describe(request: LLMRequest, body: Mapping[str, Any], model: str, capture: bool) -> None:
    """The request from an InvokeModel body, whose shape says which model family it is for."""
    if "messages" in body:
        describe = _CHAT_FAMILIES.get(_chat_family(body), _openai_chat)
        request.attributes.update(describe(request, body, capture))
    elif "texts" in body or ("inputText" in body and "embed" in model.lower()):
        request.operation = "embeddings"
        dimensions = as_int(body.get("dimensions", body.get("output_dimension")))
        if dimensions is not None:
            request.attributes[ga.GEN_AI_EMBEDDINGS_DIMENSION_COUNT] = dimensions
    elif "inputText" in body:  # Titan Text
        request.operation = "text_completion"
        request.attributes.update(_titan_text(request, body, capture))
    else:
        _prompt_completion(request, body, capture)


def _anthropic_chat(
    request: LLMRequest, body: Mapping[str, Any], capture: bool
) -> dict[str, AttributeValue]:
    if capture:
        request.input_messages = anthropic.input_messages(body.get("messages"))
        if body.get("system"):
            request.system_instructions = anthropic.block_parts(body.get("system"))
        if body.get("tools"):
            request.tool_definitions = list(body["tools"])
    return anthropic.request_attributes(body)


def _nova_chat(
    request: LLMRequest, body: Mapping[str, Any], capture: bool
) -> dict[str, AttributeValue]:
    if capture:
        request.input_messages = converse_messages(body.get("messages"))
        if body.get("system"):
            request.system_instructions = content_parts(body.get("system"))
        request.tool_definitions = tool_definitions(body.get("toolConfig"))
    return inference_attributes(body.get("inferenceConfig"), None)


def _openai_chat(
    request: LLMRequest, body: Mapping[str, Any], capture: bool
) -> dict[str, AttributeValue]:
    if capture:
        request.input_messages = openai.input_messages(body.get("messages"))
        if body.get("tools"):
            request.tool_definitions = list(body["tools"])
    return openai.request_attributes(body)


_CHAT_FAMILIES = {"anthropic": _anthropic_chat, "nova": _nova_chat}


def _titan_text(
    request: LLMRequest, body: Mapping[str, Any], capture: bool
) -> dict[str, AttributeValue]:
    config = body.get("textGenerationConfig")
    attrs = inference_attributes(config, None)
    maximum = as_int(field(config, "maxTokenCount"))
    if maximum is not None:
        attrs[ga.GEN_AI_REQUEST_MAX_TOKENS] = maximum
    if capture:
        request.input_messages = _text_message("user", body.get("inputText"))
    return attrs


def _prompt_completion(request: LLMRequest, body: Mapping[str, Any], capture: bool) -> None:
    """Llama, Mistral and Claude's legacy text completions (``prompt``), Cohere Command R
    (``message``, a chat)."""
    key = "prompt" if "prompt" in body else "message" if "message" in body else None
    if key is None:
        return
    if key == "prompt":
        request.operation = "text_completion"
    request.attributes.update(_prompt_attributes(body))
    if capture:
        request.input_messages = _text_message("user", body.get(key))


_PROMPT_PARAMETERS: tuple[Parameter, ...] = (
    ("temperature", ga.GEN_AI_REQUEST_TEMPERATURE, as_number),
    (("top_p", "p"), ga.GEN_AI_REQUEST_TOP_P, as_number),
    (("top_k", "k"), ga.GEN_AI_REQUEST_TOP_K, as_int),
    (("max_gen_len", "max_tokens", "max_tokens_to_sample"), ga.GEN_AI_REQUEST_MAX_TOKENS, as_int),
    ("seed", ga.GEN_AI_REQUEST_SEED, as_int),
)


def _prompt_attributes(body: Mapping[str, Any]) -> dict[str, AttributeValue]:
    attrs = parameters(body, _PROMPT_PARAMETERS)
    sequences = stop_sequences(body.get("stop", body.get("stop_sequences")))
    if sequences:
        attrs[ga.GEN_AI_REQUEST_STOP_SEQUENCES] = sequences
    return attrs


class _FailedBody:
    """Stands in for a response body whose read failed: reading it fails the same way."""

    def __init__(self, error: BaseException) -> None:
        self._error = error

    def read(self, *args: Any) -> bytes:
        raise self._error

    def close(self) -> None:
        pass


def _read_body(result: Any) -> bytes | None:
    """The non-streamed body's bytes, the result's body replaced by an equivalent one."""
    if not isinstance(result, dict):
        return None
    body = result.get("body")
    headers = field(field(result, "ResponseMetadata"), "HTTPHeaders") or {}
    length = headers.get("content-length")
    kind = str(result.get("contentType") or headers.get("content-type") or "")
    if body is None or not hasattr(body, "read") or "json" not in kind:
        return None
    if not (isinstance(length, str) and length.isdigit() and int(length) <= MAX_BODY):
        return None
    from botocore.response import StreamingBody  # before the read: nothing may fail after it

    try:
        data = body.read()
    except Exception as exc:
        result["body"] = _FailedBody(exc)
        return None
    result["body"] = StreamingBody(io.BytesIO(data), len(data))
    return data if isinstance(data, bytes) else None


def _header_usage(response: LLMResponse, result: Any) -> None:
    headers = field(field(result, "ResponseMetadata"), "HTTPHeaders") or {}
    for header, name in (
        ("x-amzn-bedrock-input-token-count", "input_tokens"),
        ("x-amzn-bedrock-output-token-count", "output_tokens"),
    ):
        value = headers.get(header)
        if getattr(response, name) is None and isinstance(value, str) and value.isdigit():
            setattr(response, name, int(value))


def _read_output(response: LLMResponse, body: Mapping[str, Any], capture: bool) -> None:
    if "choices" in body:
        _merge(response, openai.ChatAdapter().response(body, capture))
    elif body.get("type") == "message" or ("content" in body and "stop_reason" in body):
        _merge(response, anthropic.MessagesAdapter().response(body, capture))
    elif "output" in body and field(body["output"], "message") is not None:
        converse_output(response, body, capture)
    elif "embedding" in body or "embeddings" in body:
        response.input_tokens = as_int(body.get("inputTextTokenCount"))
        if isinstance(body.get("id"), str):
            response.response_id = body["id"]
    else:
        simple = _SimpleText(capture)
        simple.add(body)
        _merge(response, simple.response())


def _merge(into: LLMResponse, source: LLMResponse | None) -> None:
    if source is None:
        return
    for name in source.__slots__:
        value = getattr(source, name)
        if name == "attributes":
            into.attributes.update(value)
        elif value is not None:
            setattr(into, name, value)


def _counts(response: LLMResponse, body: Mapping[str, Any], inputs: str, outputs: str) -> None:
    """The token counts a body (or stream chunk) carries; a chunk without them keeps the last."""
    for key, name in ((inputs, "input_tokens"), (outputs, "output_tokens")):
        value = as_int(body.get(key))
        if value is not None:
            setattr(response, name, value)


class _SimpleText:
    """Titan Text, Llama, Mistral (prompt), Claude legacy and Cohere Command bodies and chunks."""

    __slots__ = ("_capture", "_reason", "_response", "_text", "error_type")

    def __init__(self, capture: bool) -> None:
        self._capture = capture
        self._response = LLMResponse()
        self._reason: str | None = None
        self._text: list[str] = []
        self.error_type: str | None = None

    def add(self, body: Mapping[str, Any]) -> None:
        response = self._response
        texts: list[Any] = []
        reasons: list[Any] = []
        if "results" in body:  # Titan Text
            response.input_tokens = as_int(body.get("inputTextTokenCount"))
            results = body.get("results") or ()
            counts = [as_int(field(r, "tokenCount")) for r in results]
            if counts and None not in counts:
                response.output_tokens = sum(c for c in counts if c is not None)
            texts += [field(r, "outputText") for r in results]
            reasons += [field(r, "completionReason") for r in results]
        elif "outputText" in body:  # Titan Text chunk
            texts.append(body.get("outputText"))
            reasons.append(body.get("completionReason"))
            _counts(response, body, "inputTextTokenCount", "totalOutputTextTokenCount")
        elif "generation" in body:  # Llama
            texts.append(body.get("generation"))
            reasons.append(body.get("stop_reason"))
            _counts(response, body, "prompt_token_count", "generation_token_count")
        elif "outputs" in body:  # Mistral
            for output in body.get("outputs") or ():
                texts.append(field(output, "text"))
                reasons.append(field(output, "stop_reason"))
        elif "completion" in body:  # Claude's legacy text completions
            texts.append(body.get("completion"))
            reasons.append(body.get("stop_reason"))
        elif "text" in body:  # Cohere Command R
            texts.append(body.get("text"))
            reasons.append(body.get("finish_reason"))
            if isinstance(body.get("generation_id"), str):
                response.response_id = body["generation_id"]
        for reason in reasons:
            self._reason = finish_reason(reason, FINISH_REASONS) or self._reason
        if self._capture:
            self._text.extend(t for t in texts if isinstance(t, str))

    def response(self) -> LLMResponse:
        response = self._response
        if self._reason:
            response.finish_reasons = [self._reason]
        if self._capture:
            response.output_messages = [
                {
                    "role": "assistant",
                    "parts": [text_part("".join(self._text))],
                    "finish_reason": self._reason,
                }
            ]
        return response


class InvokeStreamAccumulator:
    """Folds ``{"chunk": {"bytes": ...}}`` events; the first chunk's shape picks the reader."""

    __slots__ = ("_attributes", "_capture", "_delegate", "_metrics", "error_type")

    def __init__(self, capture: bool, attributes: dict[str, AttributeValue]) -> None:
        self._capture = capture
        self._attributes = attributes
        self._delegate: Any = None
        self._metrics: Any = None
        self.error_type: str | None = None

    def add(self, event: Any) -> None:
        data = _json(field(field(event, "chunk"), "bytes"))
        if not isinstance(data, dict):
            return
        metrics = data.pop("amazon-bedrock-invocationMetrics", None)
        if metrics is not None:
            self._metrics = metrics
        delegate = self._delegate
        if delegate is None:
            delegate = self._delegate = self._reader(data)
        if data:
            delegate.add(data)

    def _reader(self, data: Mapping[str, Any]) -> Any:
        if "type" in data:
            return anthropic.MessagesStreamAccumulator(self._capture)
        if data.keys() & {"messageStart", "contentBlockDelta", "messageStop", "metadata"}:
            return ConverseStreamAccumulator(self._capture)
        if "choices" in data:
            return openai.ChatStreamAccumulator(self._capture)
        return _SimpleText(self._capture)

    def response(self) -> LLMResponse:
        response = LLMResponse(attributes=dict(self._attributes))
        if self._delegate is not None:
            _merge(response, self._delegate.response())
            self.error_type = getattr(self._delegate, "error_type", None)
        metrics = self._metrics
        if metrics is not None:
            if response.input_tokens is None:
                response.input_tokens = as_int(field(metrics, "inputTokenCount"))
            if response.output_tokens is None:
                response.output_tokens = as_int(field(metrics, "outputTokenCount"))
        return response
