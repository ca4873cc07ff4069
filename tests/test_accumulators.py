"""Stream accumulators are total: any JSON shape a server may send (as dicts, or as SDK objects
whose fields hold the wrong types) is folded without an exception, and what they make of it can
always be recorded.

Seeded random shapes over each provider's own field names, so a failure reproduces.
"""

from __future__ import annotations

import json
import random
from types import SimpleNamespace
from typing import Any

import pytest

from llm_otel import _guard
from llm_otel.genai import ContentMode, ContentPolicy, Invocation, LLMRequest
from tests.conftest import Telemetry


def _accumulators() -> dict[str, Any]:
    from llm_otel.instrumentation.anthropic._messages import MessagesStreamAccumulator
    from llm_otel.instrumentation.bedrock._converse import ConverseStreamAccumulator
    from llm_otel.instrumentation.bedrock._invoke import InvokeStreamAccumulator
    from llm_otel.instrumentation.cohere._adapters import StreamAccumulator as Cohere
    from llm_otel.instrumentation.google_genai._adapters import StreamAccumulator as Gemini
    from llm_otel.instrumentation.groq._adapters import GroqStreamAccumulator
    from llm_otel.instrumentation.mistralai._adapters import MistralStreamAccumulator
    from llm_otel.instrumentation.ollama._adapters import StreamAccumulator as Ollama
    from llm_otel.instrumentation.openai._chat import ChatStreamAccumulator
    from llm_otel.instrumentation.openai._responses import ResponsesStreamAccumulator

    return {
        "openai chat": ChatStreamAccumulator,
        "openai responses": ResponsesStreamAccumulator,
        "groq": GroqStreamAccumulator,
        "mistral": MistralStreamAccumulator,
        "anthropic": MessagesStreamAccumulator,
        "cohere": Cohere,
        "gemini": Gemini,
        "ollama chat": lambda capture: Ollama(capture, "message"),
        "ollama generate": lambda capture: Ollama(capture, "response"),
        "bedrock converse": lambda capture: ConverseStreamAccumulator(capture, {}),
        "bedrock invoke": lambda capture: InvokeStreamAccumulator(capture, {}),
    }


# Every field name the adapters read, so random shapes reach deep into their code paths.
KEYS = (
    "id", "model", "choices", "index", "delta", "finish_reason", "usage", "prompt_tokens",
    "completion_tokens", "prompt_tokens_details", "cached_tokens", "completion_tokens_details",
    "reasoning_tokens", "content", "role", "refusal", "tool_calls", "function", "name",
    "arguments", "type", "response", "status", "output", "text", "message", "stop_reason",
    "input_tokens", "output_tokens", "cache_read_input_tokens", "cache_creation_input_tokens",
    "content_block", "partial_json", "thinking", "candidates", "parts", "usage_metadata",
    "prompt_token_count", "candidates_token_count", "thoughts_token_count", "model_version",
    "response_id", "done", "done_reason", "eval_count", "prompt_eval_count", "messageStart",
    "contentBlockStart", "contentBlockDelta", "contentBlockStop", "messageStop", "metadata",
    "stopReason", "inputTokens", "outputTokens", "toolUse", "input", "start", "chunk", "bytes",
    "data", "x_groq", "event_type", "tool_plan", "billed_units", "tokens", "code", "error",
    "contentBlockIndex", "reasoningContent", "service_tier", "system_fingerprint",
)  # fmt: skip


def _value(rng: random.Random, depth: int) -> Any:
    kinds = ["none", "int", "float", "str", "bool", "bytes"]
    if depth < 4:
        kinds += ["list", "dict", "dict", "object"]
    kind = rng.choice(kinds)
    if kind == "none":
        return None
    if kind == "int":
        return rng.choice([0, 1, -1, 7, 2**70])
    if kind == "float":
        return rng.choice([0.5, float("nan"), float("inf"), -2.0])
    if kind == "str":
        return rng.choice(["", "stop", "text", "message_stop", "end_turn", "x" * 50, "{", "[1]"])
    if kind == "bool":
        return rng.choice([True, False])
    if kind == "bytes":
        return rng.choice(
            [b"", b"{}", b'{"outputs": [1]}', b"\xff", json.dumps({"a": [1]}).encode()]
        )
    if kind == "list":
        return [_value(rng, depth + 1) for _ in range(rng.randint(0, 3))]
    fields = {k: _value(rng, depth + 1) for k in rng.sample(KEYS, rng.randint(0, 5))}
    return SimpleNamespace(**fields) if kind == "object" else fields


def _chunks(seed: int) -> list[Any]:
    rng = random.Random(seed)
    chunks: list[Any] = []
    for _ in range(rng.randint(1, 8)):
        chunk = _value(rng, 0)
        if rng.random() < 0.7:  # mostly mappings/objects, as real chunks are
            fields = {k: _value(rng, 1) for k in rng.sample(KEYS, rng.randint(1, 8))}
            chunk = SimpleNamespace(**fields) if rng.random() < 0.5 else fields
        chunks.append(chunk)
    return chunks


SEEDS = range(500)


@pytest.mark.parametrize("capture", [False, True], ids=["content-off", "content-on"])
@pytest.mark.parametrize("name", sorted(_accumulators()))
def test_accumulators_fold_any_shape(name: str, capture: bool) -> None:
    make = _accumulators()[name]
    for seed in SEEDS:
        accumulator = make(capture)
        for chunk in _chunks(seed):
            try:
                accumulator.add(chunk)
            except Exception as exc:  # pragma: no cover - the assertion's message
                pytest.fail(f"{name} add() seed {seed}: {exc!r} on {chunk!r}")
        try:
            response = accumulator.response()
            complete = getattr(accumulator, "complete", None)
            if complete is not None:
                assert isinstance(complete(), bool)
        except Exception as exc:  # pragma: no cover
            pytest.fail(f"{name} response() seed {seed}: {exc!r}")
        assert response is not None


@pytest.mark.parametrize("content_policy", [ContentPolicy(ContentMode.SPAN_AND_EVENT)])
@pytest.mark.parametrize("name", sorted(_accumulators()))
def test_what_accumulators_make_of_any_shape_can_be_recorded(
    name: str, telemetry: Telemetry, content_policy: ContentPolicy
) -> None:
    make = _accumulators()[name]
    before = _guard.internal_error_count()
    recorded = 0
    for seed in range(0, 300, 3):
        accumulator = make(True)
        for chunk in _chunks(seed):
            accumulator.add(chunk)
        invocation = Invocation(
            _telemetry(telemetry, content_policy),
            LLMRequest(operation="chat", provider="test", model="m", stream=True),
        )
        invocation.on_chunk()
        invocation.finish(accumulator.response())
        recorded += 1
    assert _guard.internal_error_count() == before
    assert len(telemetry.spans()) == recorded


def _telemetry(telemetry: Telemetry, policy: ContentPolicy) -> Any:
    from llm_otel.genai import GenAITelemetry

    return GenAITelemetry(**telemetry.providers, content=policy)


def _delta_by_fields(state: Any, delta: Any) -> None:
    """The OpenAI chat accumulator's reading of a delta before its per-chunk fast path: one
    field() helper call per field. The fast path must read exactly what this read."""
    from llm_otel.instrumentation._fields import as_text, field
    from llm_otel.instrumentation.openai._chat import ChatStreamAccumulator

    if delta is None:
        return
    role = as_text(field(delta, "role"))
    if role:
        state.role = role
    for key in ("content", "refusal"):
        text = as_text(field(delta, key))
        if text:
            state.text.append(text)
    ChatStreamAccumulator._add_tool_calls(state, field(delta, "tool_calls"))


def _delta_value(rng: random.Random) -> Any:
    from openai import NOT_GIVEN

    return rng.choice(
        [None, "", "tok ", "assistant", 0, 7, ["x"], {"a": 1}, NOT_GIVEN, b"bytes",
         [{"index": 0, "id": "call_1", "function": {"name": "f", "arguments": "{"}}],
         [SimpleNamespace(index=1, id=None, function=SimpleNamespace(name=None, arguments="}"))]]
    )  # fmt: skip


@pytest.mark.parametrize("seed", range(300))
def test_chat_delta_fast_path_reads_what_the_field_helpers_read(seed: int) -> None:
    from openai.types.chat.chat_completion_chunk import ChoiceDelta

    from llm_otel.instrumentation.openai._chat import ChatStreamAccumulator, _ChoiceState

    rng = random.Random(seed)
    names = ("role", "content", "refusal", "tool_calls")
    fields = {name: _delta_value(rng) for name in rng.sample(names, rng.randint(0, 4))}
    shapes: list[Any] = [None, fields, SimpleNamespace(**fields), rng.choice([1, "s", []])]
    if all(isinstance(v, str) or v is None for v in fields.values()) and "tool_calls" not in fields:
        shapes.append(ChoiceDelta.model_construct(**fields))  # the SDK's own object
    for delta in shapes:
        fast, reference = _ChoiceState(), _ChoiceState()
        ChatStreamAccumulator._add_delta(fast, delta)
        _delta_by_fields(reference, delta)
        assert (fast.role, fast.text, fast.tool_calls) == (
            reference.role, reference.text, reference.tool_calls
        ), delta  # fmt: skip
