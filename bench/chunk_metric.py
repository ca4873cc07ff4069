"""What the per-chunk metric costs, and what the ways around it really save.

    python bench/chunk_metric.py [--streams 2000] [--chunks 20] [--rounds 5]

``gen_ai.client.operation.time_per_output_chunk`` is one histogram point per chunk after the
first. This records the gaps of ``--streams`` streams of ``--chunks`` chunks with the same six
attributes llm-otel uses, through the OTel SDK, four ways:

- ``every``: every gap, on the thread that consumed the stream (llm-otel's default);
- ``1 in 10``: ``chunk_timing=10``, every 10th gap from a random start;
- ``off``: ``chunk_timing=0``, no gap (time to first chunk only);
- ``thread``: every gap, handed to a background thread through a queue (what "recording off
  the consuming thread" would be).

and prints, per stream, the CPU time of the whole process and the time the consuming thread
spent in the recording (wall clock), median of ``--rounds``. Between streams the consumer waits
``--io-wait`` µs with the GIL released, as a real client does while the next bytes arrive, so
the background thread has idle time to use.
"""

from __future__ import annotations

import argparse
import queue
import random
import statistics
import threading
import time
from collections.abc import Callable
from typing import Any

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

ATTRS = {
    "gen_ai.operation.name": "chat",
    "gen_ai.provider.name": "openai",
    "gen_ai.request.model": "gpt-4o-mini",
    "server.address": "api.openai.com",
    "server.port": 443,
    "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
}


def run(mode: str, streams: int, chunks: int, io_wait: float) -> tuple[float, float]:
    """(process CPU µs per stream, consumer's recording µs per stream) for one round."""
    meter = MeterProvider(metric_readers=[InMemoryMetricReader()]).get_meter("bench")
    histogram = meter.create_histogram("gen_ai.client.operation.time_per_output_chunk", unit="s")
    record = histogram.record
    gaps = [0.001 * (1 + i % 7) for i in range(chunks - 1)]
    pending: queue.SimpleQueue[list[float] | None] = queue.SimpleQueue()

    def drain() -> None:
        while (batch := pending.get()) is not None:
            for gap in batch:
                record(gap, ATTRS)

    worker = threading.Thread(target=drain, daemon=True)
    worker.start()
    recorders: dict[str, Callable[[list[float]], Any]] = {
        "every": lambda g: [record(x, ATTRS) for x in g],
        "1 in 10": lambda g: [record(x, ATTRS) for x in g[random.randrange(10) :: 10]],
        "off": lambda g: None,
        "thread": pending.put,
    }
    recorder = recorders[mode]
    in_consumer = 0.0
    cpu = time.process_time()
    for _ in range(streams):
        time.sleep(io_wait / 1e6)  # the network: the GIL is free for the background thread
        started = time.perf_counter()
        recorder(gaps)
        in_consumer += time.perf_counter() - started
    pending.put(None)
    worker.join()
    cpu = time.process_time() - cpu
    return cpu / streams * 1e6, in_consumer / streams * 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--streams", type=int, default=2000)
    parser.add_argument("--chunks", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--io-wait", type=float, default=200.0, help="µs between streams")
    args = parser.parse_args()
    modes = ["every", "1 in 10", "off", "thread"]
    results: dict[str, list[tuple[float, float]]] = {mode: [] for mode in modes}
    for _ in range(args.rounds):
        for mode in random.sample(modes, len(modes)):  # interleaved, shuffled
            results[mode].append(run(mode, args.streams, args.chunks, args.io_wait))
    print(
        f"\n{args.chunks}-chunk streams, {args.streams} per round, median of {args.rounds} "
        f"rounds; µs per stream\n"
    )
    print("| gaps recorded | process CPU | consuming thread |")
    print("|---|---|---|")
    for mode in modes:
        cpu = statistics.median(r[0] for r in results[mode])
        consumer = statistics.median(r[1] for r in results[mode])
        print(f"| {mode} | {cpu:,.0f} | {consumer:,.1f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
