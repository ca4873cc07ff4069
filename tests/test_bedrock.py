"""boto3's bedrock-runtime client over HTTP against a local server speaking Bedrock's wire
format: JSON for converse/invoke_model, AWS event-stream framing for the streams."""

from __future__ import annotations

import gc
import io
import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

boto3 = pytest.importorskip("boto3")  # the bedrock extra; installed by scripts/test.sh

from botocore.config import Config  # noqa: E402
from botocore.exceptions import ClientError, EventStreamError  # noqa: E402

from llm_otel.genai import ContentMode, ContentPolicy  # noqa: E402
from llm_otel.instrumentation.bedrock import BedrockInstrumentor  # noqa: E402
from tests.conftest import Telemetry, telemetry_with  # noqa: E402
from tests.servers.bedrock_server import TEXT, BedrockTestServer  # noqa: E402

ON = ContentPolicy(ContentMode.SPAN_ONLY)


def _botocore_knows_cache_counts() -> bool:
    """botocore parses only the members its service model knows: the prompt-cache counts came
    with Bedrock prompt caching, after botocore 1.35 (our floor), which drops them."""
    import botocore.session

    model = botocore.session.get_session().get_service_model("bedrock-runtime")
    return "cacheReadInputTokens" in model.shape_for("TokenUsage").members


CACHE = _botocore_knows_cache_counts()
CONVERSE_INPUT = 11 + 6 + 4 if CACHE else 11
MESSAGES = [{"role": "user", "content": [{"text": "Say hello"}]}]


@pytest.fixture(scope="module")
def server() -> Iterator[BedrockTestServer]:
    srv = BedrockTestServer().start()
    yield srv
    srv.stop()


@pytest.fixture
def telemetry(content_policy: ContentPolicy) -> Iterator[Telemetry]:
    yield from telemetry_with(BedrockInstrumentor, content_policy)


def _client(server: BedrockTestServer, service: str = "bedrock-runtime") -> Any:
    return boto3.client(
        service,
        region_name="us-east-1",
        endpoint_url=server.endpoint_url,
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=Config(retries={"total_max_attempts": 1}),
    )


@pytest.fixture
def client(server: BedrockTestServer, telemetry: Telemetry) -> Any:
    return _client(server)


def _output(span: Any) -> Any:
    (message,) = json.loads(span.attributes["gen_ai.output.messages"])
    return message


@pytest.mark.parametrize("content_policy", [ON])
def test_converse(client: Any, telemetry: Telemetry, server: BedrockTestServer) -> None:
    reply = client.converse(
        modelId="anthropic.claude-3-haiku-20240307-v1:0",
        messages=MESSAGES,
        system=[{"text": "Be brief."}],
        inferenceConfig={"maxTokens": 64, "temperature": 0.2, "topP": 0.9, "stopSequences": ["x"]},
        additionalModelRequestFields={"top_k": 5},
    )
    assert reply["output"]["message"]["content"][0]["text"] == TEXT
    span = telemetry.only_span()
    a = span.attributes
    assert span.name == "chat anthropic.claude-3-haiku-20240307-v1:0"
    assert a["gen_ai.provider.name"] == "aws.bedrock"
    assert a["gen_ai.operation.name"] == "chat"
    assert a["server.address"] == "127.0.0.1"
    assert a["server.port"] == server.port
    assert a["gen_ai.request.max_tokens"] == 64
    assert a["gen_ai.request.temperature"] == 0.2
    assert a["gen_ai.request.top_p"] == 0.9
    assert a["gen_ai.request.top_k"] == 5
    assert a["gen_ai.request.stop_sequences"] == ("x",)
    assert a["gen_ai.response.finish_reasons"] == ("stop",)
    # Bedrock's inputTokens leaves out the cache; the conventions' count includes it.
    assert a["gen_ai.usage.input_tokens"] == CONVERSE_INPUT
    if CACHE:
        assert a["gen_ai.usage.cache_read.input_tokens"] == 6
        assert a["gen_ai.usage.cache_creation.input_tokens"] == 4
    assert a["gen_ai.usage.output_tokens"] == 5
    assert a["aws.request_id"] == "req-test-1"
    assert json.loads(a["gen_ai.system_instructions"]) == [{"type": "text", "content": "Be brief."}]
    (message,) = json.loads(a["gen_ai.input.messages"])
    assert message == {"role": "user", "parts": [{"type": "text", "content": "Say hello"}]}
    assert _output(span)["parts"] == [{"type": "text", "content": TEXT}]
    (duration,) = telemetry.points("gen_ai.client.operation.duration")
    assert duration.attributes["gen_ai.provider.name"] == "aws.bedrock"
    usage = telemetry.points("gen_ai.client.token.usage")
    tokens = {p.attributes["gen_ai.token.type"]: p.sum for p in usage}
    assert tokens == {"input": CONVERSE_INPUT, "output": 5}


@pytest.mark.parametrize("content_policy", [ON])
def test_converse_tools_and_parts(client: Any, telemetry: Telemetry) -> None:
    messages = [
        {
            "role": "user",
            "content": [
                {"text": "Weather?"},
                {"image": {"format": "png", "source": {"bytes": b"\x89PNG"}}},
            ],
        },
        {"role": "assistant",
         "content": [{"toolUse": {"toolUseId": "t0", "name": "f", "input": {}}}]},
        {"role": "user",
         "content": [{"toolResult": {"toolUseId": "t0", "content": [{"json": {"ok": 1}}]}}]},
    ]  # fmt: skip
    tools = {"tools": [{"toolSpec": {"name": "get_weather", "description": "d",
                                     "inputSchema": {"json": {"type": "object"}}}}]}  # fmt: skip
    client.converse(modelId="tool-model", messages=messages, toolConfig=tools)
    for _ in client.converse_stream(modelId="tool-model", messages=MESSAGES)["stream"]:
        pass
    plain, streamed = telemetry.spans()
    inputs = json.loads(plain.attributes["gen_ai.input.messages"])
    assert inputs[0]["parts"][1] == {"type": "blob", "modality": "image", "mime_type": "image/png",
                                     "content": "iVBORw=="}  # fmt: skip
    assert inputs[1]["parts"] == [{"type": "tool_call", "id": "t0", "name": "f", "arguments": {}}]
    assert inputs[2]["parts"] == [
        {"type": "tool_call_response", "id": "t0", "response": [{"ok": 1}]}
    ]
    assert json.loads(plain.attributes["gen_ai.tool.definitions"]) == [
        {"type": "function", "name": "get_weather", "description": "d",
         "parameters": {"type": "object"}}
    ]  # fmt: skip
    call = {"type": "tool_call", "id": "tooluse_1", "name": "get_weather",
            "arguments": {"city": "Paris"}}  # fmt: skip
    for span in (plain, streamed):
        assert span.attributes["gen_ai.response.finish_reasons"] == ("tool_call",)
        assert _output(span)["parts"][-1] == call


@pytest.mark.parametrize("content_policy", [ON])
def test_converse_stream(client: Any, telemetry: Telemetry) -> None:
    response = client.converse_stream(modelId="amazon.nova-lite-v1:0", messages=MESSAGES)
    text = "".join(
        e["contentBlockDelta"]["delta"]["text"]
        for e in response["stream"]
        if "contentBlockDelta" in e
    )
    assert text == TEXT
    span = telemetry.only_span()
    a = span.attributes
    assert a["gen_ai.request.stream"] is True
    assert a["gen_ai.response.finish_reasons"] == ("stop",)
    assert a["gen_ai.usage.input_tokens"] == CONVERSE_INPUT
    assert a["gen_ai.usage.output_tokens"] == 5
    assert a["gen_ai.response.time_to_first_chunk"] > 0
    assert a["aws.request_id"] == "req-test-2"
    assert _output(span)["parts"] == [{"type": "text", "content": TEXT}]
    assert len(telemetry.points("gen_ai.client.operation.time_to_first_chunk")) == 1


def test_stream_ended_every_way(client: Any, telemetry: Telemetry) -> None:
    # Closed after one event.
    stream = client.converse_stream(modelId="long-stream", messages=MESSAGES)["stream"]
    next(iter(stream))
    stream.close()
    # Abandoned after one event.
    abandoned = client.converse_stream(modelId="long-stream", messages=MESSAGES)["stream"]
    next(iter(abandoned))
    del abandoned
    gc.collect()
    # An exception event mid-stream.
    with pytest.raises(EventStreamError) as raised:
        for _ in client.converse_stream(modelId="midstream-error", messages=MESSAGES)["stream"]:
            pass
    assert raised.value.response["Error"]["Code"] == "modelStreamErrorException"
    # Never iterated, closed.
    client.converse_stream(modelId="m", messages=MESSAGES)["stream"].close()
    closed, dropped, failed, untouched = telemetry.spans()
    for span in (closed, dropped, untouched):
        assert "error.type" not in span.attributes
    assert failed.attributes["error.type"] == "modelStreamErrorException"
    assert failed.status.status_code.name == "ERROR"


def test_errors(client: Any, telemetry: Telemetry) -> None:
    with pytest.raises(ClientError) as raised:
        client.converse(modelId="error-429", messages=MESSAGES)
    assert raised.value.response["Error"]["Code"] == "ThrottlingException"
    with pytest.raises(ClientError):
        client.invoke_model(modelId="error-429", body=b"{}")
    with pytest.raises(ClientError):
        client.converse_stream(modelId="error-429", messages=MESSAGES)
    spans = telemetry.spans()
    assert [s.attributes["error.type"] for s in spans] == ["429"] * 3
    # The error response's request id, as successful calls have it (to quote to AWS support).
    assert [s.attributes.get("aws.request_id") for s in spans] == ["req-test-1"] * 3
    (point, *_) = telemetry.points("gen_ai.client.operation.duration")
    assert point.attributes["error.type"] == "429"


INVOKE_CASES = [
    # model id, request body, operation, finish reason, input tokens, output tokens
    ("anthropic.claude-3-5-sonnet-20240620-v1:0",
     {"anthropic_version": "bedrock-2023-05-31", "max_tokens": 50, "temperature": 0.1,
      "messages": [{"role": "user", "content": "Say hello"}]},
     "chat", "stop", 12, 5),
    ("us.amazon.nova-pro-v1:0",
     {"schemaVersion": "messages-v1", "messages": MESSAGES,
      "inferenceConfig": {"max_new_tokens": 50, "temperature": 0.1}},
     "chat", "length", 13, 5),
    ("amazon.titan-text-express-v1",
     {"inputText": "Say hello", "textGenerationConfig": {"maxTokenCount": 50, "temperature": 0.1}},
     "text_completion", "length", 11, 5),
    ("meta.llama3-8b-instruct-v1:0",
     {"prompt": "Say hello", "max_gen_len": 50, "temperature": 0.1},
     "text_completion", "stop", 11, 5),
    ("mistral.mistral-7b-instruct-v0:2",
     {"prompt": "<s>[INST] Say hello [/INST]", "max_tokens": 50, "temperature": 0.1},
     "text_completion", "length", 11, 5),
    ("mistral.mistral-large-2407-v1:0",
     {"messages": [{"role": "user", "content": "Say hello"}], "max_tokens": 50,
      "temperature": 0.1},
     "chat", "stop", 11, 5),
]  # fmt: skip


@pytest.mark.parametrize("content_policy", [ON])
@pytest.mark.parametrize(
    ("model", "body", "operation", "reason", "inputs", "outputs"), INVOKE_CASES
)
def test_invoke_model_families(
    client: Any,
    telemetry: Telemetry,
    model: str,
    body: dict[str, Any],
    operation: str,
    reason: str,
    inputs: int,
    outputs: int,
) -> None:
    response = client.invoke_model(modelId=model, body=json.dumps(body))
    # The body the application reads is intact (read once by us, handed back as a new stream).
    raw = response["body"].read()
    assert TEXT in raw.decode()
    span = telemetry.only_span()
    a = span.attributes
    assert span.name == f"{operation} {model}"
    assert a["gen_ai.operation.name"] == operation
    assert a["gen_ai.provider.name"] == "aws.bedrock"
    assert a["gen_ai.request.max_tokens"] == 50
    assert a["gen_ai.request.temperature"] == 0.1
    assert a["gen_ai.response.finish_reasons"] == (reason,)
    assert a["gen_ai.usage.input_tokens"] == inputs
    assert a["gen_ai.usage.output_tokens"] == outputs
    assert _output(span)["parts"] == [{"type": "text", "content": TEXT}]
    assert "Say hello" in a["gen_ai.input.messages"]


@pytest.mark.parametrize(
    ("model", "body"),
    [
        ("amazon.titan-embed-text-v2:0", {"inputText": "hi", "dimensions": 256}),
        ("cohere.embed-english-v3", {"texts": ["hi"], "input_type": "search_document"}),
    ],
)
def test_invoke_model_embeddings(
    client: Any, telemetry: Telemetry, model: str, body: dict[str, Any]
) -> None:
    response = client.invoke_model(modelId=model, body=json.dumps(body))
    assert json.load(response["body"])
    span = telemetry.only_span()
    assert span.name == f"embeddings {model}"
    # Titan's body count (6) where it has one, else Bedrock's token-count header (11).
    expected = 6 if model.startswith("amazon") else 11
    assert span.attributes["gen_ai.usage.input_tokens"] == expected
    if "dimensions" in body:
        assert span.attributes["gen_ai.embeddings.dimension.count"] == 256


STREAM_MODELS = [
    ("anthropic.claude-3-haiku-20240307-v1:0",
     {"anthropic_version": "bedrock-2023-05-31", "max_tokens": 50, "messages": [
         {"role": "user", "content": "Say hello"}]}, "stop", 12),
    ("amazon.nova-micro-v1:0", {"messages": MESSAGES, "inferenceConfig": {}}, "stop", 11),
    ("amazon.titan-text-lite-v1", {"inputText": "Say hello"}, "stop", 11),
    ("meta.llama3-70b-instruct-v1:0", {"prompt": "Say hello"}, "length", 11),
    ("mistral.mixtral-8x7b-instruct-v0:1", {"prompt": "Say hello"}, "stop", 11),
    ("openai.gpt-oss-20b-1:0", {"messages": [{"role": "user", "content": "Say hello"}]}, "stop",
     11),
]  # fmt: skip


@pytest.mark.parametrize("content_policy", [ON])
@pytest.mark.parametrize(("model", "body", "reason", "inputs"), STREAM_MODELS)
def test_invoke_model_with_response_stream(
    client: Any, telemetry: Telemetry, model: str, body: dict[str, Any], reason: str, inputs: int
) -> None:
    response = client.invoke_model_with_response_stream(modelId=model, body=json.dumps(body))
    chunks = [json.loads(e["chunk"]["bytes"]) for e in response["body"]]
    assert len(chunks) >= 5
    span = telemetry.only_span()
    a = span.attributes
    assert a["gen_ai.request.stream"] is True
    assert a["gen_ai.response.finish_reasons"] == (reason,)
    assert a["gen_ai.usage.input_tokens"] == inputs
    assert a["gen_ai.usage.output_tokens"] == 5
    assert _output(span)["parts"] == [{"type": "text", "content": TEXT}]
    assert len(telemetry.points("gen_ai.client.operation.time_per_output_chunk")) == 1


def test_invoke_stream_error_and_content_off(client: Any, telemetry: Telemetry) -> None:
    stream = client.invoke_model_with_response_stream(modelId="midstream-error", body=b"{}")
    with pytest.raises(EventStreamError):
        for _ in stream["body"]:
            pass
    client.invoke_model(modelId="meta.llama3-8b-instruct-v1:0", body=b'{"prompt": "secret"}')
    failed, plain = telemetry.spans()
    assert failed.attributes["error.type"] == "modelStreamErrorException"
    assert "gen_ai.input.messages" not in plain.attributes
    assert "gen_ai.output.messages" not in plain.attributes
    assert telemetry.logs() == [] or all("secret" not in str(r.body) for r in telemetry.logs())


def test_bodies_we_do_not_read(client: Any, telemetry: Telemetry) -> None:
    # A file-like request body and a non-JSON one: the call is recorded, the body untouched.
    response = client.invoke_model(
        modelId="meta.llama3-8b-instruct-v1:0", body=io.BytesIO(b'{"prompt": "hi"}')
    )
    assert json.load(response["body"])["generation"] == TEXT
    span = telemetry.only_span()
    assert span.attributes["gen_ai.usage.input_tokens"] == 11  # from the headers
    assert span.attributes["gen_ai.operation.name"] == "chat"  # unknown body shape


def test_other_services_and_operations_pass_through(
    server: BedrockTestServer, telemetry: Telemetry
) -> None:
    # Not bedrock-runtime, or an operation we do not record: no span, no interference.
    client = _client(server)
    with pytest.raises(ClientError):
        client.apply_guardrail(
            guardrailIdentifier="g", guardrailVersion="1", source="INPUT", content=[]
        )
    s3 = _client(server, "s3")
    with pytest.raises(ClientError):
        s3.list_buckets()
    assert telemetry.spans() == []


def test_uninstrument_restores_botocore(server: BedrockTestServer, telemetry: Telemetry) -> None:
    from botocore.client import BaseClient

    BedrockInstrumentor().uninstrument()
    assert type(BaseClient.__dict__["_make_api_call"]).__name__ == "function"
    _client(server).converse(modelId="m", messages=MESSAGES)
    assert telemetry.spans() == []
    BedrockInstrumentor().instrument(**telemetry.providers)
    _client(server).converse(modelId="m", messages=MESSAGES)
    assert len(telemetry.spans()) == 1


@pytest.mark.parametrize("content_policy", [ON])
def test_a_failure_reading_the_body_leaves_the_app_its_body(
    client: Any, telemetry: Telemetry, monkeypatch: pytest.MonkeyPatch
) -> None:
    from llm_otel.instrumentation.bedrock import _invoke

    def broken(*args: Any) -> None:
        raise RuntimeError("parser bug")

    monkeypatch.setattr(_invoke, "_read_output", broken)
    body = {"prompt": "Say hello", "max_gen_len": 50}
    response = client.invoke_model(modelId="meta.llama3-8b-instruct-v1:0", body=json.dumps(body))
    assert json.loads(response["body"].read())["generation"] == TEXT  # intact
    span = telemetry.only_span()  # ended, with what the request told
    assert "error.type" not in span.attributes
    assert span.attributes["gen_ai.request.max_tokens"] == 50


def test_botocore_retries_inside_one_call_are_recorded(
    server: BedrockTestServer, telemetry: Telemetry
) -> None:
    # botocore's standard retry mode retries throttling; the attempts go through its
    # URLLib3Session, watched during recorded calls.
    client = boto3.client(
        "bedrock-runtime",
        region_name="us-east-1",
        endpoint_url=server.endpoint_url,
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=Config(retries={"mode": "standard", "total_max_attempts": 3}),
    )
    model = f"retry-1-429-{uuid.uuid4().hex[:8]}"
    client.converse(modelId=model, messages=MESSAGES)
    span = telemetry.only_span()
    assert "error.type" not in span.attributes
    assert span.attributes["llm_otel.request.retries"] == 1
    (event,) = [e for e in span.events if e.name == "llm_otel.request.retry"]
    assert event.attributes["error.type"] == "429"
    (retries,) = telemetry.points("llm_otel.client.retries")
    assert retries.value == 1 and retries.attributes["error.type"] == "429"
