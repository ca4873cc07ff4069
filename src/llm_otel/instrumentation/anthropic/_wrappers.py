"""Which Anthropic SDK methods are wrapped, and how the SDK's own span is kept out of the way.

The ``stream()`` helpers do not go through ``create``: they hand a prepared request to a stream
manager that sends it on ``__enter__``. The helper wrapper replaces that prepared request with one
that runs through the same recording wrapper as ``create(stream=True)``.

anthropic 2.x starts its own CLIENT span for every API call (scope ``com.anthropic.sdk.python``).
For the calls llm_otel records, the SDK is told it has no tracer for the duration of the call, so
each call has exactly one span: ours, semconv-named, with the GenAI metrics. The SDK's spans for
everything else (count_tokens, files, models, ...) are left as they are.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from llm_otel.genai import (
    GenAITelemetry,
    async_wrapper,
    guarded,
    in_instrumented_call,
    sync_wrapper,
)
from llm_otel.instrumentation.anthropic._messages import MessagesAdapter

__all__ = ["TARGET_MODULES", "present_targets", "sdk_tracer_property"]

#: Modules with ``Messages`` / ``AsyncMessages`` (the GA API and the beta one).
TARGET_MODULES = (
    "anthropic.resources.messages.messages",
    "anthropic.resources.beta.messages.messages",
)
_CALLS = ("create", "parse")


def _stream_helper(call: Callable[..., Any]) -> Callable[..., Any]:
    """Wraps ``stream(...)``: the manager it returns sends an instrumented request instead."""

    def wrapper(wrapped: Callable[..., Any], instance: Any, args: Any, kwargs: Any) -> Any:
        manager = wrapped(*args, **kwargs)
        with guarded("anthropic stream helper"):  # a manager we do not know: left untraced
            slot = next(name for name in vars(manager) if name.endswith("__api_request"))
            prepared = getattr(manager, slot)
            request_kwargs = {**kwargs, "stream": True}

            def send(*_: Any, **__: Any) -> Any:
                return prepared() if callable(prepared) else prepared

            setattr(manager, slot, call(send, instance, (), request_kwargs))
        return manager

    return wrapper


def _deferred(call: Callable[..., Any]) -> Callable[..., Any]:
    """The sync manager calls its request later: hand it a thunk instead of the result."""

    def make(send: Callable[..., Any], instance: Any, args: Any, kwargs: Any) -> Any:
        return lambda: call(send, instance, args, kwargs)

    return make


def present_targets(telemetry: GenAITelemetry) -> list[tuple[Any, str, Any]]:
    """(class, method name, wrapper) for every target this anthropic version has."""
    adapter = MessagesAdapter()
    found: list[tuple[Any, str, Any]] = []
    for module_name in TARGET_MODULES:
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        for class_name, make, helper in (
            ("Messages", sync_wrapper, lambda c: _stream_helper(_deferred(c))),
            # The async manager awaits what it is given: the wrapper's coroutine does.
            ("AsyncMessages", async_wrapper, _stream_helper),
        ):
            cls = getattr(module, class_name, None)
            if cls is None:
                continue
            call = make(telemetry, adapter)
            for method in _CALLS:
                if callable(getattr(cls, method, None)):
                    found.append((cls, method, call))
            if callable(getattr(cls, "stream", None)):
                found.append((cls, "stream", helper(call)))
    return found


def sdk_tracer_property() -> tuple[Any, property] | None:
    """(class, replacement) for the SDK's ``_tracer`` property, where the SDK has one."""
    try:
        base = importlib.import_module("anthropic._base_client").BaseClient
    except (ImportError, AttributeError):
        return None
    original = base.__dict__.get("_tracer")
    if not isinstance(original, property) or original.fget is None:
        return None
    fget = original.fget

    def tracer(self: Any) -> Any:
        # While llm_otel records this call, the SDK has no tracer: one span per call, ours.
        if in_instrumented_call():
            return None
        return fget(self)

    return base, property(tracer, doc=original.__doc__)
