"""Chat Completions, synchronous, not streamed: span, attributes, metrics, errors, parentage."""

from __future__ import annotations

import contextlib
import gc

import openai
import pytest
from opentelemetry import trace
from opentelemetry.trace import SpanKind, StatusCode

from llm_otel.genai import DURATION_BUCKETS, TOKEN_BUCKETS
from tests.conftest import USER, Telemetry
from tests.servers.openai_server import OpenAITestServer


def test_chat_span_has_semconv_attributes(
    client: openai.OpenAI, telemetry: Telemetry, server: OpenAITestServer
) -> None:
    result = client.chat.completions.create(
        model="gpt-test",
        messages=USER,
        temperature=0.5,
        top_p=0.9,
        max_completion_tokens=64,
        frequency_penalty=0.1,
        presence_penalty=0.2,
        stop=["END"],
        seed=7,
        n=2,
        response_format={"type": "json_object"},
        service_tier="default",
    )
    assert isinstance(result, openai.types.chat.ChatCompletion)
    assert result.choices[0].message.content == "Hello from the test server"

    span = telemetry.only_span()
    assert span.name == "chat gpt-test"
    assert span.kind is SpanKind.CLIENT
    assert span.status.status_code is StatusCode.UNSET
    assert dict(span.attributes or {}) == {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-test",
        "server.address": "127.0.0.1",
        "server.port": server.port,
        "gen_ai.request.temperature": 0.5,
        "gen_ai.request.top_p": 0.9,
        "gen_ai.request.max_tokens": 64,
        "gen_ai.request.frequency_penalty": 0.1,
        "gen_ai.request.presence_penalty": 0.2,
        "gen_ai.request.stop_sequences": ("END",),
        "gen_ai.request.seed": 7,
        "gen_ai.request.choice.count": 2,
        "gen_ai.output.type": "json",
        "openai.request.service_tier": "default",
        "gen_ai.response.id": "chatcmpl-test",
        "gen_ai.response.model": "gpt-test-2024",
        "gen_ai.response.finish_reasons": ("stop", "stop"),
        "gen_ai.usage.input_tokens": 12,
        "gen_ai.usage.output_tokens": 5,
        "gen_ai.usage.cache_read.input_tokens": 4,
        "gen_ai.usage.reasoning.output_tokens": 2,
        "openai.response.service_tier": "default",
        "openai.response.system_fingerprint": "fp_test",
    }


def test_sampling_relevant_attributes_are_given_at_span_start(
    client: openai.OpenAI, telemetry: Telemetry
) -> None:
    seen: dict[str, object] = {}

    class Recorder:
        def on_start(self, span: object, parent_context: object = None) -> None:
            seen.update(getattr(span, "attributes", None) or {})

        def on_end(self, span: object) -> None: ...
        def shutdown(self) -> None: ...
        def force_flush(self, timeout_millis: int = 0) -> bool:
            return True

    telemetry.tracer_provider.add_span_processor(Recorder())  # type: ignore[arg-type]
    client.chat.completions.create(model="gpt-test", messages=USER)
    for key in ("gen_ai.operation.name", "gen_ai.provider.name", "gen_ai.request.model"):
        assert key in seen
    assert seen["server.address"] == "127.0.0.1"
    assert "server.port" in seen


def test_metrics_have_semconv_units_attributes_and_buckets(
    client: openai.OpenAI, telemetry: Telemetry, server: OpenAITestServer
) -> None:
    client.chat.completions.create(model="gpt-test", messages=USER)

    duration = telemetry.metric("gen_ai.client.operation.duration")
    assert duration.unit == "s"
    (point,) = duration.data.data_points
    assert tuple(point.explicit_bounds) == DURATION_BUCKETS
    assert point.count == 1
    assert 0 < point.sum < 5
    assert dict(point.attributes) == {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-test",
        "gen_ai.response.model": "gpt-test-2024",
        "server.address": "127.0.0.1",
        "server.port": server.port,
    }

    usage = telemetry.metric("gen_ai.client.token.usage")
    assert usage.unit == "{token}"
    by_type = {p.attributes["gen_ai.token.type"]: p for p in usage.data.data_points}
    assert set(by_type) == {"input", "output"}
    assert by_type["input"].sum == 12 and by_type["output"].sum == 5
    assert tuple(by_type["input"].explicit_bounds) == TOKEN_BUCKETS
    # Non-streamed calls must not report chunk timings.
    assert telemetry.points("gen_ai.client.operation.time_to_first_chunk") == []
    assert telemetry.points("gen_ai.client.operation.time_per_output_chunk") == []


def test_tool_calls_and_finish_reason(client: openai.OpenAI, telemetry: Telemetry) -> None:
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {}}}]
    result = client.chat.completions.create(model="tool-model", messages=USER, tools=tools)
    assert result.choices[0].message.tool_calls[0].function.name == "get_weather"
    span = telemetry.only_span()
    assert span.attributes["gen_ai.response.finish_reasons"] == ("tool_calls",)
    assert "gen_ai.tool.definitions" not in span.attributes  # content is off by default


@pytest.mark.parametrize(
    ("model", "exc_type", "error_type"),
    [
        ("error-429", openai.RateLimitError, "429"),
        ("error-500", openai.InternalServerError, "500"),
        ("error-400", openai.BadRequestError, "400"),
    ],
)
def test_http_errors_mark_span_and_reraise_unchanged(
    client: openai.OpenAI,
    telemetry: Telemetry,
    model: str,
    exc_type: type[Exception],
    error_type: str,
) -> None:
    with pytest.raises(exc_type) as caught:
        client.chat.completions.create(model=model, messages=USER)
    assert caught.value.status_code == int(error_type)  # type: ignore[attr-defined]

    span = telemetry.only_span()
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes["error.type"] == error_type
    assert [e.name for e in span.events] == ["exception"]
    (point,) = telemetry.points("gen_ai.client.operation.duration")
    assert point.attributes["error.type"] == error_type
    assert telemetry.points("gen_ai.client.token.usage") == []


def test_connection_error_uses_exception_class(telemetry: Telemetry) -> None:
    client = openai.OpenAI(base_url="http://127.0.0.1:9/v1", api_key="k", max_retries=0)
    with pytest.raises(openai.APIConnectionError):
        client.chat.completions.create(model="gpt-test", messages=USER)
    span = telemetry.only_span()
    assert span.attributes["error.type"] == "APIConnectionError"
    assert span.attributes["server.port"] == 9


def test_server_address_follows_the_clients_base_url(
    server: OpenAITestServer, telemetry: Telemetry
) -> None:
    """server.address/port are what the client's base_url says: worked out once per URL the
    client holds (openai 3.6x's property imports a module on every read), and again when the
    client is given a new one."""
    client = openai.OpenAI(base_url=server.base_url, api_key="k", max_retries=0)
    for _ in range(2):
        client.chat.completions.create(model="gpt-test", messages=USER)
    client.base_url = f"http://localhost:{server.port}/v1"
    client.chat.completions.create(model="gpt-test", messages=USER)
    spans = telemetry.spans()
    assert [(s.attributes["server.address"], s.attributes["server.port"]) for s in spans] == [
        ("127.0.0.1", server.port),
        ("127.0.0.1", server.port),
        ("localhost", server.port),
    ]


def test_retries_inside_one_call_make_one_span(
    server: OpenAITestServer, telemetry: Telemetry
) -> None:
    client = openai.OpenAI(base_url=server.base_url, api_key="k", max_retries=2)
    before = len(server.requests)
    with pytest.raises(openai.InternalServerError):
        client.with_options(timeout=5).chat.completions.create(model="error-500", messages=USER)
    assert len(server.requests) - before == 3
    assert len(telemetry.spans()) == 1


def test_span_is_child_of_the_current_span(client: openai.OpenAI, telemetry: Telemetry) -> None:
    tracer = telemetry.tracer_provider.get_tracer("app")
    with tracer.start_as_current_span("handle request") as outer:
        client.chat.completions.create(model="gpt-test", messages=USER)
        assert trace.get_current_span() is outer
    llm, parent = telemetry.spans()
    assert parent.name == "handle request"
    assert llm.parent is not None
    assert llm.parent.span_id == parent.context.span_id
    assert llm.context.trace_id == parent.context.trace_id


def test_azure_client_reports_azure_provider(
    server: OpenAITestServer, telemetry: Telemetry
) -> None:
    client = openai.AzureOpenAI(
        azure_endpoint=f"http://127.0.0.1:{server.port}",
        api_key="k",
        api_version="2024-10-21",
        max_retries=0,
    )
    # The test server does not route Azure's deployment paths; the span is what matters.
    with contextlib.suppress(openai.NotFoundError):
        client.chat.completions.create(model="gpt-test", messages=USER)
    span = telemetry.only_span()
    assert span.attributes["gen_ai.provider.name"] == "azure.ai.openai"
    assert span.attributes["server.address"] == "127.0.0.1"


def test_parse_helper_makes_one_span(client: openai.OpenAI, telemetry: Telemetry) -> None:
    completions = client.chat.completions
    parse = (
        completions.parse if hasattr(completions, "parse") else client.beta.chat.completions.parse
    )
    result = parse(model="gpt-test", messages=USER)
    assert result.choices[0].message.content == "Hello from the test server"
    span = telemetry.only_span()
    assert span.attributes["gen_ai.usage.output_tokens"] == 5


def test_with_raw_response_keeps_the_raw_object(
    client: openai.OpenAI, telemetry: Telemetry
) -> None:
    raw = client.chat.completions.with_raw_response.create(model="gpt-test", messages=USER)
    assert raw.headers["x-request-id"] == "req_test"
    completion = raw.parse()
    assert completion.choices[0].message.content == "Hello from the test server"
    assert raw.parse() is completion
    span = telemetry.only_span()
    assert span.attributes["gen_ai.usage.input_tokens"] == 12


def test_with_streaming_response_records_the_body_when_the_app_reads_it(
    client: openai.OpenAI, telemetry: Telemetry
) -> None:
    with client.chat.completions.with_streaming_response.create(
        model="gpt-test", messages=USER
    ) as response:
        assert telemetry.spans() == []  # the call is not over: its body is still to come
        completion = response.parse()
        assert completion.choices[0].message.content == "Hello from the test server"
        assert response.parse() is completion
    span = telemetry.only_span()
    assert span.attributes["gen_ai.request.model"] == "gpt-test"
    assert span.attributes["gen_ai.usage.input_tokens"] == 12
    assert span.attributes["gen_ai.response.id"] == "chatcmpl-test"


def test_the_parse_hook_is_installed_by_the_first_deferred_call_only(
    client: openai.OpenAI, telemetry: Telemetry
) -> None:
    """The SDK parses every response through ``APIResponse.parse``: llm-otel hooks it (to end
    deferred calls) only once a call is deferred, and uninstrumenting takes the hook away."""
    from openai._response import APIResponse

    from llm_otel.instrumentation.openai import OpenAIInstrumentor

    client.chat.completions.create(model="gpt-test", messages=USER)
    assert not hasattr(APIResponse.__dict__["parse"], "__wrapped__"), "no deferred call yet"
    with client.chat.completions.with_streaming_response.create(
        model="gpt-test", messages=USER
    ) as response:
        assert hasattr(APIResponse.__dict__["parse"], "__wrapped__")
        response.parse()
    _, deferred = telemetry.spans()
    assert deferred.attributes["gen_ai.usage.input_tokens"] == 12
    OpenAIInstrumentor().uninstrument()
    assert not hasattr(APIResponse.__dict__["parse"], "__wrapped__")


def test_a_stream_through_with_streaming_response(
    client: openai.OpenAI, telemetry: Telemetry
) -> None:
    """How the OpenAI Agents SDK streams: the raw response first, the event stream from its
    parse(), consumed later. The call ends when the stream does, with its usage and TTFT."""
    with client.chat.completions.with_streaming_response.create(
        model="gpt-test", messages=USER, stream=True, stream_options={"include_usage": True}
    ) as response:
        stream = response.parse()
        text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text == "Hello from the test server"
    span = telemetry.only_span()
    assert span.attributes["gen_ai.request.stream"] is True
    assert span.attributes["gen_ai.usage.output_tokens"] == 5
    assert span.attributes["gen_ai.response.time_to_first_chunk"] > 0
    (ttfc,) = telemetry.points("gen_ai.client.operation.time_to_first_chunk")
    assert ttfc.count == 1


def test_a_raw_stream_from_with_raw_response(client: openai.OpenAI, telemetry: Telemetry) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-test", messages=USER, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(raw.parse())
    assert chunks and telemetry.only_span().attributes["gen_ai.usage.output_tokens"] == 5


def test_a_streaming_response_closed_unread_or_dropped_ends_its_span(
    client: openai.OpenAI, telemetry: Telemetry
) -> None:
    from llm_otel.genai._abandoned import drain_abandoned

    with client.chat.completions.with_streaming_response.create(
        model="gpt-test", messages=USER, stream=True
    ) as response:
        lines = list(response.iter_lines())  # the app reads the raw SSE lines itself
    assert any(line.startswith("data:") for line in lines)
    span = telemetry.only_span()
    assert span.attributes["gen_ai.request.model"] == "gpt-test"
    assert "gen_ai.usage.output_tokens" not in span.attributes
    telemetry.spans_exporter.clear()

    dropped = client.chat.completions.with_streaming_response.create(
        model="gpt-test", messages=USER
    ).__enter__()
    dropped.close()  # closed, never parsed: the transport's end is the call's
    assert len(telemetry.spans()) == 1
    telemetry.spans_exporter.clear()
    manager = client.chat.completions.with_streaming_response.create(
        model="gpt-test", messages=USER
    )
    lost = manager.__enter__()
    del lost, manager  # dropped unread, never closed: ended off the collector's path
    gc.collect()
    drain_abandoned()
    assert len(telemetry.spans()) == 1


def test_suppress_instrumentation_records_nothing(
    client: openai.OpenAI, telemetry: Telemetry
) -> None:
    from opentelemetry.instrumentation.utils import suppress_instrumentation

    with suppress_instrumentation():
        client.chat.completions.create(model="gpt-test", messages=USER)
    assert telemetry.spans() == []
    assert telemetry.points("gen_ai.client.operation.duration") == []


@pytest.mark.parametrize("value", [True, False])
@pytest.mark.parametrize("how", ["plain key", "api key"])
def test_each_suppression_key_is_honoured_as_the_api_reads_it(
    client: openai.OpenAI, telemetry: Telemetry, how: str, value: bool
) -> None:
    """The wrappers look the suppression keys up in the context they read once; each key alone
    suppresses, and a key set to False does not (is_instrumentation_enabled's rule)."""
    from opentelemetry import context
    from opentelemetry.instrumentation.utils import is_instrumentation_enabled

    key: str = "suppress_instrumentation"
    if how == "api key":  # the one suppress_instrumentation() sets besides the plain key
        key = context._SUPPRESS_INSTRUMENTATION_KEY
    token = context.attach(context.set_value(key, value))
    try:
        assert is_instrumentation_enabled() is not value
        client.chat.completions.create(model="gpt-test", messages=USER)
    finally:
        context.detach(token)
    assert len(telemetry.spans()) == (0 if value else 1)
    assert len(telemetry.points("gen_ai.client.operation.duration")) == (0 if value else 1)


def test_metrics_are_recorded_when_the_span_is_sampled_out(server: OpenAITestServer) -> None:
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.sampling import ALWAYS_OFF

    from llm_otel.instrumentation.openai import OpenAIInstrumentor

    reader = InMemoryMetricReader()
    OpenAIInstrumentor().instrument(
        tracer_provider=TracerProvider(sampler=ALWAYS_OFF),
        meter_provider=MeterProvider(metric_readers=[reader]),
    )
    try:
        client = openai.OpenAI(base_url=server.base_url, api_key="k", max_retries=0)
        client.chat.completions.create(model="gpt-test", messages=USER)
    finally:
        OpenAIInstrumentor().uninstrument()
    names = {
        m.name
        for rm in reader.get_metrics_data().resource_metrics
        for sm in rm.scope_metrics
        for m in sm.metrics
    }
    assert {"gen_ai.client.operation.duration", "gen_ai.client.token.usage"} <= names
