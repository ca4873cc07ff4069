"""What counting a provider batch's results costs the app that fetches them: parsing an OpenAI
Batch output file of N result lines and recording its requests (outcomes, tokens, cost), per
line, next to the app's own ``json.loads`` of each line.

    python bench/batch_results.py [--lines 10000]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

from opentelemetry.sdk.metrics import MeterProvider  # noqa: E402
from opentelemetry.sdk.metrics.export import InMemoryMetricReader  # noqa: E402
from opentelemetry.sdk.trace import TracerProvider  # noqa: E402
from tests.servers.openai_server import chat_completion  # noqa: E402

from llm_otel.genai import GenAITelemetry  # noqa: E402
from llm_otel.genai import _batches as batches  # noqa: E402
from llm_otel.instrumentation.openai._batches import parse_results  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=10_000)
    args = parser.parse_args()
    meters = MeterProvider(metric_readers=[InMemoryMetricReader()])
    telemetry = GenAITelemetry(tracer_provider=TracerProvider(), meter_provider=meters)
    body = chat_completion({"model": "gpt-4o-mini"})
    response = {"status_code": 200, "request_id": "r", "body": body}
    line = json.dumps({"id": "batch_req_1", "custom_id": "t-1", "error": None,
                       "response": response}) + "\n"  # fmt: skip
    data = (line * args.lines).encode()
    ours, theirs = [], []
    for round_ in range(5):
        with batches.batch_span(telemetry, "openai", "results") as handle:
            started = time.perf_counter()
            batches.record_results(telemetry, handle, f"file-{round_}",
                                   batches.BatchFile("batch", "openai", "gpt-4o-mini"),
                                   parse_results(data))  # fmt: skip
            ours.append((time.perf_counter() - started) / args.lines * 1e6)
        started = time.perf_counter()
        [json.loads(x) for x in data.splitlines()]
        theirs.append((time.perf_counter() - started) / args.lines * 1e6)
    print(f"{len(line)} bytes per result line, {args.lines} lines, median of 5 rounds:")
    print(f"  parse and count (llm-otel): {statistics.median(ours):6.1f} µs per line")
    print(f"  the app's own json.loads:   {statistics.median(theirs):6.1f} µs per line")


if __name__ == "__main__":
    main()
