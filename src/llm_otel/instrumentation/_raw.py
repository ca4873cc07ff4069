"""Raw results of the Stainless SDKs (openai, anthropic, groq): ``with_raw_response`` and
``with_streaming_response``. Find the parsed body if it is ours to read without changing what the
application sees."""

from __future__ import annotations

import importlib
import threading
from typing import Any

from llm_otel._guard import guarded, report_internal_error
from llm_otel.genai._adapter import BaseAdapter
from llm_otel.genai._deferred import closed, parsed, pending
from llm_otel.instrumentation._support import Patches

__all__ = ["StainlessAdapter", "body_unread", "patch_raw_responses", "unwrap_response"]


def unwrap_response(result: Any) -> Any:
    """The parsed response object, or None when reading it would consume the user's body.

    ``parse()`` caches its result, so parsing a non-streamed raw response here hands the
    application the very same object later. A raw stream, or a
    ``with_streaming_response`` body that has not been read yet, is left alone: the span then
    carries the request attributes only.
    """
    name = type(result).__name__
    if name == "LegacyAPIResponse":
        if getattr(result, "_stream", False):
            return None
        return result.parse()
    if name.endswith("APIResponse"):
        # ``with_raw_response`` on newer SDKs: the body of a non-streamed call is already read
        # (its HTTP response is closed) and parse() caches, so reading it here is free for the
        # caller. A stream, or a ``with_streaming_response`` body not yet read, is left alone.
        if getattr(result, "_is_sse_stream", True):
            return None
        http_response = getattr(result, "http_response", None)
        if getattr(http_response, "is_closed", False) is not True:
            return None
        return result.parse()
    return result


def body_unread(result: Any) -> bool:
    """A raw response whose body the app is still to read: a raw stream
    (``with_raw_response`` of ``stream=True``), or a ``with_streaming_response`` body. The call
    is then deferred: the SDK's parse and close hooks are installed first (see
    :func:`patch_raw_responses`)."""
    name = type(result).__name__
    if name == "LegacyAPIResponse":
        unread = getattr(result, "_stream", False) is True
    elif name in ("APIResponse", "AsyncAPIResponse"):
        unread = getattr(result, "_is_sse_stream", False) is True or (
            getattr(getattr(result, "http_response", None), "is_closed", True) is False
        )
    else:
        return False
    if unread:
        _install_hooks(type(result).__module__.partition(".")[0])
    return unread


# The SDKs parse every response through these (``create`` calls ``parse()``): with no
# deferred call waiting, they return at once (no generator-based guard per call).
def _sync_parse(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    value = wrapped(*args, **kwargs)
    if not pending() or kwargs.get("to") is not None:
        return value  # ``to``: the app's own type, not what the adapter knows how to read
    try:
        return parsed(instance, value)
    except Exception as exc:
        report_internal_error("raw response parse", exc)
    return value


async def _async_parse(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    value = await wrapped(*args, **kwargs)
    if not pending() or kwargs.get("to") is not None:
        return value
    try:
        return parsed(instance, value)
    except Exception as exc:
        report_internal_error("raw response parse", exc)
    return value


class StainlessAdapter(BaseAdapter):
    """An adapter for a Stainless SDK's operation (openai, anthropic, groq): its raw responses
    whose body the app reads later are deferred calls (see :func:`patch_raw_responses`)."""

    body_unread = staticmethod(body_unread)


# package -> [the instrumentation's patches, whether the hooks are installed]
_HOOKS: dict[str, list[Any]] = {}
_hooks_lock = threading.Lock()


def patch_raw_responses(patches: Patches, package: str) -> None:
    """Tell the core when the app parses or closes ``package``'s raw responses (a Stainless SDK:
    ``openai``, ``anthropic``, ``groq``), so a deferred call ends then (``genai._deferred``).

    The hooks go into ``patches`` when the first call of ``package`` is deferred
    (:func:`body_unread`), not now: the SDKs parse every response through ``parse()``, and an
    app that never reads a body later would pay for the hook on each call (~8k instructions)."""
    with _hooks_lock:
        _HOOKS[package] = [patches, False]


def _install_hooks(package: str) -> None:
    with _hooks_lock:
        entry = _HOOKS.get(package)
        if entry is None or entry[1] or not entry[0]:  # (empty patches: uninstrumented since)
            return
        entry[1] = True
        _patch_raw_responses(entry[0], package)


def _patch_raw_responses(patches: Patches, package: str) -> None:

    def sync_close(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        try:
            return wrapped(*args, **kwargs)
        finally:
            with guarded("raw response close"):
                closed(instance)

    async def async_close(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        try:
            return await wrapped(*args, **kwargs)
        finally:
            with guarded("raw response close"):
                closed(instance)

    for module_name, class_name, wrappers in (
        ("_response", "APIResponse", {"parse": _sync_parse, "close": sync_close}),
        ("_response", "AsyncAPIResponse", {"parse": _async_parse, "close": async_close}),
        ("_legacy_response", "LegacyAPIResponse", {"parse": _sync_parse}),
    ):
        try:
            cls = getattr(importlib.import_module(f"{package}.{module_name}"), class_name)
        except (ImportError, AttributeError):
            continue
        for method, wrapper in wrappers.items():
            if callable(cls.__dict__.get(method)):
                patches.wrap(cls, method, wrapper)
