"""OpenTelemetry instrumentation for the ``cohere`` client library (v2 API).

``chat``, ``chat_stream`` and ``embed`` on ``V2Client`` / ``AsyncV2Client`` (so ``ClientV2``,
``AsyncClientV2`` and ``Client().v2`` alike), with ``gen_ai.provider.name = cohere``.

    from llm_otel.instrumentation.cohere import CohereInstrumentor
    CohereInstrumentor().instrument()
"""

from __future__ import annotations

from llm_otel.instrumentation._base import LLMInstrumentor, Target
from llm_otel.instrumentation.cohere.package import _instruments

__all__ = ["CohereInstrumentor"]

_V2 = "cohere.v2.client"


class CohereInstrumentor(LLMInstrumentor):
    """Records one GenAI span and the GenAI client metrics for every Cohere v2 call."""

    library = "cohere"
    requirements = _instruments
    targets = (
        *Target.pair(_V2, "V2Client", "AsyncV2Client", ("chat",), "._adapters:ChatAdapter"),
        *Target.pair(_V2, "V2Client", "AsyncV2Client", ("embed",), "._adapters:EmbedAdapter"),
        Target(_V2, "V2Client", ("chat_stream",), "._adapters:ChatAdapter", {"streaming": True}),
        # AsyncV2Client.chat_stream is an async generator function: calling it returns the
        # stream without awaiting, so it gets the plain-call wrapper (which proxies an async
        # generator with the async stream proxy).
        Target(_V2, "AsyncV2Client", ("chat_stream",), "._adapters:ChatAdapter",
               {"streaming": True}),
    )  # fmt: skip
