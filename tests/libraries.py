"""Every instrumented client library, described once for the tests that must hold for all of them
(host safety, the fault suite): its instrumentor, its local test server, and how to make a
plain call, a stream and an async stream with the real SDK.

Each server names behaviours by model: ``error-429`` answers with an error body that echoes the
request, ``mid_error`` (where the API has an in-stream error) sends an error event that echoes
it, ``long-stream`` sends 200 chunks, and ``truncated`` (where set) ends the stream early, as a
server that closes the connection would.
"""

from __future__ import annotations

import asyncio
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from tests.conftest import Telemetry

__all__ = ["LIBRARIES", "SERVERS", "Env", "Library", "library_params", "shared_server"]


@dataclass(frozen=True)
class Library:
    name: str
    module: str  # the client library's import name
    instrumentor: str  # "module:Class"
    server: str  # "module:Class" of the test server
    client: Callable[[Any], Any]
    aclient: Callable[[Any], Any]
    chat: Callable[[Any, str, str], Any]  # (client, model, prompt) -> response
    stream: Callable[[Any, str, str], Any]  # -> the stream object the app iterates
    astream: Callable[[Any, str, str], Any]  # -> awaitable of an async iterable
    mid_error: str | None = "mid-error"
    truncated: str | None = "truncated"
    model: str = "test-model"
    gc_unsafe_transport: bool = False
    """Its sync client (httpx 0.28 on httpcore 1.0) deadlocks by itself when the collector
    finalizes an abandoned response inside the connection pool's lock (without llm_otel too).
    So does every SDK old enough to use that httpx rather than httpx2 (openai, anthropic in the
    oldest-versions run): the finalizer test checks for that too."""

    @property
    def installed(self) -> bool:
        return importlib.util.find_spec(self.module) is not None

    def load(self, spec: str) -> Any:
        module_name, _, name = spec.partition(":")
        return getattr(importlib.import_module(module_name), name)

    def instrumentor_class(self) -> Any:
        return self.load(self.instrumentor)

    def server_class(self) -> Any:
        return self.load(self.server)


def _user(prompt: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": prompt}]


def _openai_client(server: Any) -> Any:
    import openai

    return openai.OpenAI(base_url=server.base_url, api_key="k", max_retries=0)


def _openai_aclient(server: Any) -> Any:
    import openai

    return openai.AsyncOpenAI(base_url=server.base_url, api_key="k", max_retries=0)


def _groq_client(server: Any) -> Any:
    import groq

    return groq.Groq(base_url=server.base_url.removesuffix("/v1"), api_key="k", max_retries=0)


def _groq_aclient(server: Any) -> Any:
    import groq

    return groq.AsyncGroq(base_url=server.base_url.removesuffix("/v1"), api_key="k", max_retries=0)


def _completions_chat(client: Any, model: str, prompt: str) -> Any:
    return client.chat.completions.create(model=model, messages=_user(prompt))


def _completions_stream(client: Any, model: str, prompt: str) -> Any:
    return client.chat.completions.create(model=model, messages=_user(prompt), stream=True)


async def _completions_astream(client: Any, model: str, prompt: str) -> Any:
    return await client.chat.completions.create(model=model, messages=_user(prompt), stream=True)


def _anthropic_client(server: Any) -> Any:
    import anthropic

    return anthropic.Anthropic(base_url=server.base_url, api_key="k", max_retries=0)


def _anthropic_aclient(server: Any) -> Any:
    import anthropic

    return anthropic.AsyncAnthropic(base_url=server.base_url, api_key="k", max_retries=0)


def _messages(model: str, prompt: str, **extra: Any) -> dict[str, Any]:
    return {"model": model, "messages": _user(prompt), "max_tokens": 50, **extra}


def _anthropic_chat(client: Any, model: str, prompt: str) -> Any:
    return client.messages.create(**_messages(model, prompt))


def _anthropic_stream(client: Any, model: str, prompt: str) -> Any:
    return client.messages.create(**_messages(model, prompt, stream=True))


async def _anthropic_astream(client: Any, model: str, prompt: str) -> Any:
    return await client.messages.create(**_messages(model, prompt, stream=True))


def _mistral_client(server: Any) -> Any:
    try:
        from mistralai.client import Mistral  # mistralai >= 2
    except ImportError:
        from mistralai import Mistral  # type: ignore[no-redef]

    return Mistral(api_key="k", server_url=server.base_url.removesuffix("/v1"))


def _mistral_chat(client: Any, model: str, prompt: str) -> Any:
    return client.chat.complete(model=model, messages=_user(prompt))


def _mistral_stream(client: Any, model: str, prompt: str) -> Any:
    return client.chat.stream(model=model, messages=_user(prompt))


async def _mistral_astream(client: Any, model: str, prompt: str) -> Any:
    return await client.chat.stream_async(model=model, messages=_user(prompt))


def _cohere_client(server: Any) -> Any:
    import cohere

    return cohere.ClientV2(api_key="k", base_url=server.base_url)


def _cohere_aclient(server: Any) -> Any:
    import cohere

    return cohere.AsyncClientV2(api_key="k", base_url=server.base_url)


def _cohere_chat(client: Any, model: str, prompt: str) -> Any:
    return client.chat(model=model, messages=_user(prompt))


def _cohere_stream(client: Any, model: str, prompt: str) -> Any:
    return client.chat_stream(model=model, messages=_user(prompt))


async def _cohere_astream(client: Any, model: str, prompt: str) -> Any:
    return client.chat_stream(model=model, messages=_user(prompt))


def _gemini_client(server: Any) -> Any:
    from google import genai

    return genai.Client(api_key="k", http_options=genai.types.HttpOptions(base_url=server.base_url))


def _gemini_chat(client: Any, model: str, prompt: str) -> Any:
    return client.models.generate_content(model=model, contents=prompt)


def _gemini_stream(client: Any, model: str, prompt: str) -> Any:
    return client.models.generate_content_stream(model=model, contents=prompt)


async def _gemini_astream(client: Any, model: str, prompt: str) -> Any:
    return await client.aio.models.generate_content_stream(model=model, contents=prompt)


def _ollama_client(server: Any) -> Any:
    import ollama

    return ollama.Client(host=server.host)


def _ollama_aclient(server: Any) -> Any:
    import ollama

    return ollama.AsyncClient(host=server.host)


def _ollama_chat(client: Any, model: str, prompt: str) -> Any:
    return client.chat(model=model, messages=_user(prompt))


def _ollama_stream(client: Any, model: str, prompt: str) -> Any:
    return client.chat(model=model, messages=_user(prompt), stream=True)


async def _ollama_astream(client: Any, model: str, prompt: str) -> Any:
    return await client.chat(model=model, messages=_user(prompt), stream=True)


def _bedrock_client(server: Any) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client(
        "bedrock-runtime",
        region_name="us-east-1",
        endpoint_url=server.endpoint_url,
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=Config(retries={"total_max_attempts": 1}),
    )


def _converse(model: str, prompt: str) -> dict[str, Any]:
    return {"modelId": model, "messages": [{"role": "user", "content": [{"text": prompt}]}]}


def _bedrock_chat(client: Any, model: str, prompt: str) -> Any:
    return client.converse(**_converse(model, prompt))


def _bedrock_stream(client: Any, model: str, prompt: str) -> Any:
    return client.converse_stream(**_converse(model, prompt))["stream"]


LIBRARIES = (
    Library(
        "openai",
        "openai",
        "llm_otel.instrumentation.openai:OpenAIInstrumentor",
        "tests.servers.openai_server:OpenAITestServer",
        _openai_client,
        _openai_aclient,
        _completions_chat,
        _completions_stream,
        _completions_astream,
    ),
    Library(
        "anthropic",
        "anthropic",
        "llm_otel.instrumentation.anthropic:AnthropicInstrumentor",
        "tests.servers.anthropic_server:AnthropicTestServer",
        _anthropic_client,
        _anthropic_aclient,
        _anthropic_chat,
        _anthropic_stream,
        _anthropic_astream,
    ),
    Library(
        "groq",
        "groq",
        "llm_otel.instrumentation.groq:GroqInstrumentor",
        "tests.servers.openai_server:OpenAITestServer",
        _groq_client,
        _groq_aclient,
        _completions_chat,
        _completions_stream,
        _completions_astream,
        gc_unsafe_transport=True,
    ),
    Library(
        "mistralai",
        "mistralai",
        "llm_otel.instrumentation.mistralai:MistralInstrumentor",
        "tests.servers.openai_server:OpenAITestServer",
        _mistral_client,
        _mistral_client,
        _mistral_chat,
        _mistral_stream,
        _mistral_astream,
    ),
    Library(
        "cohere",
        "cohere",
        "llm_otel.instrumentation.cohere:CohereInstrumentor",
        "tests.servers.cohere_server:CohereTestServer",
        _cohere_client,
        _cohere_aclient,
        _cohere_chat,
        _cohere_stream,
        _cohere_astream,
        mid_error=None,  # the v2 chat stream has no error event
        gc_unsafe_transport=True,
    ),
    Library(
        "google_genai",
        "google.genai",
        "llm_otel.instrumentation.google_genai:GoogleGenAIInstrumentor",
        "tests.servers.gemini_server:GeminiTestServer",
        _gemini_client,
        _gemini_client,
        _gemini_chat,
        _gemini_stream,
        _gemini_astream,
        mid_error=None,  # errors come as HTTP statuses before the stream
    ),
    Library(
        "ollama",
        "ollama",
        "llm_otel.instrumentation.ollama:OllamaInstrumentor",
        "tests.servers.ollama_server:OllamaTestServer",
        _ollama_client,
        _ollama_aclient,
        _ollama_chat,
        _ollama_stream,
        _ollama_astream,
        gc_unsafe_transport=True,
    ),
    Library(
        "bedrock",
        "botocore",
        "llm_otel.instrumentation.bedrock:BedrockInstrumentor",
        "tests.servers.bedrock_server:BedrockTestServer",
        _bedrock_client,
        _bedrock_client,  # botocore has no async client
        _bedrock_chat,
        _bedrock_stream,
        None,  # type: ignore[arg-type]
        mid_error="midstream-error",
        model="amazon.nova-lite-v1:0",
    ),
)


def library_params(*, streams_async: bool = False) -> list[Any]:
    """``pytest.param`` per library, skipped when the library is not installed here."""
    params = []
    for library in LIBRARIES:
        marks = []
        if not library.installed:
            marks.append(pytest.mark.skip(reason=f"{library.module} is not installed"))
        if streams_async and library.astream is None:
            continue
        params.append(pytest.param(library, id=library.name, marks=marks))
    return params


SERVERS: dict[str, Any] = {}
"""One running test server per server class, shared by the tests of a session."""


def shared_server(library: Library) -> Any:
    cls = library.server_class()
    key = f"{cls.__module__}.{cls.__name__}"
    if key not in SERVERS:
        SERVERS[key] = cls().start()
    return SERVERS[key]


class Env:
    """One library's instrumented client against its test server, for the tests that hold for
    every library (the ``env`` fixture in conftest builds it)."""

    def __init__(self, library: Library, telemetry: Telemetry) -> None:
        self.library = library
        self.telemetry = telemetry
        self.server = shared_server(library)
        self.client = library.client(self.server)

    def chat(self, model: str | None = None, prompt: str = "hello") -> Any:
        return self.library.chat(self.client, model or self.library.model, prompt)

    def stream(self, model: str | None = None, prompt: str = "hello") -> Any:
        return self.library.stream(self.client, model or self.library.model, prompt)

    def read_stream(self, model: str | None = None, prompt: str = "hello") -> int:
        return sum(1 for _ in self.stream(model, prompt))

    def read_async_stream(self, model: str | None = None, prompt: str = "hello") -> int:
        library = self.library

        async def run() -> int:
            client = library.aclient(self.server)
            stream = await library.astream(client, model or library.model, prompt)
            return len([item async for item in stream])

        return asyncio.run(run())
