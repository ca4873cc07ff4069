"""Chat Completions (``client.chat.completions.create/parse``) onto the GenAI core."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as ga
from opentelemetry.semconv._incubating.attributes import openai_attributes as oa
from opentelemetry.util.types import AttributeValue

from llm_otel.genai import (
    LLMRequest,
    LLMResponse,
    Message,
    text_part,
    tool_call_part,
    tool_call_response_part,
)
from llm_otel.instrumentation._fields import (
    Parameter,
    as_index,
    as_text,
    items,
    parameter_names,
    parameters,
    reader,
    stop_sequences,
)
from llm_otel.instrumentation._raw import StainlessAdapter, unwrap_response
from llm_otel.instrumentation.openai._common import (
    as_int,
    as_number,
    client_identity,
    field,
    given,
    output_schema,
    parse_arguments,
    text_parts,
)

__all__ = ["ChatAdapter", "ChatStreamAccumulator"]

# OpenAI finish reasons -> the conventions' output message finish_reason values.
FINISH_REASONS = {
    "stop": "stop",
    "length": "length",
    "content_filter": "content_filter",
    "tool_calls": "tool_call",
    "function_call": "tool_call",
}
_PARAMETERS: tuple[Parameter, ...] = (
    ("temperature", ga.GEN_AI_REQUEST_TEMPERATURE, as_number),
    ("top_p", ga.GEN_AI_REQUEST_TOP_P, as_number),
    ("frequency_penalty", ga.GEN_AI_REQUEST_FREQUENCY_PENALTY, as_number),
    ("presence_penalty", ga.GEN_AI_REQUEST_PRESENCE_PENALTY, as_number),
    (("max_completion_tokens", "max_tokens"), ga.GEN_AI_REQUEST_MAX_TOKENS, as_int),
    ("seed", ga.GEN_AI_REQUEST_SEED, as_int),
)


def output_type(response_format: Any) -> str | None:
    kind = field(response_format, "type")
    if kind in ("json_object", "json_schema"):
        return "json"
    if kind == "text":
        return "text"
    if isinstance(response_format, type):  # parse(response_format=SomeModel)
        return "json"
    return None


# Every argument that becomes a request attribute: a call passing none of them (model and
# messages only, the common call) is answered with one set test.
_ARGUMENTS = parameter_names(_PARAMETERS) | {"n", "stop", "response_format", "service_tier"}


def request_attributes(kwargs: Mapping[str, Any]) -> dict[str, AttributeValue]:
    if kwargs.keys().isdisjoint(_ARGUMENTS):
        return {}
    attrs = parameters(kwargs, _PARAMETERS)
    n = as_int(kwargs.get("n"))
    if n is not None and n != 1:
        attrs[ga.GEN_AI_REQUEST_CHOICE_COUNT] = n
    stop = kwargs.get("stop")
    sequences = [stop] if isinstance(stop, str) else stop_sequences(stop)  # one string too
    if sequences:
        attrs[ga.GEN_AI_REQUEST_STOP_SEQUENCES] = sequences
    kind = output_type(kwargs.get("response_format"))
    if kind is not None:
        attrs[ga.GEN_AI_OUTPUT_TYPE] = kind
    tier = kwargs.get("service_tier")
    if isinstance(tier, str):
        attrs[oa.OPENAI_REQUEST_SERVICE_TIER] = tier
    return attrs


# Roles a plain {"role", "content"} message keeps as they are (not "developer", not "tool").
_PLAIN_ROLES = frozenset({"system", "user", "assistant"})


def input_messages(messages: Any) -> list[Message]:
    out: list[Message] = []
    for message in messages or ():
        if type(message) is dict and len(message) == 2:
            # Most messages: a role and a string, one text part (what the general path below
            # makes of them, without its reads and calls).
            role = message.get("role")
            content = message.get("content")
            if type(content) is str and type(role) is str and role in _PLAIN_ROLES:
                out.append({"role": role, "parts": [{"type": "text", "content": content}]})
                continue
        # One reader per message (a dict's own get for the usual dict messages), and the
        # SDKs' omitted-value sentinels taken as absent, as field() takes them.
        get = reader(message, "role")
        role = get("role")
        if type(role) is not str and not given(role):
            role = "user"
        elif role == "developer":
            role = "system"
        content = get("content")
        if content is not None and type(content) is not str and not given(content):
            content = None
        parts = text_parts(content)
        if role == "tool":
            parts = [tool_call_response_part(field(message, "tool_call_id"), _joined_text(parts))]
        calls = get("tool_calls")
        if calls:
            parts += tool_call_parts(calls)
        entry: Message = {"role": role, "parts": parts}
        name = get("name")
        if isinstance(name, str):
            entry["name"] = name
        out.append(entry)
    return out


def tool_call_parts(calls: Any) -> list[dict[str, Any]]:
    """A message's ``tool_calls`` (``id``, ``function.name``, ``function.arguments``) as the
    conventions' tool-call parts; none for anything but a list."""
    parts = []
    for call in items(calls):
        function = field(call, "function")
        parts.append(
            tool_call_part(
                field(call, "id"),
                field(function, "name"),
                parse_arguments(field(function, "arguments")),
            )
        )
    return parts


def _joined_text(parts: list[dict[str, Any]]) -> Any:
    texts = [p.get("content") for p in parts if p.get("type") == "text"]
    return texts[0] if len(texts) == 1 else texts


def usage_into(response: LLMResponse, usage: Any) -> None:
    if usage is None:
        return
    # An SDK model's counts read as plain attributes (cheaper than a reader's calls); a dict,
    # or an object without them, read by reader().
    try:
        prompt, completion = usage.prompt_tokens, usage.completion_tokens
        prompt_details = usage.prompt_tokens_details
        completion_details = usage.completion_tokens_details
    except AttributeError:  # a dict, or a model without the details (older SDKs)
        get = reader(usage, "prompt_tokens")
        prompt, completion = get("prompt_tokens"), get("completion_tokens")
        prompt_details = get("prompt_tokens_details")
        completion_details = get("completion_tokens_details")
    # plain ints from a server: no converter call for them
    response.input_tokens = prompt if type(prompt) is int else as_int(prompt)
    response.output_tokens = completion if type(completion) is int else as_int(completion)
    if prompt_details is not None:
        response.cache_read_input_tokens = as_int(_detail(prompt_details, "cached_tokens"))
    if completion_details is not None:
        response.reasoning_output_tokens = as_int(_detail(completion_details, "reasoning_tokens"))


def _detail(details: Any, name: str) -> Any:
    """A count inside a usage details object: read as an attribute of an SDK model (field()'s
    isinstance() of a pydantic model costs more than the read: ~600 instructions), else by
    field()."""
    try:
        return getattr(details, name)
    except AttributeError:
        return field(details, name)


def _service_attributes(response: LLMResponse, tier: Any, fingerprint: Any) -> None:
    """``openai.response.service_tier`` and ``.system_fingerprint``, from the response's (or
    a chunk's) fields of those names, when they are strings."""
    if isinstance(tier, str):
        response.attributes[oa.OPENAI_RESPONSE_SERVICE_TIER] = tier
    if isinstance(fingerprint, str):
        response.attributes[oa.OPENAI_RESPONSE_SYSTEM_FINGERPRINT] = fingerprint


class ChatAdapter(StainlessAdapter):
    """``chat.completions.create`` / ``parse``: operation ``chat``."""

    def request(
        self, instance: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any], capture: bool
    ) -> LLMRequest:
        provider, host, port = client_identity(instance)
        model = kwargs.get("model")
        request = LLMRequest(
            operation="chat",
            provider=provider,
            model=as_text(model),
            server_address=host,
            server_port=port,
            stream=kwargs.get("stream") is True,
            attributes=request_attributes(kwargs),
        )
        if capture:
            request.input_messages = input_messages(kwargs.get("messages"))
            request.output_schema = output_schema(kwargs.get("response_format"))
            tools = kwargs.get("tools")
            if given(tools) and tools:
                request.tool_definitions = list(tools)
        return request

    def response(self, result: Any, capture: bool) -> LLMResponse | None:
        completion = unwrap_response(result)
        if completion is None:
            return None
        # An SDK model's fields read as plain attributes (cheaper than a reader's calls); a
        # dict, or an object without them, read by reader().
        try:
            response_id, model = completion.id, completion.model
            choices, usage = completion.choices, completion.usage
        except AttributeError:
            get = reader(completion, "choices")
            response_id, model = get("id"), get("model")
            choices, usage = get("choices"), get("usage")
            tier, fingerprint = get("service_tier"), get("system_fingerprint")
        else:  # absent from older SDKs' models
            tier = getattr(completion, "service_tier", None)
            fingerprint = getattr(completion, "system_fingerprint", None)
        response = LLMResponse(
            response_id=response_id if type(response_id) is str else None,
            response_model=model if type(model) is str else None,
        )
        choices = items(choices)
        reasons = []
        for choice in choices:
            try:
                reason = choice.finish_reason
            except AttributeError:  # a dict
                reason = field(choice, "finish_reason")
            if reason:
                reasons.append(str(reason))
        if reasons:
            response.finish_reasons = reasons
        usage_into(response, usage)
        _service_attributes(response, tier, fingerprint)
        if capture:
            response.output_messages = [_choice_message(c) for c in choices]
        return response

    def stream_accumulator(self, result: Any, capture: bool) -> ChatStreamAccumulator | None:
        if type(result).__name__ not in ("Stream", "AsyncStream"):
            return None
        return ChatStreamAccumulator(capture)


def _choice_message(choice: Any) -> Message:
    # An SDK model's fields read as plain attributes (a dict or a getattr() costs more for
    # one); a dict, or an object without them, read by field() and reader().
    try:
        message, reason = choice.message, choice.finish_reason
    except AttributeError:
        message, reason = field(choice, "message"), field(choice, "finish_reason")
    try:
        role, content = message.role, message.content
        refusal, calls = message.refusal, message.tool_calls
    except AttributeError:
        get = reader(message, "role")
        role, content = get("role"), get("content")
        refusal, calls = get("refusal"), get("tool_calls")
    if content is not None and type(content) is not str and not given(content):
        content = None
    parts = text_parts(content)
    if isinstance(refusal, str) and refusal:
        parts.append(text_part(refusal))
    if calls:
        parts += tool_call_parts(calls)
    return {
        "role": role if type(role) is str or given(role) else "assistant",
        "parts": parts,
        "finish_reason": FINISH_REASONS.get(reason, reason) if isinstance(reason, str) else None,
    }


class _ChoiceState:
    __slots__ = ("finish_reason", "role", "text", "tool_calls")

    def __init__(self) -> None:
        self.role = "assistant"
        self.text: list[str] = []
        self.tool_calls: dict[int, dict[str, Any]] = {}
        self.finish_reason: str | None = None


class ChatStreamAccumulator:
    """Folds ``ChatCompletionChunk`` s: ids, usage, finish reasons; text and tool calls if kept."""

    __slots__ = ("_capture", "_choices", "_response", "error_type")

    def __init__(self, capture: bool) -> None:
        self._capture = capture
        self._choices: dict[int, _ChoiceState] = {}
        self._response = LLMResponse()
        self.error_type: str | None = None

    def add(self, chunk: Any) -> None:
        # Hot path (once per streamed chunk): an SDK chunk's fields read as plain attributes
        # (a specialized attribute read costs half a getattr() call); a chunk lacking one (a
        # dict, a plain object) is read with defaults. The generic field() helper is for the
        # rare dict-shaped chunk.
        try:
            choices = chunk.choices
            usage = chunk.usage
        except AttributeError:
            choices = getattr(chunk, "choices", None)
            if choices is None and isinstance(chunk, dict):
                self._add_mapping(chunk)
                return
            usage = getattr(chunk, "usage", None)
        if usage is not None or not self._response.response_id:  # the first and last chunks
            self._add_head(chunk, usage)
        if type(choices) is not list and not isinstance(choices, list):
            return
        states = self._choices
        for choice in choices:
            try:
                index = choice.index
                reason = choice.finish_reason
            except AttributeError:
                index = getattr(choice, "index", 0)
                reason = getattr(choice, "finish_reason", None)
            if type(index) is not int:
                index = as_index(index)
            elif reason is None and not self._capture and index in states:
                continue  # most chunks with content off: a choice already seen, not finished
            state = states.get(index)
            if state is None:
                state = states[index] = _ChoiceState()
            if reason and isinstance(reason, str):
                state.finish_reason = reason
            if self._capture:
                self._add_delta(state, getattr(choice, "delta", None))

    def _add_head(self, chunk: Any, usage: Any) -> None:
        """A chunk's identity (until one has it) and usage (the last chunk's, or every chunk's
        with some servers)."""
        response = self._response
        if not response.response_id:
            # Azure sends a first chunk with empty id/model (prompt filter results).
            response.response_id = getattr(chunk, "id", None) or None
            response.response_model = getattr(chunk, "model", None) or None
            _service_attributes(
                response,
                getattr(chunk, "service_tier", None),
                getattr(chunk, "system_fingerprint", None),
            )
        if usage is not None:
            usage_into(response, usage)

    def _add_mapping(self, chunk: dict[str, Any]) -> None:
        response = self._response
        if not response.response_id:
            response.response_id = field(chunk, "id") or None
            response.response_model = field(chunk, "model") or None
            _service_attributes(
                response, chunk.get("service_tier"), chunk.get("system_fingerprint")
            )
        usage = field(chunk, "usage")
        if usage is not None:
            usage_into(response, usage)
        for choice in items(field(chunk, "choices")):
            index = as_index(field(choice, "index", 0))
            state = self._choices.get(index)
            if state is None:
                state = self._choices[index] = _ChoiceState()
            reason = as_text(field(choice, "finish_reason"))
            if reason:
                state.finish_reason = reason
            if self._capture:
                self._add_delta(state, field(choice, "delta"))

    @staticmethod
    def _add_delta(state: _ChoiceState, delta: Any) -> None:
        # Once per chunk with content capture on: the four fields read directly (an SDK object's
        # attributes, or a dict's keys), without a helper call per field; a value of any type
        # but str (None, an omitted-value sentinel, a server's wrong type) is skipped.
        if delta is None:
            return
        try:  # an SDK delta: plain attribute reads (isinstance() of a model costs as much)
            role, content, refusal, calls = (
                delta.role, delta.content, delta.refusal, delta.tool_calls
            )  # fmt: skip
        except AttributeError:
            if isinstance(delta, dict):
                get = delta.get
                role, content = get("role"), get("content")
                refusal, calls = get("refusal"), get("tool_calls")
            else:
                role = getattr(delta, "role", None)
                content = getattr(delta, "content", None)
                refusal = getattr(delta, "refusal", None)
                calls = getattr(delta, "tool_calls", None)
        if content is not None and isinstance(content, str) and content:
            state.text.append(content)
        if refusal is not None and isinstance(refusal, str) and refusal:
            state.text.append(refusal)
        if role is not None and isinstance(role, str) and role:
            state.role = role
        if calls is not None:
            ChatStreamAccumulator._add_tool_calls(state, calls)

    @staticmethod
    def _add_tool_calls(state: _ChoiceState, calls: Any) -> None:
        for call in items(calls):
            index = as_index(field(call, "index", 0))
            entry = state.tool_calls.setdefault(index, tool_call_part(None, None, []))
            call_id = as_text(field(call, "id"))
            if call_id:
                entry["id"] = call_id
            function = field(call, "function")
            name = as_text(field(function, "name"))
            if name:
                entry["name"] = name
            arguments = as_text(field(function, "arguments"))
            if arguments:
                entry["arguments"].append(arguments)

    def complete(self) -> bool:
        """Whether every choice got its finish reason (a cut stream has none)."""
        states = self._choices.values()
        return bool(states) and all(s.finish_reason for s in states)

    def response(self) -> LLMResponse:
        response = self._response
        states = [self._choices[i] for i in sorted(self._choices)]
        reasons = [s.finish_reason for s in states if s.finish_reason]
        if reasons:
            response.finish_reasons = reasons
        if self._capture:
            response.output_messages = [_state_message(s) for s in states]
        return response


def _state_message(state: _ChoiceState) -> Message:
    parts: list[dict[str, Any]] = []
    if state.text:
        parts.append(text_part("".join(state.text)))
    for index in sorted(state.tool_calls):
        call = dict(state.tool_calls[index])
        call["arguments"] = parse_arguments("".join(call["arguments"]))
        parts.append(call)
    reason = state.finish_reason
    return {
        "role": state.role,
        "parts": parts,
        "finish_reason": FINISH_REASONS.get(reason, reason) if reason else None,
    }
