"""The HTTP attempts inside one recorded LLM call: the retries the client library makes, and the
rate-limit headroom the provider reports in its response headers.

The client libraries retry inside one call (429, 408, 409, 5xx; backoff honouring
``retry-after``), so a call that succeeded after two 429s looks like one slow success. llm-otel
watches the HTTP requests that run inside a recorded call, at the two places every supported
SDK sends them through: ``httpx.Client.send`` / ``httpx.AsyncClient.send`` (openai, anthropic,
groq, mistralai, cohere, google-genai, ollama, litellm; the newest openai and anthropic use its
fork ``httpx2``, watched the same way), aiohttp's ``ClientSession._request`` (google-genai sends
its async calls through aiohttp whenever it is installed) and botocore's
``URLLib3Session.send`` (Bedrock). Outside a recorded call the watcher only passes through.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterable
from time import perf_counter
from typing import Any

import wrapt

from llm_otel._guard import report_internal_error
from llm_otel.genai._incall import IN_CALL

__all__ = [
    "RATE_LIMIT_HEADERS",
    "Attempt",
    "attempt_error",
    "headroom",
    "last_headers",
    "retried",
    "unwatch_http",
    "watch_http",
]

HEADROOM_PROVIDERS = frozenset({"openai", "azure.ai.openai", "groq", "anthropic"})
"""Providers whose answers carry rate-limit headers (the others' are not read)."""

RATE_LIMIT_HEADERS: dict[str, str] = {
    "x-ratelimit-remaining-requests": "requests",
    "x-ratelimit-remaining-tokens": "tokens",
    "anthropic-ratelimit-requests-remaining": "requests",
    "anthropic-ratelimit-tokens-remaining": "tokens",
    "anthropic-ratelimit-input-tokens-remaining": "input_tokens",
    "anthropic-ratelimit-output-tokens-remaining": "output_tokens",
}
"""Response headers that tell what is left of a limit -> ``llm_otel.rate_limit.kind``."""


Attempt = tuple[float, float, Any]
"""One HTTP attempt of a call: when it started and ended (perf_counter seconds), and its outcome:
the error type of the exception it raised, or the response it got. What a response says (its
status, its headers) is read when the call ends, and only what is asked for then: the statuses of
a retried call's attempts, the last response's headers when a rate-limit headroom is due."""


def attempt_error(outcome: Any) -> str | None:
    """An attempt's error type: the exception's, or an HTTP error status; None: it succeeded."""
    if isinstance(outcome, str):
        return outcome
    status = getattr(outcome, "status_code", None)  # httpx, botocore
    if status is None:
        status = getattr(outcome, "status", None)  # aiohttp
    return str(status) if isinstance(status, int) and status >= 400 else None


def last_headers(attempts: list[Attempt]) -> Any:
    """The headers of the last attempt that got a response (None: none did)."""
    for _, _, outcome in reversed(attempts):
        if not isinstance(outcome, str):
            return getattr(outcome, "headers", None)
    return None


def retried(attempts: list[Attempt]) -> list[tuple[int, str, float]]:
    """(attempt number, its error type, seconds waited before the next attempt) for every
    attempt that was followed by another one."""
    out = []
    for index in range(len(attempts) - 1):
        wait = max(0.0, attempts[index + 1][0] - attempts[index][1])
        out.append((index + 1, attempt_error(attempts[index][2]) or "_OTHER", wait))
    return out


def headroom(headers: Any) -> dict[str, int] | None:
    """The rate-limit headroom a response's headers report, if any (read only when the
    headroom is due: at most once a second per provider, model and server, not per attempt)."""
    return _headroom(_header_items(headers))


def _headroom(headers: Iterable[tuple[Any, Any]]) -> dict[str, int] | None:
    found: dict[str, int] | None = None
    for key, value in headers:
        name = key.decode("latin-1") if isinstance(key, bytes) else str(key)
        kind = RATE_LIMIT_HEADERS.get(name.lower())
        if kind is None:
            continue
        text = value.decode("latin-1") if isinstance(value, bytes) else str(value)
        try:
            remaining = int(text.strip())
        except ValueError:
            continue
        if found is None:
            found = {}
        found[kind] = remaining
    return found


def _header_items(headers: Any) -> Any:
    raw = getattr(headers, "raw", None)  # httpx: [(bytes, bytes)], no per-lookup decoding
    if raw is not None:
        return raw
    items = getattr(headers, "items", None)
    return items() if items is not None else ()


def _send(wrapped: Callable[..., Any], instance: Any, args: Any, kwargs: Any) -> Any:
    invocation = IN_CALL.get()
    if invocation is None:
        return wrapped(*args, **kwargs)
    started = perf_counter()
    try:
        response = wrapped(*args, **kwargs)
    except BaseException as exc:
        _attempted(invocation, started, type(exc).__qualname__)
        raise
    _attempted(invocation, started, response)
    return response


async def _asend(wrapped: Callable[..., Any], instance: Any, args: Any, kwargs: Any) -> Any:
    invocation = IN_CALL.get()
    if invocation is None:
        return await wrapped(*args, **kwargs)
    started = perf_counter()
    try:
        response = await wrapped(*args, **kwargs)
    except BaseException as exc:
        _attempted(invocation, started, type(exc).__qualname__)
        raise
    _attempted(invocation, started, response)
    return response


def _attempted(invocation: Any, started: float, outcome: Any) -> None:
    """Tell the call in progress about one HTTP attempt; never raises. ``outcome`` is the
    response itself (its status and headers are read when the call ends, if needed: most calls
    make one attempt and have no headroom due), or the error type of the exception raised."""
    try:
        invocation.on_attempt(started, perf_counter(), outcome)
    except Exception as internal:
        report_internal_error("http attempt", internal)


_TRANSPORTS: dict[str, tuple[tuple[str, str, str, Callable[..., Any]], ...]] = {
    # httpx2 is the fork the newest openai and anthropic SDKs send through.
    "httpx": (
        ("httpx", "Client", "send", _send),
        ("httpx", "AsyncClient", "send", _asend),
        ("httpx2", "Client", "send", _send),
        ("httpx2", "AsyncClient", "send", _asend),
    ),
    # ClientSession.request() hands _request()'s coroutine to a context manager; one per attempt.
    "aiohttp": (("aiohttp", "ClientSession", "_request", _asend),),
    "botocore": (("botocore.httpsession", "URLLib3Session", "send", _send),),
}
_lock = threading.Lock()
_users: dict[str, int] = {}
_undo: dict[str, list[tuple[Any, str, Any]]] = {}


def watch_http(transport: str) -> None:
    """Watch the HTTP attempts of ``transport`` ("httpx", "aiohttp" or "botocore"); counted, so each
    instrumentation that needs it calls this once and :func:`unwatch_http` once. Only modules
    already imported are wrapped (instrumenting imported the SDK, and with it its HTTP stack):
    importing an HTTP library nobody uses (httpx2 next to an SDK on httpx) would cost its import
    time and change nothing."""
    with _lock:
        _users[transport] = _users.get(transport, 0) + 1
        undo = _undo.setdefault(transport, [])
        wrapped = {(owner, method) for owner, method, _ in undo}
        for module_name, class_name, method, wrapper in _TRANSPORTS[transport]:
            module = sys.modules.get(module_name)
            owner = getattr(module, class_name, None) if module is not None else None
            if owner is None or (owner, method) in wrapped:
                continue
            original = owner.__dict__.get(method)
            if original is None:
                continue
            wrapt.wrap_function_wrapper(owner, method, wrapper)
            undo.append((owner, method, original))


def unwatch_http(transport: str) -> None:
    """One instrumentation less; the last one out restores the transport's methods."""
    with _lock:
        _users[transport] = max(0, _users.get(transport, 0) - 1)
        if _users[transport]:
            return
        undo = _undo.get(transport, [])
        while undo:
            owner, method, original = undo.pop()
            installed = owner.__dict__.get(method)
            if getattr(installed, "__wrapped__", None) is original:
                setattr(owner, method, original)
