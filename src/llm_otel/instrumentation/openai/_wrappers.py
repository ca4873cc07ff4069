"""Which OpenAI SDK methods are wrapped, and with which adapter."""

from __future__ import annotations

import importlib
from typing import Any

from llm_otel.genai import GenAITelemetry
from llm_otel.genai._wrapper import Adapter, async_wrapper, sync_wrapper
from llm_otel.instrumentation.openai._chat import ChatAdapter
from llm_otel.instrumentation.openai._embeddings import EmbeddingsAdapter
from llm_otel.instrumentation.openai._responses import ResponsesAdapter

__all__ = ["TARGETS", "present_targets"]

# (module, sync class, async class, methods, adapter type)
TARGETS: tuple[tuple[str, str, str, tuple[str, ...], type[Adapter]], ...] = (
    (
        "openai.resources.chat.completions",
        "Completions",
        "AsyncCompletions",
        ("create", "parse"),
        ChatAdapter,
    ),
    # Older SDKs have parse() only under beta; where it delegates to chat.completions, the
    # in-call guard keeps it to one span.
    (
        "openai.resources.beta.chat.completions",
        "Completions",
        "AsyncCompletions",
        ("parse",),
        ChatAdapter,
    ),
    (
        "openai.resources.responses",
        "Responses",
        "AsyncResponses",
        ("create", "parse"),
        ResponsesAdapter,
    ),
    (
        "openai.resources.embeddings",
        "Embeddings",
        "AsyncEmbeddings",
        ("create",),
        EmbeddingsAdapter,
    ),
)


Targets = tuple[tuple[str, str, str, tuple[str, ...], type[Adapter]], ...]


def present_targets(
    telemetry: GenAITelemetry, targets: Targets = TARGETS
) -> list[tuple[Any, str, Any]]:
    """(class, method name, wrapper) for every target the installed library has."""
    found: list[tuple[Any, str, Any]] = []
    for module_name, sync_name, async_name, methods, adapter_type in targets:
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue  # an older SDK without this API surface
        adapter = adapter_type()
        for class_name, make in ((sync_name, sync_wrapper), (async_name, async_wrapper)):
            cls = getattr(module, class_name, None)
            if cls is None:
                continue
            for method in methods:
                if callable(getattr(cls, method, None)):
                    found.append((cls, method, make(telemetry, adapter)))
    return found
