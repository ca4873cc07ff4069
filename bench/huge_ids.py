"""Memory growth when a server returns unique 100 KB response ids (issue: the recent-call table
kept every id whole). Runs N chat calls against the local OpenAI test server, with or without
llm_otel, and prints the process's RSS growth.

    python bench/huge_ids.py --calls 3000 [--bare]
"""

from __future__ import annotations

import argparse
import gc
import resource
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--bare", action="store_true", help="without llm_otel")
    args = parser.parse_args()

    import openai
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.trace import TracerProvider
    from tests.servers.openai_server import OpenAITestServer

    server = OpenAITestServer().start()
    if not args.bare:
        from llm_otel.instrumentation.openai import OpenAIInstrumentor

        # Spans are made and dropped (no processor): what stays is what llm_otel keeps.
        OpenAIInstrumentor().instrument(
            tracer_provider=TracerProvider(), meter_provider=MeterProvider()
        )
    client = openai.OpenAI(base_url=server.base_url, api_key="k", max_retries=0)
    messages = [{"role": "user", "content": "x"}]
    for _ in range(50):  # warm up: imports, pools, first allocations
        client.chat.completions.create(model="huge-id", messages=messages)
    gc.collect()
    before = rss_mb()
    for _ in range(args.calls):
        client.chat.completions.create(model="huge-id", messages=messages)
    gc.collect()
    print(f"{'bare' if args.bare else 'llm_otel'}: +{rss_mb() - before:.1f} MB RSS "
          f"over {args.calls} calls")  # fmt: skip
    server.stop()


if __name__ == "__main__":
    main()
