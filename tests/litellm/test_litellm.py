"""LiteLLM (its Python SDK) over HTTP against local servers: the openai route (LiteLLM calls the
openai SDK, itself instrumented) and the anthropic route (LiteLLM's own HTTP handler).

Runs in .venv-litellm (scripts/test.sh): no litellm on this machine's PyPI mirror accepts
openai 3, which the main venv has.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import sys
from collections.abc import Iterator
from typing import Any

import pytest

# The model price map: the copy inside the package, not a download (no network in tests).
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
litellm = pytest.importorskip("litellm")

from llm_otel.genai import ContentMode, ContentPolicy  # noqa: E402
from llm_otel.instrumentation.anthropic import AnthropicInstrumentor  # noqa: E402
from llm_otel.instrumentation.litellm import LiteLLMInstrumentor  # noqa: E402
from tests.conftest import USER, Telemetry, make_telemetry  # noqa: E402
from tests.servers.anthropic_server import AnthropicTestServer  # noqa: E402
from tests.servers.openai_server import TEXT, OpenAITestServer  # noqa: E402

ON = ContentPolicy(ContentMode.SPAN_ONLY)


@pytest.fixture(scope="module")
def anthropic_server() -> Iterator[AnthropicTestServer]:
    srv = AnthropicTestServer().start()
    yield srv
    srv.stop()


@pytest.fixture
def telemetry(content_policy: ContentPolicy) -> Iterator[Telemetry]:
    # The openai instrumentation is on too (make_telemetry installs it), as it would be under
    # configure() or opentelemetry-instrument: LiteLLM's inner openai call must not add a span.
    result = make_telemetry(content_policy)
    LiteLLMInstrumentor().instrument(**result.providers, content_policy=content_policy)
    AnthropicInstrumentor().instrument(**result.providers, content_policy=content_policy)
    yield result
    LiteLLMInstrumentor().uninstrument()
    AnthropicInstrumentor().uninstrument()
    from llm_otel.instrumentation.openai import OpenAIInstrumentor

    OpenAIInstrumentor().uninstrument()
    gc.collect()


def _openai(server: OpenAITestServer, **kwargs: Any) -> dict[str, Any]:
    return {"api_base": server.base_url, "api_key": "k", "messages": USER, **kwargs}


@pytest.mark.parametrize("content_policy", [ON])
def test_completion_over_the_openai_sdk_is_one_span(
    server: OpenAITestServer, telemetry: Telemetry
) -> None:
    reply = litellm.completion(
        model="openai/gpt-4o-mini", temperature=0.3, max_tokens=20, **_openai(server)
    )
    assert reply.choices[0].message.content == TEXT
    span = telemetry.only_span()  # not a second one for the openai SDK call underneath
    a = span.attributes
    assert span.name == "chat gpt-4o-mini"
    assert span.instrumentation_scope.name == "llm_otel"
    assert a["gen_ai.provider.name"] == "openai"
    assert a["gen_ai.request.model"] == "gpt-4o-mini"  # as the provider sees it
    assert a["server.address"] == "127.0.0.1"
    assert a["server.port"] == server.port
    assert a["gen_ai.request.temperature"] == 0.3
    assert a["gen_ai.request.max_tokens"] == 20
    assert a["gen_ai.response.finish_reasons"] == ("stop",)
    assert a["gen_ai.usage.input_tokens"] > 0
    assert a["gen_ai.usage.output_tokens"] > 0
    (output,) = json.loads(a["gen_ai.output.messages"])
    assert output["parts"] == [{"type": "text", "content": TEXT}]
    assert len(telemetry.points("gen_ai.client.operation.duration")) == 1


def test_stream_sync_and_async(server: OpenAITestServer, telemetry: Telemetry) -> None:
    chunks = litellm.completion(model="openai/gpt-4o-mini", stream=True, **_openai(server))
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert text == TEXT

    async def run() -> str:
        reply = await litellm.acompletion(model="openai/gpt-4o-mini", **_openai(server))
        stream = await litellm.acompletion(
            model="openai/gpt-4o-mini", stream=True, **_openai(server)
        )
        parts = [c.choices[0].delta.content or "" async for c in stream]
        return str(reply.choices[0].message.content) + "|" + "".join(parts)

    assert asyncio.run(run()) == TEXT + "|" + TEXT
    spans = telemetry.spans()
    assert len(spans) == 3, [s.name for s in spans]
    streamed, plain, astreamed = spans
    for span in (streamed, astreamed):
        assert span.attributes["gen_ai.request.stream"] is True
        assert span.attributes["gen_ai.response.time_to_first_chunk"] > 0
        assert span.attributes["gen_ai.response.finish_reasons"] == ("stop",)
    assert (
        "gen_ai.request.stream" not in plain.attributes
        or not plain.attributes["gen_ai.request.stream"]
    )


def test_stream_closed_early_and_errors(server: OpenAITestServer, telemetry: Telemetry) -> None:
    stream = litellm.completion(model="openai/long-stream", stream=True, **_openai(server))
    next(iter(stream))
    del stream
    gc.collect()
    with pytest.raises(litellm.RateLimitError):
        litellm.completion(model="openai/error-429", num_retries=0, **_openai(server))
    abandoned, failed = telemetry.spans()
    assert "error.type" not in abandoned.attributes
    assert failed.attributes["error.type"] == "429"
    assert failed.status.status_code.name == "ERROR"


@pytest.mark.parametrize("content_policy", [ON])
def test_anthropic_route_uses_litellms_own_http(
    anthropic_server: AnthropicTestServer, telemetry: Telemetry
) -> None:
    reply = litellm.completion(
        model="anthropic/claude-test",
        messages=USER,
        api_base=anthropic_server.base_url,
        api_key="k",
        max_tokens=30,
    )
    assert reply.choices[0].message.content == TEXT
    span = telemetry.only_span()
    a = span.attributes
    assert span.name == "chat claude-test"
    assert a["gen_ai.provider.name"] == "anthropic"
    assert a["server.port"] == anthropic_server.port
    assert a["gen_ai.usage.output_tokens"] > 0
    assert a["gen_ai.response.finish_reasons"] == ("stop",)


def test_embedding(server: OpenAITestServer, telemetry: Telemetry) -> None:
    litellm.embedding(
        model="openai/text-embedding-3-small", input=["a"], api_base=server.base_url, api_key="k"
    )

    async def run() -> None:
        await litellm.aembedding(
            model="openai/text-embedding-3-small", input=["a"], api_base=server.base_url,
            api_key="k",
        )  # fmt: skip

    asyncio.run(run())
    sync, asynchronous = telemetry.spans()
    for span in (sync, asynchronous):
        assert span.name == "embeddings text-embedding-3-small"
        assert span.attributes["gen_ai.operation.name"] == "embeddings"
        assert span.attributes["gen_ai.usage.input_tokens"] > 0


def test_uninstrument(server: OpenAITestServer, telemetry: Telemetry) -> None:
    from llm_otel.instrumentation.openai import OpenAIInstrumentor

    # LiteLLM's wrapper alone (whether LiteLLM reaches OpenAI through the openai SDK, as 1.103
    # does, or through its own HTTP handler, as 1.109 does).
    OpenAIInstrumentor().uninstrument()
    litellm.completion(model="openai/gpt-4o-mini", **_openai(server))
    assert len(telemetry.spans()) == 1
    LiteLLMInstrumentor().uninstrument()
    litellm.completion(model="openai/gpt-4o-mini", **_openai(server))
    assert len(telemetry.spans()) == 1
    main = sys.modules["litellm.main"]
    for module in (litellm, main):
        for name in ("completion", "acompletion", "embedding", "aembedding"):
            assert type(module.__dict__[name]).__name__ == "function"
    for name in ("completion", "acompletion"):
        assert type(litellm.Router.__dict__[name]).__name__ == "function"


def _router(server: OpenAITestServer) -> Any:
    def deployment(group: str, model: str) -> dict[str, Any]:
        params = {"model": f"openai/{model}", "api_base": server.base_url, "api_key": "k"}
        return {"model_name": group, "litellm_params": params}

    return litellm.Router(
        model_list=[deployment("primary", "error-500"), deployment("backup", "gpt-4o-mini")],
        fallbacks=[{"primary": ["backup"]}],
        num_retries=0,
    )


def test_router_fallback_is_one_span_that_says_what_answered(
    server: OpenAITestServer, telemetry: Telemetry
) -> None:
    router = _router(server)
    reply = router.completion(model="primary", messages=USER)
    assert reply.choices[0].message.content == TEXT
    span = telemetry.only_span()  # the deployments' litellm.completion calls add none
    attrs = span.attributes
    assert span.name == "chat primary"
    assert attrs["gen_ai.request.model"] == "primary"
    assert attrs["gen_ai.provider.name"] == "openai"
    assert attrs["gen_ai.response.model"].startswith("gpt-4o-mini")
    assert attrs["llm_otel.litellm.model_group"] == "backup"
    assert attrs["llm_otel.litellm.deployment"] == "openai/gpt-4o-mini"
    assert attrs["llm_otel.litellm.fallbacks"] == 1
    assert "error.type" not in attrs
    # The failed deployment's request is an attempt of this call, with its error.
    (event,) = [e for e in span.events if e.name == "llm_otel.request.retry"]
    assert event.attributes["error.type"] == "500"


def test_router_async_without_fallback(server: OpenAITestServer, telemetry: Telemetry) -> None:
    router = _router(server)

    async def run() -> Any:
        return await router.acompletion(model="backup", messages=USER)

    asyncio.run(run())
    attrs = telemetry.only_span().attributes
    assert attrs["gen_ai.request.model"] == "backup"
    assert attrs["llm_otel.litellm.model_group"] == "backup"
    assert "llm_otel.litellm.fallbacks" not in attrs
    assert "llm_otel.request.retries" not in attrs
