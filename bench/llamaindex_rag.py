"""What the LlamaIndex instrumentation adds to a RAG query (run it with .venv-llamaindex, which
scripts/test.sh makes: LlamaIndex's OpenAI classes need openai < 3).

    .venv-llamaindex/bin/python bench/llamaindex_rag.py [--calls 100] [--rounds 7]

One query per run through ``VectorStoreIndex.as_query_engine()`` over two documents: the query's
embedding and one chat completion, both through the openai SDK with an in-process transport (no
network, no server), against the OpenTelemetry SDK's real TracerProvider with a
BatchSpanProcessor and an in-memory metric reader. Variants, interleaved per round:

- ``baseline``: nothing instrumented;
- ``openai only``: llm-otel's openai instrumentation (the embedding and chat spans only);
- ``llama-index + openai``: the usual set-up: the query, retrieval and synthesis spans, the model
  calls' spans from the openai instrumentation;
- ``llama-index only``: the openai SDK not instrumented, the model calls recorded from
  LlamaIndex's events.

Prints microseconds per run (median over rounds, min..max), the overhead over the baseline,
and spans per run. For instruction counts, as in bench/openai_agents.py:

    valgrind --tool=callgrind .venv-llamaindex/bin/python bench/llamaindex_rag.py \\
        --only "llama-index + openai" --calls 5     # and --calls 25; difference / 20
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import httpx
from _frameworks import main, measure
from llama_index.core import Document, Settings, VectorStoreIndex
from llama_index.embeddings.openai import OpenAIEmbedding
from llama_index.llms.openai import OpenAI

from llm_otel.instrumentation.llama_index import LlamaIndexInstrumentor

VARIANTS = ("baseline", "openai only", "llama-index + openai", "llama-index only")
USAGE = {"prompt_tokens": 120, "completion_tokens": 8, "total_tokens": 128}
CHAT = json.dumps(
    {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": 1,
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Paris."},
                "finish_reason": "stop",
            }
        ],
        "usage": USAGE,
    }
).encode()


def _embeddings(request: httpx.Request) -> bytes:
    inputs = json.loads(request.content).get("input")
    count = len(inputs) if isinstance(inputs, list) else 1
    data = [{"object": "embedding", "index": i, "embedding": [0.1, 0.2, 0.3]} for i in range(count)]
    return json.dumps({"object": "list", "model": "text-embedding-3-small", "data": data,
                       "usage": {"prompt_tokens": 7, "total_tokens": 7}}).encode()  # fmt: skip


def _handler(request: httpx.Request) -> httpx.Response:
    body = _embeddings(request) if request.url.path.endswith("/embeddings") else CHAT
    return httpx.Response(200, content=body, headers={"content-type": "application/json"})


def make_engine() -> Any:
    http = httpx.Client(transport=httpx.MockTransport(_handler))
    base = "http://bench.invalid/v1"
    Settings.llm = OpenAI(model="gpt-4o-mini", api_key="k", api_base=base, max_retries=0,
                          http_client=http)  # fmt: skip
    Settings.embed_model = OpenAIEmbedding(model_name="text-embedding-3-small", api_key="k",
                                           api_base=base, http_client=http)  # fmt: skip
    documents = [Document(text="Paris is the capital of France."),
                 Document(text="Lisbon is in Portugal.")]  # fmt: skip
    return VectorStoreIndex.from_documents(documents).as_query_engine(similarity_top_k=1)


def timed(variant: str, calls: int) -> tuple[float, float]:
    """Microseconds per run, and spans exported per run. LlamaIndex's import leaves ~270k
    objects for each full collection to walk (tens of millions of instructions): the heap is
    frozen after the warm-up, as a long-running server's would be, so that runs differ by what
    they do, not by when they hit a collection."""

    def make() -> Callable[[], Any]:
        engine = make_engine()
        return lambda: engine.query("What is the capital of France?")

    return measure(variant, LlamaIndexInstrumentor, make, calls, freeze=True)


if __name__ == "__main__":
    main(__doc__.split("\n\n")[0], VARIANTS, timed, calls=100)
