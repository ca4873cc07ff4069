"""OpenTelemetry instrumentation for the ``ollama`` client library.

``chat`` (operation ``chat``), ``generate`` (``text_completion``), ``embed`` and ``embeddings``
(``embeddings``) on ``Client`` and ``AsyncClient``, streamed or not, and the module-level
functions (``ollama.chat(...)``) that call the default client.

    from llm_otel.instrumentation.ollama import OllamaInstrumentor
    OllamaInstrumentor().instrument()
"""

from __future__ import annotations

import importlib

from llm_otel.genai import GenAITelemetry
from llm_otel.instrumentation._base import LLMInstrumentor, Target
from llm_otel.instrumentation._support import Patches
from llm_otel.instrumentation.ollama.package import _instruments

__all__ = ["OllamaInstrumentor"]

_CLIENT = ("ollama._client", "Client", "AsyncClient")
_FUNCTIONS = ("chat", "generate", "embed", "embeddings")


class OllamaInstrumentor(LLMInstrumentor):
    """Records one GenAI span and the GenAI client metrics for every Ollama call."""

    library = "ollama"
    requirements = _instruments
    targets = (
        *Target.pair(*_CLIENT, ("chat",), "._adapters:ChatAdapter"),
        *Target.pair(*_CLIENT, ("generate",), "._adapters:GenerateAdapter"),
        *Target.pair(*_CLIENT, ("embed", "embeddings"), "._adapters:EmbedAdapter"),
    )

    def patch(self, telemetry: GenAITelemetry, patches: Patches) -> None:
        # ollama.chat & co. are methods of a default client, bound when ollama was imported:
        # re-bound to the (now wrapped) methods.
        package = importlib.import_module("ollama")
        default = getattr(package, "_client", None)
        for name in _FUNCTIONS:
            if default is not None and hasattr(package, name):
                patches.replace(package, name, getattr(default, name))
