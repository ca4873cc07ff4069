"""Our own cost per streamed chunk: the stream proxy and the OpenAI chat accumulator over a list
of real ``ChatCompletionChunk``s, no client library or HTTP around them.

Run it twice under callgrind and divide the difference by the chunks between the two runs:

    PYTHONHASHSEED=0 valgrind --tool=callgrind python bench/stream_chunk.py --chunks 20
    PYTHONHASHSEED=0 valgrind --tool=callgrind python bench/stream_chunk.py --chunks 220
    # (I(220) - I(20)) / (200 * 50 streams) = instructions per chunk

``--chunk-timing 0`` leaves out the per-chunk metric (the proxy and accumulator alone);
``--content on`` keeps the streamed text (content capture on the span); ``--plain`` is the loop
over the same list without llm-otel.
"""

from __future__ import annotations

import argparse
import gc

from openai.types.chat import ChatCompletionChunk
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider

from llm_otel.genai import ContentMode, ContentPolicy
from llm_otel.genai._chunks import set_chunk_timing
from llm_otel.genai._invocation import Invocation
from llm_otel.genai._streams import SyncStreamProxy, make_proxy
from llm_otel.genai._telemetry import GenAITelemetry
from llm_otel.genai._types import LLMRequest
from llm_otel.instrumentation.openai._chat import ChatStreamAccumulator

CHUNK = {
    "id": "chatcmpl-bench",
    "object": "chat.completion.chunk",
    "created": 1,
    "model": "gpt-4o-mini-2024-07-18",
    "choices": [{"index": 0, "delta": {"content": "tok "}, "finish_reason": None}],
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--chunks", type=int, default=20)
    parser.add_argument("--streams", type=int, default=50)
    parser.add_argument("--chunk-timing", type=int, default=1)
    parser.add_argument("--content", choices=["off", "on"], default="off")
    parser.add_argument("--plain", action="store_true")
    args = parser.parse_args()
    set_chunk_timing(args.chunk_timing)
    capture = args.content == "on"
    chunks = [ChatCompletionChunk.model_validate(CHUNK)] * args.chunks
    telemetry = GenAITelemetry(
        tracer_provider=TracerProvider(),
        meter_provider=MeterProvider(metric_readers=[InMemoryMetricReader()]),
        content=ContentPolicy(ContentMode.SPAN_ONLY if capture else ContentMode.NO_CONTENT),
    )

    def stream() -> None:
        if args.plain:
            for _ in iter(chunks):
                pass
            return
        request = LLMRequest(operation="chat", provider="openai", model="gpt-4o-mini", stream=True)
        invocation = Invocation(telemetry, request)
        accumulator = ChatStreamAccumulator(capture)
        for _ in make_proxy(SyncStreamProxy, iter(chunks), invocation, accumulator):
            pass

    for _ in range(20):  # warm-up
        stream()
    gc.collect()
    gc.freeze()  # the start-up heap out of the collector's reach (bench/worker.py's settle)
    for _ in range(args.streams):
        stream()


if __name__ == "__main__":
    main()
