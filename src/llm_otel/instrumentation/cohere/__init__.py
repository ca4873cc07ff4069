"""OpenTelemetry instrumentation for the ``cohere`` client library (v2 API).

``chat``, ``chat_stream`` and ``embed`` on ``V2Client`` / ``AsyncV2Client`` (so ``ClientV2``,
``AsyncClientV2`` and ``Client().v2`` alike), with ``gen_ai.provider.name = cohere``.

    from llm_otel.instrumentation.cohere import CohereInstrumentor
    CohereInstrumentor().instrument()
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
from llm_otel.instrumentation.cohere.package import _instruments

__all__ = ["CohereInstrumentor"]


class CohereInstrumentor(GenAIInstrumentor):
    """Records one GenAI span and the GenAI client metrics for every Cohere v2 call."""

    _patches = Patches()

    def instrumentation_dependencies(self) -> Collection[str]:
        return _instruments

    def _instrument(self, **kwargs: Any) -> None:
        if not supported(self.instrumentation_dependencies(), "cohere"):
            return
        from llm_otel.genai._wrapper import Adapter, async_wrapper, sync_wrapper
        from llm_otel.instrumentation.cohere._adapters import ChatAdapter, EmbedAdapter

        telemetry = telemetry_for("cohere", kwargs)
        adapters: dict[str, Adapter] = {
            "chat": ChatAdapter(),
            "chat_stream": ChatAdapter(streaming=True),
            "embed": EmbedAdapter(),
        }
        module = importlib.import_module("cohere.v2.client")
        for class_name, make in (("V2Client", sync_wrapper), ("AsyncV2Client", async_wrapper)):
            cls = getattr(module, class_name, None)
            for method, adapter in adapters.items():
                if cls is None or not callable(getattr(cls, method, None)):
                    continue
                # AsyncV2Client.chat_stream is an async generator function: calling it returns
                # the stream without awaiting, so it gets the plain-call wrapper (which proxies
                # an async generator with the async stream proxy).
                wrap = make
                if class_name == "AsyncV2Client" and method == "chat_stream":
                    wrap = sync_wrapper
                CohereInstrumentor._patches.wrap(cls, method, wrap(telemetry, adapter))

    def _uninstrument(self, **kwargs: Any) -> None:
        retire("cohere")
        CohereInstrumentor._patches.restore()
