"""The per-call fast paths read what the generic ``field()`` helpers read.

The OpenAI chat adapter reads a response through one ``reader()`` per object (a dict's own
``get``, a pydantic model's ``__dict__``) instead of a ``field()`` call per field. Whatever shape
a server or a test double hands back (an SDK model, a dict, a plain object, wrong types,
omitted-value sentinels), what gets recorded must be what the field-by-field reading recorded.
"""

from __future__ import annotations

import random
from types import SimpleNamespace
from typing import Any

import pytest

from llm_otel.genai import Invocation, LLMResponse


def _response_by_fields(completion: Any, capture: bool) -> LLMResponse:
    """The chat adapter's reading before its fast path (one field() call per field)."""
    from llm_otel.instrumentation._fields import as_int, field, items

    response = LLMResponse(
        response_id=field(completion, "id"), response_model=field(completion, "model")
    )
    choices = items(field(completion, "choices"))
    reasons = [str(r) for r in (field(c, "finish_reason") for c in choices) if r]
    if reasons:
        response.finish_reasons = reasons
    usage = field(completion, "usage")
    if usage is not None:
        response.input_tokens = as_int(field(usage, "prompt_tokens"))
        response.output_tokens = as_int(field(usage, "completion_tokens"))
        response.cache_read_input_tokens = as_int(
            field(field(usage, "prompt_tokens_details"), "cached_tokens")
        )
        response.reasoning_output_tokens = as_int(
            field(field(usage, "completion_tokens_details"), "reasoning_tokens")
        )
    for name, key in (("service_tier", "openai.response.service_tier"),
                      ("system_fingerprint", "openai.response.system_fingerprint")):  # fmt: skip
        value = field(completion, name)
        if isinstance(value, str):
            response.attributes[key] = value
    if capture:
        response.output_messages = [_choice_message_by_fields(c) for c in choices]
    return response


def _choice_message_by_fields(choice: Any) -> Any:
    """A choice's output message, one field() call per field."""
    from llm_otel.instrumentation._fields import field, given
    from llm_otel.instrumentation.openai._chat import FINISH_REASONS, tool_call_parts
    from llm_otel.instrumentation.openai._common import text_parts

    message = field(choice, "message")
    parts = text_parts(field(message, "content"))
    refusal = field(message, "refusal")
    if isinstance(refusal, str) and refusal:
        parts.append({"type": "text", "content": refusal})
    calls = field(message, "tool_calls")
    if calls:
        parts += tool_call_parts(calls)
    reason = field(choice, "finish_reason")
    role = getattr(message, "role", None) if not isinstance(message, dict) else message.get("role")
    return {
        "role": role if type(role) is str or given(role) else "assistant",
        "parts": parts,
        "finish_reason": FINISH_REASONS.get(reason, reason) if isinstance(reason, str) else None,
    }


def _recorded(response: LLMResponse | None) -> Any:
    """What a call records from a response: span attributes, metric inputs, content."""
    if response is None:
        return None
    attributes = Invocation._response_attributes(None, response)  # type: ignore[arg-type]
    model = response.response_model if isinstance(response.response_model, str) else None
    return (attributes, model, response.input_tokens, response.output_tokens,
            response.output_messages)  # fmt: skip


def _value(rng: random.Random) -> Any:
    from openai import NOT_GIVEN

    return rng.choice([None, "", "x-1", 0, 7, True, 2.5, ["a"], {"k": 1}, NOT_GIVEN])


def _shape(rng: random.Random, fields: dict[str, Any], model: type | None) -> Any:
    shapes: list[Any] = [fields, SimpleNamespace(**fields)]
    if model is not None:
        shapes.append(model.model_construct(**fields))  # the SDK's own class
    return rng.choice(shapes)


def _completion(rng: random.Random) -> Any:
    from openai.types import CompletionUsage
    from openai.types.chat import ChatCompletion, ChatCompletionMessage
    from openai.types.chat.chat_completion import Choice
    from openai.types.completion_usage import CompletionTokensDetails, PromptTokensDetails

    def pick(names: tuple[str, ...]) -> list[str]:
        return rng.sample(names, rng.randint(0, len(names)))

    usage = {name: rng.choice([_value(rng), 12, 5]) for name in
             pick(("prompt_tokens", "completion_tokens", "prompt_tokens_details",
                   "completion_tokens_details"))}  # fmt: skip
    for name, inner, details in (
        ("prompt_tokens_details", "cached_tokens", PromptTokensDetails),
        ("completion_tokens_details", "reasoning_tokens", CompletionTokensDetails),
    ):
        if name in usage and rng.random() < 0.5:
            usage[name] = _shape(rng, {inner: rng.choice([3, _value(rng)])}, details)
    choices = []
    for _ in range(rng.randint(0, 2)):
        message = {n: rng.choice([_value(rng), "hello", "assistant"]) for n in
                   pick(("role", "content", "refusal"))}  # fmt: skip
        choice = {
            n: rng.choice([_value(rng), "stop", "tool_calls"]) for n in pick(("finish_reason",))
        }
        choice["message"] = _shape(rng, message, ChatCompletionMessage)
        choices.append(_shape(rng, choice, Choice))
    fields = {n: rng.choice([_value(rng), "chatcmpl-1", "gpt-4o-mini"]) for n in
              pick(("id", "model", "service_tier", "system_fingerprint"))}  # fmt: skip
    if rng.random() < 0.8:
        fields["choices"] = choices if rng.random() < 0.9 else _value(rng)
    if rng.random() < 0.8:
        fields["usage"] = _shape(rng, usage, CompletionUsage)
    return _shape(rng, fields, ChatCompletion)


@pytest.mark.parametrize("seed", range(300))
def test_chat_response_fast_path_records_what_the_field_helpers_read(seed: int) -> None:
    from llm_otel.instrumentation.openai._chat import ChatAdapter

    rng = random.Random(seed)
    completion = _completion(rng)
    for capture in (False, True):
        fast = ChatAdapter().response(completion, capture)
        assert _recorded(fast) == _recorded(_response_by_fields(completion, capture)), completion


def _messages_by_fields(messages: Any) -> Any:
    """The chat adapter's reading of input messages before its fast path."""
    from llm_otel.instrumentation._fields import field
    from llm_otel.instrumentation.openai._common import text_parts

    out = []
    for message in messages or ():
        role = field(message, "role", "user")
        if role == "developer":
            role = "system"
        entry = {"role": role, "parts": text_parts(field(message, "content"))}
        name = field(message, "name")
        if isinstance(name, str):
            entry["name"] = name
        out.append(entry)
    return out


@pytest.mark.parametrize("seed", range(200))
def test_chat_input_messages_fast_path_reads_what_the_field_helpers_read(seed: int) -> None:
    from openai.types.chat import ChatCompletionMessage

    from llm_otel.instrumentation.openai._chat import input_messages

    rng = random.Random(seed)
    messages = []
    for _ in range(rng.randint(0, 3)):
        fields = {n: rng.choice([_value(rng), "user", "developer", "hi"]) for n in
                  rng.sample(("role", "content", "name"), rng.randint(0, 3))}  # fmt: skip
        messages.append(_shape(rng, fields, ChatCompletionMessage))
    assert input_messages(messages) == _messages_by_fields(messages), messages


def _chunk(rng: random.Random, first: bool, last: bool, odd: float) -> Any:
    """One streamed chunk: mostly the SDK's own, with the odd shapes servers and doubles send
    (as often as ``odd`` says: 0 never, 1 at the rates below)."""
    from openai.types import CompletionUsage
    from openai.types.chat import ChatCompletionChunk
    from openai.types.chat.chat_completion_chunk import (
        Choice,
        ChoiceDelta,
        ChoiceDeltaToolCall,
        ChoiceDeltaToolCallFunction,
    )

    def sdk_mostly(fields: dict[str, Any], model: type) -> Any:
        if rng.random() < 1 - 0.15 * odd:
            return model.model_construct(**fields)
        return _shape(rng, fields, model)

    text = rng.choice(["Hel", "lo", " world", "", None, None])
    delta: dict[str, Any] = {"content": text if rng.random() < 1 - 0.05 * odd else _value(rng)}
    if first or rng.random() < 0.05 * odd:
        delta["role"] = rng.choice(["assistant", "assistant", _value(rng)])
    if rng.random() < 0.05 * odd:
        delta["refusal"] = rng.choice(["no", _value(rng)])
    if rng.random() < 0.08 * odd:
        function = sdk_mostly({"name": rng.choice(["f", None]), "arguments": '{"a": 1}'},
                              ChoiceDeltaToolCallFunction)  # fmt: skip
        delta["tool_calls"] = [sdk_mostly(
            {"index": rng.choice([0, 1]), "id": "call_1", "function": function},
            ChoiceDeltaToolCall,
        )]  # fmt: skip
    choices = []
    for index in range(1 if rng.random() < 1 - 0.1 * odd else 2):
        choice: dict[str, Any] = {
            "index": index if rng.random() < 1 - 0.03 * odd else _value(rng),
            "delta": sdk_mostly(delta, ChoiceDelta) if rng.random() < 1 - 0.02 * odd else None,
        }
        if last or rng.random() < 0.03 * odd:
            choice["finish_reason"] = rng.choice(["stop", "length", "tool_calls", _value(rng)])
        choices.append(sdk_mostly(choice, Choice))
    fields: dict[str, Any] = {
        "id": "chatcmpl-1" if not first or rng.random() < 0.9 else "",  # Azure: empty first id
        "model": "gpt-4o-mini",
        "choices": choices if rng.random() < 1 - 0.03 * odd else _value(rng),
    }
    if rng.random() < 0.3:
        fields["system_fingerprint"] = rng.choice(["fp_1", _value(rng)])
    if (last and rng.random() < 0.7) or rng.random() < 0.02 * odd:
        usage = {"prompt_tokens": rng.choice([12, _value(rng)]), "completion_tokens": 5}
        fields["usage"] = sdk_mostly(usage, CompletionUsage)
        if rng.random() < 0.5:
            fields["choices"] = []  # include_usage: a last chunk without choices
    return sdk_mostly(fields, ChatCompletionChunk)


def _add_by_getattr(accumulator: Any, chunk: Any) -> None:
    """The chat stream accumulator's reading of a chunk before its fast path (every field
    through getattr with a default)."""
    from llm_otel.instrumentation._fields import as_index
    from llm_otel.instrumentation.openai._chat import (
        _ChoiceState,
        _service_attributes,
        reader,
        usage_into,
    )

    choices = getattr(chunk, "choices", None)
    if choices is None and isinstance(chunk, dict):
        accumulator._add_mapping(chunk)
        return
    response = accumulator._response
    if not response.response_id:
        response.response_id = getattr(chunk, "id", None) or None
        response.response_model = getattr(chunk, "model", None) or None
        get = reader(chunk, "id")
        _service_attributes(response, get("service_tier"), get("system_fingerprint"))
    usage = getattr(chunk, "usage", None)
    if usage is not None:
        usage_into(response, usage)
    if not choices or not isinstance(choices, list):
        return
    states = accumulator._choices
    for choice in choices:
        index = as_index(getattr(choice, "index", 0))
        state = states.get(index)
        if state is None:
            state = states[index] = _ChoiceState()
        reason = getattr(choice, "finish_reason", None)
        if reason and isinstance(reason, str):
            state.finish_reason = reason
        if accumulator._capture:
            _add_delta_by_getattr(state, getattr(choice, "delta", None))


def _add_delta_by_getattr(state: Any, delta: Any) -> None:
    """A chunk's delta folded in, every field read with a default."""
    from llm_otel.instrumentation.openai._chat import ChatStreamAccumulator

    if delta is None:
        return
    if isinstance(delta, dict):
        role, content = delta.get("role"), delta.get("content")
        refusal, calls = delta.get("refusal"), delta.get("tool_calls")
    else:
        role, content = getattr(delta, "role", None), getattr(delta, "content", None)
        refusal, calls = getattr(delta, "refusal", None), getattr(delta, "tool_calls", None)
    for text in (content, refusal):
        if isinstance(text, str) and text:
            state.text.append(text)
    if isinstance(role, str) and role:
        state.role = role
    if calls is not None:
        ChatStreamAccumulator._add_tool_calls(state, calls)


@pytest.mark.parametrize("seed", range(300))
def test_chat_stream_chunks_read_as_attributes_fold_what_generic_reading_folds(seed: int) -> None:
    """``ChatStreamAccumulator.add`` reads an SDK chunk's fields as plain attributes, and a
    chunk lacking one with defaults; whatever the chunks, the result must be what reading every
    field through getattr gave."""
    from llm_otel.instrumentation.openai._chat import ChatStreamAccumulator

    rng = random.Random(seed)
    count = rng.choice([1, 2, 5, 20])
    odd = rng.choice([0.0, 0.2, 1.0])
    chunks = [_chunk(rng, i == 0, i == count - 1, odd) for i in range(count)]
    for capture in (False, True):
        fast, generic = ChatStreamAccumulator(capture), ChatStreamAccumulator(capture)
        for chunk in chunks:
            fast.add(chunk)
            _add_by_getattr(generic, chunk)
        assert fast.complete() == generic.complete(), chunks
        assert _recorded(fast.response()) == _recorded(generic.response()), chunks


def test_field_reads_dicts_their_subclasses_and_proxies_of_them_by_key() -> None:
    """field() reads a dict, a dict subclass and a proxy whose __class__ says dict by key (a
    key named like a dict method included), an SDK model by attribute, and sentinels as
    absent: what any cheaper reading of it must keep."""
    import wrapt
    from openai import NOT_GIVEN
    from openai.types.completion_usage import PromptTokensDetails

    from llm_otel.instrumentation._fields import field

    class Sub(dict):  # type: ignore[type-arg]
        pass

    for mapping in ({"items": 3, "x": NOT_GIVEN}, Sub(items=3, x=NOT_GIVEN),
                    wrapt.ObjectProxy({"items": 3, "x": NOT_GIVEN})):  # fmt: skip
        assert field(mapping, "items") == 3  # the key, not the dict method
        assert field(mapping, "x", "d") == "d"
        assert field(mapping, "absent", "d") == "d"
    model = PromptTokensDetails.model_construct(cached_tokens=4)
    assert field(model, "cached_tokens") == 4
    assert field(model, "absent", "d") == "d"
    assert field(SimpleNamespace(a=NOT_GIVEN), "a", "d") == "d"
