"""OpenTelemetry instrumentation for the ``ollama`` client library.

``chat`` (operation ``chat``), ``generate`` (``text_completion``), ``embed`` and ``embeddings``
(``embeddings``) on ``Client`` and ``AsyncClient``, streamed or not, and the module-level
functions (``ollama.chat(...)``) that call the default client.

    from llm_otel.instrumentation.ollama import OllamaInstrumentor
    OllamaInstrumentor().instrument()
"""

from __future__ import annotations

import importlib
from collections.abc import Collection
from typing import Any

from llm_otel.instrumentation._support import (
    GenAIInstrumentor,
    Patches,
    retire,
    supported,
    telemetry_for,
)
from llm_otel.instrumentation.ollama.package import _instruments

__all__ = ["OllamaInstrumentor"]

_METHODS = ("chat", "generate", "embed", "embeddings")


class OllamaInstrumentor(GenAIInstrumentor):
    """Records one GenAI span and the GenAI client metrics for every Ollama call."""

    _patches = Patches()

    def instrumentation_dependencies(self) -> Collection[str]:
        return _instruments

    def _instrument(self, **kwargs: Any) -> None:
        if not supported(self.instrumentation_dependencies(), "ollama"):
            return
        from llm_otel.genai._wrapper import Adapter, async_wrapper, sync_wrapper
        from llm_otel.instrumentation.ollama._adapters import (
            ChatAdapter,
            EmbedAdapter,
            GenerateAdapter,
        )

        telemetry = telemetry_for("ollama", kwargs)
        adapters: dict[str, Adapter] = {
            "chat": ChatAdapter(),
            "generate": GenerateAdapter(),
            "embed": EmbedAdapter(),
            "embeddings": EmbedAdapter(),
        }
        client_module = importlib.import_module("ollama._client")
        for class_name, make in (("Client", sync_wrapper), ("AsyncClient", async_wrapper)):
            cls = getattr(client_module, class_name, None)
            for method in _METHODS:
                if cls is not None and callable(getattr(cls, method, None)):
                    OllamaInstrumentor._patches.wrap(cls, method, make(telemetry, adapters[method]))
        # ollama.chat & co. are methods of a default client, bound when ollama was imported.
        package = importlib.import_module("ollama")
        default = getattr(package, "_client", None)
        for method in _METHODS:
            if default is not None and hasattr(package, method):
                OllamaInstrumentor._patches.replace(package, method, getattr(default, method))

    def _uninstrument(self, **kwargs: Any) -> None:
        retire("ollama")
        OllamaInstrumentor._patches.restore()
